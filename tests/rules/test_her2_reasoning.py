"""HER2 therapy reasoning of the second review (clinical-logic §3c D13-D16)."""

from __future__ import annotations

import pytest

from cds.parameters import Parameters
from cds.said import Said
from cds.terminology import Terminology
from fixtures.factories import (
    DOCE,
    PACLI,
    PERT,
    PROGRESSION,
    SNOMED,
    STABLE,
    TDXD,
    TRAS,
    UCUM,
    WORSENED,
    Patient,
    drop_codes,
    her2_low_base,
    her2_positive_base,
)
from tests.rules.helpers import concerns, facts, run, text


def _reflex(days_after: int, *, specimen: str | None = None) -> Patient:
    """HER2-low-eligible patient: HER2 IHC 2+ 290 days ago, then an ISH (ratio 1.3, 2.5 copies:
    group 5) `days_after` days later; no interpretation; ER/PR negative; after paclitaxel."""
    p = her2_low_base("p", ihc=None, hr="neg")
    drop_codes(p, "48676-1")
    p.her2_ihc(290, "2+")
    ratio = p.obs("49683-6", 290 - days_after, valueQuantity={"value": 1.3, "unit": "{ratio}"})
    copies = p.obs("74860-8", 290 - days_after, valueQuantity={"value": 2.5, "unit": "{copies}"})
    if specimen:
        for r in (ratio, copies, p.resources[-3]):  # the IHC, added just before
            r["specimen"] = {"reference": f"Specimen/{specimen}"}
    p.med("MedicationStatement", PACLI, status="completed", start=250, end=60)
    p.disease_status(50, *WORSENED)
    return p


class TestOneTestingEvent:
    """D13: a reflex ISH reported days after the IHC belongs with it."""

    def test_ihc_2_plus_then_group_5_six_days_later_is_her2_low(
        self, t: Terminology, params: Parameters
    ) -> None:
        f = facts(_reflex(6), t, params)
        her2 = f.receptors.her2
        assert her2 is not None
        assert (her2.status, her2.her2_category, her2.ihc_score, her2.ish_group) == (
            "negative",
            "low",
            2,
            5,
        )
        assert len(her2.report_dates) == 2
        assert isinstance(her2.reported, Said)
        assert "one testing event" in text(her2.reported)
        assert concerns(run(_reflex(6), t, params)) == ["R15:db04"]

    @pytest.mark.parametrize(("days", "one_event"), [(30, True), (31, False)])
    def test_window_boundary(
        self, t: Terminology, params: Parameters, days: int, one_event: bool
    ) -> None:
        her2 = facts(_reflex(days), t, params).receptors.her2
        assert her2 is not None
        assert (her2.ihc_score == 2 and her2.ish_group == 5) is one_event

    def test_a_second_ihc_is_another_event(self, t: Terminology, params: Parameters) -> None:
        """Two IHC results ten days apart (two biopsies) are not merged into one."""
        p = her2_low_base("p", ihc=None, hr="neg")
        drop_codes(p, "48676-1")
        p.her2_ihc(290, "3+")
        p.her2_ihc(280, "1+")
        her2 = facts(p, t, params).receptors.her2
        assert her2 is not None
        assert (her2.ihc_score, her2.status) == (1, "negative")

    def test_same_specimen_beyond_the_window(self, t: Terminology, params: Parameters) -> None:
        """With a specimen reference the window does not apply: the specimen decides."""
        her2 = facts(_reflex(45, specimen="bx-1"), t, params).receptors.her2
        assert her2 is not None
        assert (her2.ihc_score, her2.ish_group, her2.her2_category) == (2, 5, "low")


def _her2_positive(met_days: int = 200) -> Patient:
    p = her2_positive_base("p", bma=True, met_days=met_days)
    return p


class TestChemotherapyOnly:
    """D15: HER2-positive metastatic disease treated with chemotherapy alone."""

    @pytest.mark.parametrize("status", ["active", "completed"])
    def test_first_line_card_and_never_her2_therapy_stopped(
        self, t: Terminology, params: Parameters, status: str
    ) -> None:
        p = _her2_positive()
        p.med(
            "MedicationStatement",
            PACLI,
            status=status,
            start=150,
            end=None if status == "active" else 60,
        )
        got = concerns(run(p, t, params))
        assert got == ["R6:line-1"]
        f = facts(p, t, params)
        assert f.lines.lines == ()
        assert f.systemic.chemotherapy == 1


class TestDatingTheMetastaticSetting:
    """D14: the metastatic setting dated by every piece of evidence."""

    def _late_condition(self) -> Patient:
        """THP stopped for progression 210 days ago, T-DXd since 200 days ago, stable; the bone
        metastasis Condition was entered 100 days ago."""
        p = _her2_positive(met_days=100)
        for drug in (DOCE, TRAS, PERT):
            p.med(
                "MedicationStatement",
                drug,
                status="stopped",
                start=800,
                end=210,
                reason=PROGRESSION,
            )
        p.med("MedicationStatement", TDXD, status="active", start=200, dose="5.4 mg/kg q3w")
        p.disease_status(15, *STABLE)
        return p

    def test_an_active_tdxd_is_never_an_ended_adjuvant_regimen(
        self, t: Terminology, params: Parameters
    ) -> None:
        """The issue's patient: no 'consider second-line options' while T-DXd works."""
        p = self._late_condition()
        f = facts(p, t, params)
        assert f.lines.current is not None
        assert f.lines.current.anchor == frozenset({"trastuzumab deruxtecan"})
        assert f.lines.confidence == "low"
        assert f.lines.setting_conflicts
        # The bone metastasis entered late documents the disease T-DXd treats: not a new site.
        assert f.lines.progression == "none"
        assert concerns(run(p, t, params)) == []

    def test_curative_intent_keeps_therapy_adjuvant(
        self, t: Terminology, params: Parameters
    ) -> None:
        """Recorded curative intent (mCODE procedure intent 373808002) outweighs the drug."""
        p = self._late_condition()
        tdxd = p.resources[-2]
        tdxd["status"] = "completed"
        tdxd["effectivePeriod"]["end"] = p.day(160)
        tdxd["extension"] = [
            {
                "url": "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-procedure-intent",
                "valueCodeableConcept": {
                    "coding": [{"system": "http://snomed.info/sct", "code": "373808002"}]
                },
            }
        ]
        f = facts(p, t, params)
        assert f.lines.setting_conflicts == ()
        assert f.lines.lines == ()

    def test_tucatinib_dates_the_setting(self, t: Terminology, params: Parameters) -> None:
        p = _her2_positive(met_days=30)
        p.med("MedicationStatement", ("2361285", "Tucatinib"), status="active", start=120)
        f = facts(p, t, params)
        assert f.lines.current is not None
        assert "tucatinib" in f.lines.current.anchor
        assert f.lines.setting_conflicts


class TestLabelsGateOptions:
    """D16: tucatinib needs a completed prior anti-HER2 regimen in the metastatic setting."""

    def _brain_on(self, first_line: bool) -> Patient:
        p = _her2_positive(met_days=400)
        if first_line:
            for drug in (DOCE, TRAS, PERT):
                p.med("MedicationStatement", drug, status="active", start=380)
        else:
            for drug in (DOCE, TRAS, PERT):
                p.med(
                    "MedicationStatement",
                    drug,
                    status="stopped",
                    start=380,
                    end=200,
                    reason=PROGRESSION,
                )
            p.med("MedicationStatement", TDXD, status="active", start=190)
        p.condition(SNOMED, "94225005", "Secondary malignant neoplasm of brain", 40)
        p.disease_status(35, *STABLE)
        return p

    def test_no_tucatinib_on_first_line_thp(self, t: Terminology, params: Parameters) -> None:
        got = concerns(run(self._brain_on(first_line=True), t, params))
        assert got == ["R8a:local-therapy"]

    def test_tucatinib_after_a_completed_metastatic_regimen(
        self, t: Terminology, params: Parameters
    ) -> None:
        got = concerns(run(self._brain_on(first_line=False), t, params))
        assert got == ["R8a:local-therapy", "R8b:tucatinib"]

    @pytest.mark.parametrize("missing", ["creatinine", "weight"])
    def test_without_a_crcl_the_tucatinib_card_says_why_it_has_no_regimen(
        self, t: Terminology, params: Parameters, missing: str
    ) -> None:
        """D8: capecitabine's dose needs a Cockcroft-Gault CrCl. Without a recent creatinine
        (or weight) the regimen is not suggested, and the card says so - it used to vanish."""
        code = {"creatinine": "2160-0", "weight": "29463-7"}[missing]
        p = self._brain_on(first_line=False)
        p.resources = [r for r in p.resources if code not in str(r.get("code"))]
        [card] = [d for d in run(p, t, params) if d.rule == "R8b"]
        assert (card.variant, card.indicator, card.proposals) == (
            "tucatinib-not-offered",
            "info",
            (),
        )
        said = [text(x) for x in (*card.data, *card.notes)]
        assert any("cannot be calculated" in x and missing in x for x in said), said
        assert any(
            x.startswith("Not suggested: tucatinib + trastuzumab + capecitabine") for x in said
        )

    def test_on_first_line_without_a_crcl_there_is_still_no_tucatinib_card(
        self, t: Terminology, params: Parameters
    ) -> None:
        """D16 first: the label gates the option before capecitabine's dose is looked at."""
        p = self._brain_on(first_line=True)
        p.resources = [r for r in p.resources if "2160-0" not in str(r.get("code"))]
        assert [c for c in concerns(run(p, t, params)) if c.startswith("R8b")] == []

    def test_with_capecitabine_contraindicated_there_is_no_tucatinib_card(
        self, t: Terminology, params: Parameters
    ) -> None:
        """CrCl under 30: capecitabine is contraindicated (D8), a finding, not missing data."""
        p = self._brain_on(first_line=False)
        p.resources = [r for r in p.resources if "2160-0" not in str(r.get("code"))]
        p.obs(
            "2160-0",
            7,
            valueQuantity={"value": 3.5, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"},
        )
        assert [c for c in concerns(run(p, t, params)) if c.startswith("R8b")] == []


class TestRegimenOptions:
    """D17: subcutaneous forms, an orderable vinorelbine dose, the neratinib escalation."""

    def _keys(self, p: Patient, t: Terminology, params: Parameters) -> list[str]:
        [d] = [x for x in run(p, t, params) if x.rule == "R6"]
        return [prop.key for prop in d.proposals]

    def test_first_line_offers_phesgo_with_docetaxel(
        self, t: Terminology, params: Parameters
    ) -> None:
        keys = self._keys(her2_positive_base("p", bma=True), t, params)
        assert "phesgo-docetaxel" in keys
        regimen = params.regimens["phesgo-docetaxel"]
        assert set(regimen.ingredients) == {"docetaxel", "pertuzumab", "trastuzumab"}

    def test_later_lines_offer_the_neratinib_escalation_and_a_vinorelbine_dose(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = her2_positive_base("p", bma=True, met_days=950)
        for drug in (DOCE, TRAS, PERT):
            p.med(
                "MedicationStatement",
                drug,
                status="stopped",
                start=800,
                end=500,
                reason=PROGRESSION,
            )
        p.med("MedicationStatement", TDXD, status="stopped", start=490, end=30, reason=PROGRESSION)
        p.disease_status(20, *WORSENED)
        keys = self._keys(p, t, params)
        assert {"neratinib-capecitabine", "neratinib-escalation-capecitabine"} <= set(keys)
        vinorelbine = params.regimens["trastuzumab-vinorelbine"].drugs[1].dose
        assert vinorelbine.startswith("30 mg/m² IV on days 1 and 8")


@pytest.mark.parametrize(
    ("end", "note", "words"),
    [
        pytest.param(None, True, "last recorded", id="end-not-recorded"),
        pytest.param(600, False, "ended", id="end-recorded"),
    ],
)
def test_first_line_names_an_adjuvant_end_not_recorded(
    t: Terminology, params: Parameters, end: int | None, note: bool, words: str
) -> None:
    """Adjuvant trastuzumab ordered 700 days ago, metastasis 120 days ago: with no recorded
    end, the card says the order's date is its last known day, not its end, and that relapse
    within 12 months of the end would make this second line (ASCO Rec 5.0)."""
    p = her2_positive_base("p", bma=True)
    p.med("MedicationRequest", TRAS, status="completed", start=700, end=end)
    (r6,) = [d for d in run(p, t, params) if d.rule == "R6"]
    assert r6.variant == "line-1"
    assert ("adjuvant-end-unrecorded" in r6.note_keys) is note
    adjuvant = [text(x) for x in r6.data if "adjuvant" in text(x)]
    assert len(adjuvant) == 1
    assert words in adjuvant[0]


def test_a_later_line_names_an_adjuvant_end_not_recorded(
    t: Terminology, params: Parameters
) -> None:
    """The same unknown end after a metastatic line: this line's options, or the next's."""
    p = her2_positive_base("p", bma=True, met_days=400)
    p.med("MedicationRequest", TRAS, status="completed", start=1000)
    p.med("MedicationStatement", TDXD, status="active", start=380, dose="5.4 mg/kg q3w")
    p.disease_status(20, *WORSENED)
    (r6,) = [d for d in run(p, t, params) if d.rule == "R6"]
    assert r6.variant == "line-2"
    assert "adjuvant-end-unrecorded" in r6.note_keys
