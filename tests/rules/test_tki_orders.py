"""R6j-R6l: oral HER2 kinase inhibitors drafted before their line, without their partners or
above their dose (tki_orders.py)."""

from __future__ import annotations

from typing import Any

import pytest

from cds.parameters import Parameters
from cds.rules.tki_orders import label_counts
from cds.terminology import Terminology
from fixtures.factories import (
    CAPE,
    DOCE,
    LETROZOLE,
    PERT,
    PHESGO,
    PROGRESSION,
    TDM1,
    TDXD,
    TOXICITY,
    TRAS,
    WORSENED,
    Patient,
    draft_med,
    her2_positive_base,
)
from tests.rules.helpers import bone_patient, concerns, run, text
from tests.rules.helpers import text as text_of

RXNORM_URI = "http://www.nlm.nih.gov/research/umls/rxnorm"
TUCATINIB = ("2361285", "Tucatinib")
NERATINIB = ("1940643", "Neratinib")
LAPATINIB = ("480167", "Lapatinib")


def _concerns_of(
    rule: str, p: Patient, t: Terminology, params: Parameters, *rx: tuple[str, str]
) -> list[str]:
    """The rule's concerns when these medicines are drafted together for the patient."""
    drafts = [draft_med(p.pid, f"d{i}", r, "as directed") for i, r in enumerate(rx)]
    return [c for c in concerns(run(p, t, params, "order-sign", drafts)) if c.startswith(rule)]


def _r6j(p: Patient, t: Terminology, params: Parameters, *rx: tuple[str, str]) -> list[str]:
    return _concerns_of("R6j:", p, t, params, *rx)


def _after_thp(*, reason: tuple[str, str] = PROGRESSION, then_tdxd: bool = False) -> Patient:
    p = her2_positive_base("p", met_days=900)
    for drug in (DOCE, TRAS, PERT):
        p.med("MedicationStatement", drug, status="stopped", start=800, end=400, reason=reason)
    if then_tdxd:
        p.med("MedicationStatement", TDXD, status="stopped", start=390, end=20, reason=PROGRESSION)
    return p


def _on_first_line_thp() -> Patient:
    p = her2_positive_base("p", met_days=400)
    for drug in (DOCE, TRAS, PERT):
        p.med("MedicationStatement", drug, status="active", start=380)
    return p


class TestR6jKinaseInhibitorBeforeItsLine:
    def test_the_counts_are_the_regimens_own(self, params: Parameters) -> None:
        """Tukysa: one or more prior regimens; Nerlynx: two or more (cards/regimens.yaml)."""
        assert label_counts(params) == {"tucatinib": 1, "neratinib": 2}

    @pytest.mark.parametrize(
        ("then_tdxd", "rx", "expected"),
        [
            (False, TUCATINIB, []),  # one prior: HER2CLIMB's second line
            (False, NERATINIB, ["R6j:before-label-line"]),  # one prior of the two
            (True, NERATINIB, []),  # two priors: NALA's population
            (False, LAPATINIB, []),  # no count in its regimens: not judged
            (False, CAPE, []),
        ],
    )
    def test_after_regimens_that_ended_in_progression(
        self,
        t: Terminology,
        params: Parameters,
        then_tdxd: bool,
        rx: tuple[str, str],
        expected: list[str],
    ) -> None:
        assert _r6j(_after_thp(then_tdxd=then_tdxd), t, params, rx) == expected

    def test_a_first_line_still_working_is_no_prior_regimen(
        self, t: Terminology, params: Parameters
    ) -> None:
        """§3c D16: first-line THP, a new brain metastasis, extracranial disease stable."""
        p = _on_first_line_thp()
        assert _r6j(p, t, params, TUCATINIB, CAPE) == ["R6j:before-label-line"]
        p.disease_status(10, *WORSENED)  # progression on it documented: it counts
        assert _r6j(p, t, params, TUCATINIB, CAPE) == []

    def test_a_regimen_stopped_for_toxicity_alone_is_no_prior_regimen(
        self, t: Terminology, params: Parameters
    ) -> None:
        """F6 and C6: a change without progression is not a new line."""
        p = _after_thp(reason=TOXICITY)
        assert _r6j(p, t, params, TUCATINIB) == ["R6j:before-label-line"]

    def test_no_her2_therapy_on_record_is_not_a_first_line(
        self, t: Terminology, params: Parameters
    ) -> None:
        """Missing history is no negative finding: information that the count cannot be read."""
        [d] = [
            x
            for x in run(
                her2_positive_base("p", met_days=400),
                t,
                params,
                "order-sign",
                [draft_med("p", "tuc", TUCATINIB, "300 mg twice daily")],
            )
            if x.rule == "R6j"
        ]
        assert (d.variant, d.indicator) == ("no-line-on-record", "info")
        assert d.bindings == {"drug": "tucatinib", "needed": "1", "prior": "0"}

    def test_adjuvant_therapy_is_on_record_but_no_metastatic_regimen(
        self, t: Terminology, params: Parameters
    ) -> None:
        """Trastuzumab given as adjuvant therapy is HER2 therapy on record (the card may not
        say there is none) and no regimen in the metastatic setting: the label's count is 0."""
        p = her2_positive_base("p", met_days=100)
        p.med("MedicationStatement", TRAS, status="completed", start=700, end=340)
        [d] = [
            x
            for x in run(p, t, params, "order-sign", [draft_med("p", "tuc", TUCATINIB, "300 mg")])
            if x.rule == "R6j"
        ]
        assert (d.variant, d.indicator) == ("before-label-line", "warning")
        assert any(text(x).startswith("(Neo)adjuvant HER2-targeted therapy ended") for x in d.data)

    def test_not_her2_positive_or_not_metastatic_is_not_this_rule(
        self, t: Terminology, params: Parameters
    ) -> None:
        assert _r6j(bone_patient(her2="neg"), t, params, TUCATINIB) == []  # R6c's
        p = Patient("p")
        p.breast_cancer(900)
        p.her2(880, "pos")
        assert _r6j(p, t, params, NERATINIB) == []  # extended adjuvant is another label

    def test_the_card_names_the_draft_and_the_lines(
        self, t: Terminology, params: Parameters
    ) -> None:
        drafts = [draft_med("p", "ner", NERATINIB, "240 mg daily")]
        [d] = [x for x in run(_after_thp(), t, params, "order-sign", drafts) if x.rule == "R6j"]
        assert d.indicator == "warning"
        assert d.bindings == {"drug": "neratinib", "needed": "2", "prior": "1"}
        said = [text(x) for x in d.data]
        assert said[0] == "Draft order: MedicationRequest/ner"
        line = "Metastatic line 1: docetaxel, pertuzumab, trastuzumab"
        assert any(x.startswith(line) for x in said), said
        assert d.refs == ("MedicationRequest/ner",)

    def test_each_inhibitor_drafted_gets_its_own_card(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = _on_first_line_thp()
        got = _r6j(p, t, params, TUCATINIB, NERATINIB)
        assert got == ["R6j:before-label-line", "R6j:before-label-line#2"]


class TestR6jLapatinibBeforeTrastuzumab:
    """Tykerb label: lapatinib with capecitabine after prior therapy including trastuzumab."""

    @pytest.mark.parametrize(
        ("history", "expected"),
        [
            pytest.param([], ["R6j:lapatinib-before-trastuzumab"], id="none-on-record"),
            pytest.param([TRAS], [], id="trastuzumab"),
            pytest.param([PHESGO], [], id="phesgo-carries-it"),
            pytest.param([TDM1], [], id="a-conjugate-carries-it"),
            pytest.param([PERT], ["R6j:lapatinib-before-trastuzumab"], id="pertuzumab-alone"),
        ],
    )
    def test_what_counts_as_prior_trastuzumab(
        self,
        t: Terminology,
        params: Parameters,
        history: list[tuple[str, str]],
        expected: list[str],
    ) -> None:
        p = her2_positive_base("p", met_days=400)
        for drug in history:
            p.med("MedicationStatement", drug, status="completed", start=380, end=100)
        assert _r6j(p, t, params, LAPATINIB, CAPE) == expected

    def test_only_with_capecitabine(self, t: Terminology, params: Parameters) -> None:
        p = her2_positive_base("p", met_days=400)
        assert _r6j(p, t, params, LAPATINIB, LETROZOLE) == []  # no prior therapy asked
        assert _r6j(p, t, params, LAPATINIB) == []  # alone: R6k's card
        p.med("MedicationStatement", CAPE, status="active", start=20)
        assert _r6j(p, t, params, LAPATINIB) == ["R6j:lapatinib-before-trastuzumab"]

    def test_the_card(self, t: Terminology, params: Parameters) -> None:
        drafts = [draft_med("p", "lap", LAPATINIB, "1250 mg"), draft_med("p", "cape", CAPE, "")]
        p = her2_positive_base("p", met_days=400)
        [d] = [x for x in run(p, t, params, "order-sign", drafts) if x.rule == "R6j"]
        assert (d.indicator, d.bindings) == ("info", {"drug": "lapatinib"})
        assert text(d.data[0]) == "Draft order: MedicationRequest/lap"
        assert d.refs == ("MedicationRequest/lap",)
        assert _r6j(bone_patient(her2="neg"), t, params, LAPATINIB, CAPE) == []  # R6c's


def _r6k(p: Patient, t: Terminology, params: Parameters, *rx: tuple[str, str]) -> list[str]:
    return _concerns_of("R6k:", p, t, params, *rx)


class TestR6kKinaseInhibitorWithoutItsPartners:
    @pytest.mark.parametrize(
        ("rx", "missing"),
        [
            ((TUCATINIB, TRAS, CAPE), None),  # HER2CLIMB as the label gives it
            ((TUCATINIB, PHESGO, CAPE), None),  # Phesgo carries trastuzumab
            ((TUCATINIB, CAPE), "trastuzumab"),
            ((TUCATINIB, TRAS), "capecitabine"),
            ((TUCATINIB,), "trastuzumab or capecitabine"),
            ((NERATINIB, CAPE), None),  # NALA
            ((NERATINIB,), "capecitabine"),
            ((LAPATINIB,), None),  # its own variant (below)
            ((TUCATINIB, TDM1), None),  # HER2CLIMB-02's combination: information (below)
            ((NERATINIB, TDM1), "capecitabine"),
        ],
    )
    def test_partners_in_the_order(
        self,
        t: Terminology,
        params: Parameters,
        rx: tuple[tuple[str, str], ...],
        missing: str | None,
    ) -> None:
        drafts = [draft_med("p", f"d{i}", r, "as directed") for i, r in enumerate(rx)]
        found = run(_after_thp(then_tdxd=True), t, params, "order-sign", drafts)
        got = [x.bindings["missing"] for x in found if x.variant == "without-partner"]
        assert got == ([] if missing is None else [missing])

    @pytest.mark.parametrize(
        ("status", "expected"),
        [
            ("active", []),  # in use: the inhibitor is added to it
            ("unknown", []),  # may be in use: not said missing
            ("stopped", ["R6k:without-partner"]),
        ],
    )
    def test_partners_in_use_on_the_chart(
        self, t: Terminology, params: Parameters, status: str, expected: list[str]
    ) -> None:
        p = _after_thp()
        end = 5 if status == "stopped" else None
        for rx in (TRAS, CAPE):
            p.med("MedicationStatement", rx, status=status, start=15, end=end)
        assert _r6k(p, t, params, TUCATINIB) == expected

    def test_a_partner_given_dose_by_dose_is_in_use(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = _after_thp()
        p.med("MedicationAdministration", TRAS, status="completed", start=10)
        p.med("MedicationStatement", CAPE, status="active", start=10)
        assert _r6k(p, t, params, TUCATINIB) == []

    def test_the_card_names_the_last_record_of_what_is_missing(
        self, t: Terminology, params: Parameters
    ) -> None:
        drafts = [draft_med("p", "tuc", TUCATINIB, "300 mg twice daily")]
        [d] = [x for x in run(_after_thp(), t, params, "order-sign", drafts) if x.rule == "R6k"]
        assert d.indicator == "warning"
        said = [text(x) for x in d.data]
        assert said[0] == "Draft order: MedicationRequest/tuc"
        assert any(x.startswith("trastuzumab: last recorded") for x in said), said
        assert d.refs[0] == "MedicationRequest/tuc"
        assert len(d.refs) == 2  # and the trastuzumab record

    def test_not_her2_positive_metastatic_is_not_this_rule(
        self, t: Terminology, params: Parameters
    ) -> None:
        """Neratinib alone is the extended adjuvant therapy of early breast cancer."""
        p = Patient("p")
        p.breast_cancer(900)
        p.her2(880, "pos")
        assert _r6k(p, t, params, NERATINIB) == []
        assert _r6k(bone_patient(her2="neg"), t, params, TUCATINIB) == []


LOPERAMIDE = "Loperamide 2 MG Oral Capsule"  # no RxNorm code in terminology.md: named only


class TestR6kTucatinibWithTdm1:
    @pytest.mark.parametrize("where", ["drafted", "in use"])
    def test_the_trials_combination_is_information(
        self, t: Terminology, params: Parameters, where: str
    ) -> None:
        p = _after_thp()
        drafts = [draft_med("p", "tuc", TUCATINIB, "300 mg by mouth twice daily", 300)]
        if where == "drafted":
            drafts.append(draft_med("p", "tdm1", TDM1, "3.6 mg/kg IV every 3 weeks"))
        else:
            p.med("MedicationStatement", TDM1, status="active", start=10)
        found = [d for d in run(p, t, params, "order-sign", drafts) if d.rule == "R6k"]
        assert [(d.variant, d.indicator) for d in found] == [("with-tdm1", "info")]
        assert found[0].refs == ("MedicationRequest/tuc",)

    def test_the_labels_partners_need_no_card(self, t: Terminology, params: Parameters) -> None:
        drafts = [
            draft_med("p", f"d{i}", rx, "as directed")
            for i, rx in enumerate((TUCATINIB, TDM1, TRAS, CAPE))
        ]
        found = run(_after_thp(), t, params, "order-sign", drafts)
        assert [d for d in found if d.rule == "R6k"] == []


class TestR6kLapatinibAlone:
    @pytest.mark.parametrize(
        ("rx", "alone"),
        [
            ((LAPATINIB,), True),
            ((LAPATINIB, CAPE), False),  # the Tykerb label's
            ((LAPATINIB, LETROZOLE), False),  # the Tykerb label's, hormone receptor-positive
            ((LAPATINIB, "Anastrozole 1 MG Oral Tablet"), False),  # endocrine therapy
            ((LAPATINIB, TRAS), False),  # EGF104900, chemotherapy-free
            ((LAPATINIB, PHESGO), False),  # carries trastuzumab
            ((LAPATINIB, DOCE), True),  # no regimen of its labels or guidelines
        ],
    )
    def test_partners_in_the_order(
        self, t: Terminology, params: Parameters, rx: tuple[tuple[str, str] | str, ...], alone: bool
    ) -> None:
        drafts = [draft_med("p", f"d{i}", r, "as directed") for i, r in enumerate(rx)]
        got = concerns(run(_after_thp(then_tdxd=True), t, params, "order-sign", drafts))
        assert [c for c in got if c == "R6k:lapatinib-alone"] == (
            ["R6k:lapatinib-alone"] if alone else []
        )

    @pytest.mark.parametrize(("status", "alone"), [("active", False), ("stopped", True)])
    def test_endocrine_therapy_in_use(
        self, t: Terminology, params: Parameters, status: str, alone: bool
    ) -> None:
        p = _after_thp(then_tdxd=True)
        p.med("MedicationStatement", LETROZOLE, status=status, start=60, end=None)
        drafts = [draft_med("p", "lap", LAPATINIB, "1500 mg by mouth daily", 1500)]
        found = [
            d for d in run(p, t, params, "order-sign", drafts) if d.variant == "lapatinib-alone"
        ]
        assert len(found) == int(alone)
        assert all(d.refs == ("MedicationRequest/lap",) for d in found)

    def test_only_for_her2_positive_disease(self, t: Terminology, params: Parameters) -> None:
        p = her2_positive_base("p", met_days=400)
        drafts = [draft_med("p", "lap", LAPATINIB, "as directed")]
        assert "R6k:lapatinib-alone" in concerns(run(p, t, params, "order-sign", drafts))
        p = bone_patient("p")  # HER2-negative: R6c's card, not a regimen's
        assert "R6k:lapatinib-alone" not in concerns(run(p, t, params, "order-sign", drafts))


class TestR6kNeratinibFirstDoseWithoutLoperamide:
    @staticmethod
    def _first(
        t: Terminology, params: Parameters, p: Patient, *drafts: dict[str, object]
    ) -> list[str]:
        ner = draft_med("p", "ner", NERATINIB, "240 mg by mouth daily", 240)
        cape = draft_med("p", "cape", CAPE, "750 mg/m2 twice daily")
        got = concerns(run(p, t, params, "order-sign", [ner, cape, *drafts]))
        return [c for c in got if c == "R6k:no-loperamide"]

    def test_the_first_dose_with_no_loperamide(self, t: Terminology, params: Parameters) -> None:
        p = _after_thp(then_tdxd=True)
        assert self._first(t, params, p) == ["R6k:no-loperamide"]
        loperamide = draft_med("p", "lop", LOPERAMIDE, "4 mg three times daily")
        assert self._first(t, params, p, loperamide) == []  # drafted beside it
        imodium = draft_med("p", "imo", "Imodium 2 mg", "4 mg three times daily")
        assert self._first(t, params, p, imodium) == []  # by its brand

    @pytest.mark.parametrize(
        ("status", "expected"),
        [("active", []), ("unknown", []), ("stopped", ["R6k:no-loperamide"])],
    )
    def test_loperamide_on_the_chart(
        self, t: Terminology, params: Parameters, status: str, expected: list[str]
    ) -> None:
        p = _after_thp(then_tdxd=True)
        end = 300 if status == "stopped" else None
        p.med("MedicationStatement", LOPERAMIDE, status=status, start=400, end=end)
        assert self._first(t, params, p) == expected

    def test_neratinib_given_before_is_not_a_first_dose(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = _after_thp(then_tdxd=True)
        p.med("MedicationStatement", NERATINIB, status="active", start=10)
        assert self._first(t, params, p) == []

    @pytest.mark.parametrize(
        ("mg", "expected"),
        [
            (120, []),  # the label's dose escalation: loperamide as needed
            (160, []),
            (240, ["R6k:no-loperamide"]),
            (None, ["R6k:no-loperamide"]),  # a dose not known is no escalation
        ],
    )
    def test_the_dose_escalation_starts_without_prophylaxis(
        self, t: Terminology, params: Parameters, mg: float | None, expected: list[str]
    ) -> None:
        drafts = [draft_med("p", "ner", NERATINIB, "by mouth daily", mg)]
        got = concerns(run(_after_thp(then_tdxd=True), t, params, "order-sign", drafts))
        assert [c for c in got if c == "R6k:no-loperamide"] == expected

    def test_the_card_suggests_the_prophylaxis(self, t: Terminology, params: Parameters) -> None:
        drafts = [draft_med("p", "ner", NERATINIB, "240 mg by mouth daily", 240)]
        found = run(_after_thp(then_tdxd=True), t, params, "order-sign", drafts)
        [d] = [x for x in found if x.variant == "no-loperamide"]
        assert d.indicator == "warning"
        [proposal] = d.proposals
        assert proposal.key == "loperamide-prophylaxis"
        assert "three times daily on days 1-14" in " ".join(
            drug.dose for drug in params.regimens["loperamide-prophylaxis"].drugs
        )


class TestR6lKinaseInhibitorAboveItsDose:
    @pytest.mark.parametrize(
        ("rx", "dose", "mg", "expected"),
        [
            (TUCATINIB, "300 mg by mouth twice daily", 300, None),  # the label's
            (TUCATINIB, "150 mg by mouth twice daily", 150, None),  # its third reduction
            (TUCATINIB, "600 mg by mouth twice daily", 600, ("above-label", "warning")),
            (TUCATINIB, "600 mg by mouth daily", 600, ("above-label", "warning")),  # one dose
            (TUCATINIB, "300 mg by mouth three times daily", 300, ("above-label", "warning")),
            (TUCATINIB, "300 mg by mouth", 300, None),  # schedule not read: the dose is judged
            (TUCATINIB, "3 g by mouth twice daily", 3000, ("unit-error", "critical")),
            (NERATINIB, "240 mg by mouth daily", 240, None),
            (NERATINIB, "120 mg by mouth daily", 120, None),  # escalation, week 1
            (NERATINIB, "240 mg by mouth twice daily", 240, ("above-label", "warning")),
            (NERATINIB, "as directed", None, None),  # no dose: not judged
            (LAPATINIB, "1500 mg by mouth daily", 1500, None),  # with letrozole
            (LAPATINIB, "1750 mg by mouth daily", 1750, ("above-label-unless-inducer", "warning")),
            (LAPATINIB, "15 g by mouth daily", 15000, ("unit-error", "critical")),
        ],
    )
    def test_dose_and_day(
        self,
        t: Terminology,
        params: Parameters,
        rx: tuple[str, str],
        dose: str,
        mg: float | None,
        expected: tuple[str, str] | None,
    ) -> None:
        found = run(_after_thp(), t, params, "order-sign", [draft_med("p", "x", rx, dose, mg)])
        got = [(d.variant, d.indicator) for d in found if d.rule == "R6l"]
        assert got == ([] if expected is None else [expected])

    @pytest.mark.parametrize(
        ("dose", "mg", "cape", "expected"),
        [
            ("1250 mg by mouth daily", 1250, "drafted", None),
            ("1500 mg by mouth daily", 1500, "drafted", "1,250 mg once daily with capecitabine"),
            ("1500 mg by mouth daily", 1500, "in use", "1,250 mg once daily with capecitabine"),
            ("1500 mg by mouth daily", 1500, "stopped", None),  # a past line: letrozole's dose
            (
                "1250 mg by mouth twice daily",
                1250,
                "drafted",
                "1,250 mg once daily with capecitabine",
            ),
            ("1250 mg by mouth twice daily", 1250, None, "1,500 mg once daily (with letrozole)"),
        ],
    )
    def test_lapatinib_with_capecitabine_has_the_lower_dose(
        self,
        t: Terminology,
        params: Parameters,
        dose: str,
        mg: float,
        cape: str | None,
        expected: str | None,
    ) -> None:
        """Tykerb: 1,250 mg once daily with capecitabine, 1,500 mg with letrozole; a dose above
        may be a strong CYP3A4 inducer's titration, which the card names."""
        p = _after_thp()
        drafts = [draft_med("p", "lap", LAPATINIB, dose, mg)]
        if cape == "drafted":
            drafts.append(draft_med("p", "cape", CAPE, "1000 mg/m2 by mouth twice daily"))
        elif cape is not None:
            status = "active" if cape == "in use" else "stopped"
            p.med("MedicationStatement", CAPE, status=status, start=30, end=None)
        found = [d for d in run(p, t, params, "order-sign", drafts) if d.rule == "R6l"]
        assert [d.bindings["label_dose"] for d in found] == ([] if expected is None else [expected])
        assert all(d.variant == "above-label-unless-inducer" for d in found)

    @pytest.mark.parametrize(
        ("mg", "tras", "cape", "expected"),
        [
            (1000, "drafted", None, None),  # EGF104900's dose
            (1500, "drafted", None, ("above-trial-dose", "1,000 mg once daily with trastuzumab")),
            (1500, "in use", None, ("above-trial-dose", "1,000 mg once daily with trastuzumab")),
            (1500, "stopped", None, None),  # a past line: letrozole's dose
            (1250, "in use", None, ("above-trial-dose", "1,000 mg once daily with trastuzumab")),
            # The label's partner first: lapatinib-capecitabine, trastuzumab still recorded.
            (1250, "in use", "drafted", None),
            (1250, "drafted", "drafted", None),
            (
                1500,
                "in use",
                "drafted",
                ("above-label-unless-inducer", "1,250 mg once daily with capecitabine"),
            ),
            (10000, "drafted", None, ("unit-error", "1,000 mg once daily with trastuzumab")),
        ],
    )
    def test_lapatinib_with_trastuzumab_has_the_trial_dose(
        self,
        t: Terminology,
        params: Parameters,
        mg: float,
        tras: str,
        cape: str | None,
        expected: tuple[str, str] | None,
    ) -> None:
        """§3b C1: the US label does not pair lapatinib with trastuzumab; EGF104900 gave 1,000
        mg once daily, and a card about that dose cites the trial and names the trastuzumab
        record."""
        p = _after_thp()
        drafts = [draft_med("p", "lap", LAPATINIB, f"{mg:g} mg by mouth daily", mg)]
        partner = "MedicationRequest/tras"
        if tras == "drafted":
            drafts.append(draft_med("p", "tras", TRAS, "2 mg/kg IV weekly"))
        else:
            status = "active" if tras == "in use" else "stopped"
            rec = p.med("MedicationStatement", TRAS, status=status, start=30, end=None)
            partner = f"MedicationStatement/{rec['id']}"
        if cape == "drafted":
            drafts.append(draft_med("p", "cape", CAPE, "1000 mg/m2 by mouth twice daily"))
        found = [d for d in run(p, t, params, "order-sign", drafts) if d.rule == "R6l"]
        got = [(d.variant, d.bindings["label_dose"]) for d in found]
        assert got == ([] if expected is None else [expected])
        if expected is not None:
            [d] = found
            partner = "MedicationRequest/cape" if cape else partner
            assert d.refs == ("MedicationRequest/lap", partner)
            assert d.bindings["label"] == ("Tykerb" if cape else "EGF104900")

    @pytest.mark.parametrize(
        ("rx", "dose", "mg", "partner", "expected"),
        [
            # Tykerb 2.1: once daily, all the tablets at once; dividing is not recommended.
            (LAPATINIB, "750 mg by mouth twice daily", 750, None, "divided-daily-dose"),
            (LAPATINIB, "625 mg by mouth twice daily", 625, CAPE, "divided-daily-dose"),
            (LAPATINIB, "500 mg by mouth every 12 hours", 500, TRAS, "divided-daily-dose"),
            (LAPATINIB, "1500 mg by mouth daily", 1500, None, None),
            (LAPATINIB, "500 mg by mouth daily", 500, None, None),  # a reduced dose, at once
            (LAPATINIB, "750 mg by mouth", 750, None, None),  # schedule not read: not judged
            # Over the day's dose, divided or not, it is the dose card.
            (LAPATINIB, "750 mg by mouth twice daily", 750, CAPE, "above-label-unless-inducer"),
            (LAPATINIB, "750 mg by mouth twice daily", 750, TRAS, "above-trial-dose"),
            # Tucatinib is given twice daily: its divided dose is its label's.
            (TUCATINIB, "300 mg by mouth twice daily", 300, None, None),
            (NERATINIB, "120 mg by mouth twice daily", 120, None, None),  # no such advice
        ],
    )
    def test_a_once_daily_drug_drafted_divided(
        self,
        t: Terminology,
        params: Parameters,
        rx: tuple[str, str],
        dose: str,
        mg: float,
        partner: tuple[str, str] | None,
        expected: str | None,
    ) -> None:
        drafts = [draft_med("p", "x", rx, dose, mg)]
        if partner is not None:
            drafts.append(draft_med("p", "partner", partner, "as directed"))
        found = [d for d in run(_after_thp(), t, params, "order-sign", drafts) if d.rule == "R6l"]
        assert [d.variant for d in found] == ([] if expected is None else [expected])
        if expected == "divided-daily-dose":
            [d] = found
            assert d.indicator == "warning"
            assert d.bindings["label"] == "Tykerb"  # the label that says once daily
            assert text(d.bindings["dose"]) == f"{mg:g} mg ({2 * mg:g} mg a day)"

    @pytest.mark.parametrize(
        ("codes", "count", "text", "expected"),
        [
            (["2361290"], 4, "4 tablets by mouth twice daily", "600 mg (1200 mg a day)"),
            (["2361290"], 2, "2 tablets by mouth twice daily", None),  # the label's dose
            (["2361298"], 4, "4 tablets by mouth twice daily", None),  # 50 mg tablets: 200 mg
            (["2361285", "2361290"], 4, "4 tablets twice daily", "600 mg (1200 mg a day)"),
            (["2361285"], 4, "4 tablets by mouth twice daily", "unread"),  # no strength
            (["2361290", "2361298"], 4, "4 tablets twice daily", "unread"),  # two strengths
            (["2361290"], None, "Take 4 tablets by mouth twice daily", "600 mg (1200 mg a day)"),
            (["2361290"], None, "Take 1-2 tablets by mouth twice daily", None),  # a range
        ],
    )
    def test_a_dose_in_tablets_of_a_coded_product(
        self,
        t: Terminology,
        params: Parameters,
        codes: list[str],
        count: int | None,
        text: str,
        expected: str | None,
    ) -> None:
        """Oral drugs are ordered as tablets of a product: its RxNorm clinical drug code gives
        one tablet's strength, and the card says how the dose was read. An ingredient's code
        names no strength, and two strengths name no product: not read, and the card says so
        (information, with the dose that applies); a range in the text is no dose given."""
        draft = draft_med("p", "tuc", TUCATINIB, text)
        draft["medicationCodeableConcept"]["coding"] = [
            {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": c} for c in codes
        ]
        dosage = draft["dosageInstruction"][0]
        dosage["timing"] = {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}
        if count is not None:
            dosage["doseAndRate"] = [{"doseQuantity": {"value": count, "code": "{tbl}"}}]
        found = [d for d in run(_after_thp(), t, params, "order-sign", [draft]) if d.rule == "R6l"]
        if expected == "unread":
            [d] = found
            assert (d.variant, d.indicator, d.bindings["label_dose"]) == (
                "dose-unread",
                "info",
                "300 mg twice daily",
            )
            assert text_of(d.data[1]) == (
                "Draft dose unknown: dose 4 in '{tbl}', not a mass unit this check reads"
            )
            return
        assert [text_of(d.bindings["dose"]) for d in found] == (
            [] if expected is None else [expected]
        )
        for d in found:
            assert text_of(d.data[1]) == (
                "Dose read as 4 tablet(s) of 150 mg, the one strength of the product the order "
                "names (by its RxNorm code, or a brand sold in one strength)"
            )

    @pytest.mark.parametrize(
        ("medicine", "dose", "expected"),
        [
            # 1,750 mg: above its dose alone or with letrozole (1,500 mg)
            ({"text": "Tykerb"}, "7 tablets by mouth daily", "above-label-unless-inducer"),
            ({"text": "Tykerb"}, "6 tablets by mouth daily", None),  # 1,500 mg: the label's
            # The mass written is one tablet's: 7 of them, 1,750 mg.
            (
                {"text": "Tykerb"},
                "250 mg tablets: take 7 tablets daily",
                "above-label-unless-inducer",
            ),
            ({"text": "Tykerb"}, "1750 mg (7 tablets) daily", "above-label-unless-inducer"),
            ({"text": "Tykerb"}, "1250 mg (5 tablets) daily", None),
            ({"text": "Nerlynx 40 MG Oral Tablet"}, "8 tablets daily", "above-label"),  # 320 mg
            ({"text": "Nerlynx"}, "6 tablets daily", None),  # 240 mg: the label's
            ({"text": "Tukysa"}, "4 tablets twice daily", "dose-unread"),  # 50 or 150 mg
            # An ingredient's code decides: it names no strength, whatever the words say.
            (
                {"coding": [{"system": RXNORM_URI, "code": "480167"}], "text": "Tykerb"},
                "6 tablets by mouth daily",
                None,
            ),
        ],
    )
    def test_tablets_of_a_brand_sold_in_one_strength(
        self,
        t: Terminology,
        params: Parameters,
        medicine: dict[str, Any],
        dose: str,
        expected: str | None,
    ) -> None:
        """Tykerb is sold as 250 mg tablets only, Nerlynx as 40 mg (their labels, section 3):
        a record naming the brand and no product code is read by that strength. A count in
        the text with no strength and no structured dose is no dose given: no card."""
        draft = draft_med("p", "x", TUCATINIB, dose)
        draft["medicationCodeableConcept"] = medicine
        if expected == "dose-unread":
            draft["dosageInstruction"][0]["doseAndRate"] = [
                {"doseQuantity": {"value": 4, "code": "{tbl}"}}
            ]
        found = [d for d in run(_after_thp(), t, params, "order-sign", [draft]) if d.rule == "R6l"]
        assert [d.variant for d in found] == ([] if expected is None else [expected])

    def test_the_card_gives_the_days_total_and_the_label_dose(
        self, t: Terminology, params: Parameters
    ) -> None:
        drafts = [draft_med("p", "tuc", TUCATINIB, "600 mg by mouth twice daily", 600)]
        [d] = [x for x in run(_after_thp(), t, params, "order-sign", drafts) if x.rule == "R6l"]
        assert text(d.bindings["dose"]) == "600 mg (1200 mg a day)"
        assert d.bindings["label_dose"] == "300 mg twice daily"
        assert d.refs == ("MedicationRequest/tuc",)
