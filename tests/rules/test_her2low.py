"""R15 trastuzumab deruxtecan for HER2-low and -ultralow disease (rules/her2low.py)."""

from __future__ import annotations

import pytest

from cds.parameters import Parameters
from cds.terminology import Terminology
from fixtures.factories import (
    ENHERTU,
    XGEVA,
    Patient,
    draft_med,
)
from tests.rules.helpers import bone_patient, concerns, creatinine_for, facts, run, text  # noqa: F401


class TestR15Her2Low:
    """R15: T-DXd for HER2-low/ultralow by the DESTINY-Breast04/-06 criteria; never HER2-0."""

    def patient(self, ihc: str | None, hr: str) -> Patient:
        p = Patient("p")
        p.breast_cancer()
        p.bone_mets(300)
        p.her2(290, "neg")
        if ihc is not None:
            p.her2_ihc(290, ihc)
        p.er(290, hr)
        p.pr(290, hr)
        p.labs()
        p.lvef(30, 60)
        p.med("MedicationStatement", XGEVA, status="active", start=280)
        p.med(
            "MedicationStatement",
            "Calcium carbonate 500 mg + vitamin D3",
            status="active",
            start=280,
        )
        p.dental_exam(30)
        return p

    def treated(self, p: Patient, *, chemo: bool, endocrine: bool) -> None:
        """Letrozole in the metastatic setting, then capecitabine, each stopped."""
        if endocrine:
            p.med(
                "MedicationStatement", ("72965", "Letrozole"), status="stopped", start=270, end=150
            )
        if chemo:
            p.med(
                "MedicationStatement",
                ("194000", "Capecitabine"),
                status="stopped",
                start=140,
                end=20,
            )

    @pytest.mark.parametrize(("status", "offered"), [("resolved", True), ("active", False)])
    def test_a_past_ild_is_named_where_tdxd_is_offered(
        self, t: Terminology, params: Parameters, status: str, offered: bool
    ) -> None:
        p = self.patient("1+", "neg")
        self.treated(p, chemo=True, endocrine=False)
        p.condition("http://snomed.info/sct", "205237003", "Pneumonitis", 900, status=status)
        d = next(x for x in run(p, t, params) if x.rule == "R15")
        assert bool(d.proposals) is offered
        assert any(text(x).startswith("ILD/pneumonitis recorded") for x in d.data)
        note = "ild-history" if offered else "ild-recorded"
        assert note in d.note_keys

    @pytest.mark.parametrize(
        ("ihc", "hr", "chemo", "endocrine", "expected"),
        [
            pytest.param("1+", "neg", True, False, "R15:db04", id="low-hr-neg-chemo"),
            pytest.param("1+", "neg", False, False, None, id="low-hr-neg-no-chemo"),
            pytest.param("1+", "pos", True, False, None, id="low-hr-pos-chemo-not-refractory"),
            pytest.param("1+", "pos", True, True, "R15:db04", id="low-hr-pos-chemo-refractory"),
            pytest.param("1+", "pos", False, True, "R15:db06", id="low-hr-pos-endocrine-only"),
            pytest.param(
                "0, faint incomplete staining", "pos", False, True, "R15:db06", id="ultralow-db06"
            ),
            pytest.param(
                "0, faint incomplete staining", "neg", True, False, None, id="ultralow-hr-neg"
            ),
            pytest.param(
                "0, faint incomplete staining", "pos", True, True, None, id="ultralow-after-chemo"
            ),
            pytest.param("0, no staining", "pos", False, True, None, id="her2-0"),
            pytest.param(None, "neg", True, False, "R15:ihc-score-needed", id="score-unknown"),
            pytest.param(None, "neg", False, False, None, id="score-unknown-not-eligible"),
        ],
    )
    def test_criteria(
        self,
        t: Terminology,
        params: Parameters,
        ihc: str | None,
        hr: str,
        chemo: bool,
        endocrine: bool,
        expected: str | None,
    ) -> None:
        p = self.patient(ihc, hr)
        self.treated(p, chemo=chemo, endocrine=endocrine)
        got = [c for c in concerns(run(p, t, params)) if c.startswith("R15")]
        assert got == ([expected] if expected else [])

    @pytest.mark.parametrize(
        ("ihc", "er", "chemo", "endocrine", "variant", "missing"),
        [
            pytest.param("1+", "neg", True, False, None, [], id="low-hr-neg-chemo-meets"),
            pytest.param("1+", "neg", False, False, "order-not-indicated", [], id="no-therapy"),
            pytest.param("0, no staining", "neg", True, False, "order-not-indicated", [], id="0"),
            pytest.param(None, "neg", True, False, "order-undecided", ["IHC"], id="score-unknown"),
            pytest.param(None, "neg", False, False, "order-not-indicated", [], id="score-no-chemo"),
            # PR negative, ER not on record: ER-negative meets DB-04, ER-positive needs
            # endocrine-refractory disease.
            pytest.param("1+", None, True, False, "order-undecided", ["hormone"], id="er-unknown"),
            pytest.param("1+", None, True, True, None, [], id="er-unknown-meets-either-way"),
            pytest.param("1+", None, False, False, "order-not-indicated", [], id="er-unknown-none"),
            pytest.param(
                None, None, True, False, "order-undecided", ["IHC", "hormone"], id="both-unknown"
            ),
            pytest.param(None, None, True, True, "order-undecided", ["IHC"], id="only-ihc-decides"),
        ],
    )
    def test_an_order_is_told_what_decides(
        self,
        t: Terminology,
        params: Parameters,
        ihc: str | None,
        er: str | None,
        chemo: bool,
        endocrine: bool,
        variant: str | None,
        missing: list[str],
    ) -> None:
        """A T-DXd order that meets neither criterion is warned; when the IHC score or the HR
        status is missing and would decide, the warning names it instead of 'not met'."""
        p = self.patient(ihc, "neg")
        if er is None:
            p.resources = [r for r in p.resources if "85337-4" not in str(r)]
        self.treated(p, chemo=chemo, endocrine=endocrine)
        drafts = [draft_med("p", "d1", ENHERTU, "5.4 mg/kg IV every 3 weeks")]
        r15 = [d for d in run(p, t, params, "order-select", drafts) if d.rule == "R15"]
        assert [d.variant for d in r15] == ([variant] if variant else [])
        said = [text(m) for d in r15 for m in d.missing]
        assert len(said) == len(missing)
        assert all(word in line for word, line in zip(missing, said, strict=True))

    @pytest.mark.parametrize(
        ("end", "variant", "missing"),
        [
            pytest.param(500, "order-not-indicated", False, id="ended-beyond-6-months"),
            pytest.param(None, "order-undecided", True, id="end-not-recorded"),
            pytest.param(320, None, False, id="ended-within-6-months"),
        ],
    )
    def test_an_order_after_adjuvant_chemotherapy(
        self,
        t: Terminology,
        params: Parameters,
        end: int | None,
        variant: str | None,
        missing: bool,
    ) -> None:
        """DB-04 counts recurrence within 6 months of adjuvant chemotherapy (metastasis 300
        days ago): a course with no recorded end may have ended within them."""
        p = self.patient("1+", "neg")
        p.med(
            "MedicationStatement", ("56946", "Paclitaxel"), status="completed", start=560, end=end
        )
        drafts = [draft_med("p", "d1", ENHERTU, "5.4 mg/kg IV every 3 weeks")]
        r15 = [d for d in run(p, t, params, "order-sign", drafts) if d.rule == "R15"]
        assert [d.variant for d in r15] == ([variant] if variant else [])
        said = [text(m) for d in r15 for m in d.missing]
        assert len(said) == int(missing)
        assert all(line.startswith("when the (neo)adjuvant chemotherapy ended") for line in said)

    @pytest.mark.parametrize("hook", ["order-sign", "patient-view"])
    def test_a_primary_her2_low_is_named_beside_a_metastatic_her2_0(
        self, t: Terminology, params: Parameters, hook: str
    ) -> None:
        """F4: the discordance is shown on every therapy card. A T-DXd order for a metastasis
        scored IHC 0 warns (the metastatic result is used), and names the primary's IHC 1+
        the order may rest on; at chart open no R15 card, R13 names the same discordance."""
        p = self.patient("0", "neg")
        p.her2(1500, "neg")
        p.her2_ihc(1500, "1+")
        self.treated(p, chemo=True, endocrine=False)
        drafts = [draft_med("p", "d1", ENHERTU, "5.4 mg/kg IV every 3 weeks")]
        decisions = run(p, t, params, hook, drafts if hook == "order-sign" else [])
        line = (
            f"HER2-low (IHC 1+) on the primary ({p.day(1500)}) but HER2-0 (IHC 0, no membrane "
            f"staining) on the metastatic specimen ({p.day(290)}); the metastatic result is used"
        )
        if hook == "order-sign":
            (r15,) = [d for d in decisions if d.rule == "R15"]
            assert r15.variant == "order-not-indicated"
            assert f"Receptor discordance: {line}" in [text(x) for x in r15.data]
        else:
            assert [d.rule for d in decisions if d.rule == "R15"] == []
            (r13,) = [d for d in decisions if d.rule == "R13"]
            assert (r13.variant, [text(x) for x in r13.data]) == ("discordance", [line])

    @pytest.mark.parametrize(
        ("status", "offered"),
        [
            pytest.param(None, False, id="not-restaged"),
            pytest.param(("359746009", "Patient's condition stable (finding)"), False, id="stable"),
            pytest.param(("271299001", "Patient's condition worsened (finding)"), True, id="worse"),
        ],
    )
    def test_no_offer_while_the_current_line_works(
        self,
        t: Terminology,
        params: Parameters,
        status: tuple[str, str] | None,
        offered: bool,
    ) -> None:
        """C6: letrozole then capecitabine stopped (DB-04 met), a third line of paclitaxel
        going on: T-DXd is offered only once it is progressing."""
        p = self.patient("1+", "pos")
        self.treated(p, chemo=True, endocrine=True)
        p.med("MedicationStatement", ("56946", "Paclitaxel"), status="active", start=15)
        if status is not None:
            p.disease_status(0, *status)
        got = [c for c in concerns(run(p, t, params)) if c.startswith("R15")]
        assert got == (["R15:db04"] if offered else [])

    def test_her2_positive_rules_never_fire(self, t: Terminology, params: Parameters) -> None:
        p = self.patient("1+", "neg")
        p.med(
            "MedicationStatement", ("194000", "Capecitabine"), status="stopped", start=140, end=20
        )
        assert [
            c for c in concerns(run(p, t, params)) if c[:3] in ("R6:", "R8a", "R8b", "R11")
        ] == []

    def test_unknown_hr_status_meets_neither(self, t: Terminology, params: Parameters) -> None:
        p = self.patient("1+", "neg")
        p.resources = [
            r for r in p.resources if "85337-4" not in str(r) and "85339-0" not in str(r)
        ]
        p.med(
            "MedicationStatement", ("194000", "Capecitabine"), status="stopped", start=140, end=20
        )
        assert not [c for c in concerns(run(p, t, params)) if c.startswith("R15")]

    def test_unknown_hr_status_meets_db04_after_chemo_and_endocrine_therapy(
        self, t: Terminology, params: Parameters
    ) -> None:
        """HR-negative or HR-positive and endocrine-refractory: DB-04 is met either way."""
        p = self.patient("1+", "neg")
        p.resources = [
            r for r in p.resources if "85337-4" not in str(r) and "85339-0" not in str(r)
        ]
        self.treated(p, chemo=True, endocrine=True)
        assert [c for c in concerns(run(p, t, params)) if c.startswith("R15")] == ["R15:db04"]

    def test_tdxd_suggestion_is_the_label_dose(self, t: Terminology, params: Parameters) -> None:
        p = self.patient("1+", "neg")
        p.med(
            "MedicationStatement", ("194000", "Capecitabine"), status="stopped", start=140, end=20
        )
        d = next(x for x in run(p, t, params) if x.rule == "R15")
        assert [a.key for prop in d.proposals for a in prop.actions] == ["tdxd"]  # type: ignore[union-attr]
        assert params.regimens["tdxd"].drugs[0].dose == "5.4 mg/kg IV every 3 weeks"
