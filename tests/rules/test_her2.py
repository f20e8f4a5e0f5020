"""R6 next line of HER2-targeted therapy (rules/her2.py)."""

from __future__ import annotations

import pytest

from cds.parameters import Parameters
from cds.terminology import Terminology
from fixtures.factories import (
    CAPE,
    DOCE,
    PERT,
    PROGRESSION,
    TDXD,
    TRAS,
    WORSENED,
    XGEVA,
    Patient,
    after_tdxd_progression,
)
from tests.rules.helpers import bone_patient, concerns, creatinine_for, facts, run, text  # noqa: F401


class TestR6NextLine:
    def her2_patient(self) -> Patient:
        p = Patient("h")
        p.breast_cancer(2000)
        p.bone_mets(900)
        p.her2(890, "pos")
        p.er(890, "neg")
        p.pr(890, "neg")
        p.labs()
        p.lvef(20, 60)
        p.med("MedicationStatement", XGEVA, status="active", start=800)
        p.med("MedicationStatement", "calcium carbonate", status="active", start=800)
        p.dental_exam(30)
        return p

    @pytest.mark.parametrize(
        ("rtype", "status", "end", "said"),
        [
            pytest.param(
                "MedicationStatement", "completed", 1200, "last on {end}", id="course-ended"
            ),
            pytest.param(
                "MedicationAdministration", "completed", None, "last on {start}", id="dose-given"
            ),
            pytest.param("MedicationStatement", "completed", None, "", id="end-not-recorded"),
        ],
    )
    def test_an_adc_received_names_the_day_it_was_last_given(
        self,
        t: Terminology,
        params: Parameters,
        rtype: str,
        status: str,
        end: int | None,
        said: str,
    ) -> None:
        """Adjuvant T-DM1 (KATHERINE) years before the metastatic course: the later-line card
        leaves it out ("if not previously administered", ASCO 2022) and says when it was last
        given, so the oncologist can weigh it; with no end recorded, no day is made up."""
        p = after_tdxd_progression("h")  # THP, then T-DXd, each stopped for progression
        p.med(rtype, ("1371041", "Ado-trastuzumab emtansine"), status=status, start=1400, end=end)
        d = next(x for x in run(p, t, params) if x.rule == "R6")
        tail = said.format(end=p.day(end or 0), start=p.day(1400))
        expected = "Not suggested: trastuzumab emtansine (trastuzumab emtansine previously received"
        assert expected + (f", {tail})" if tail else ")") in [text(n) for n in d.notes]

    def test_a_line_ended_in_a_month_shows_the_month(
        self, t: Terminology, params: Parameters
    ) -> None:
        """THP charted from an outside history as 'June 2025 to November 2026', stopped for
        progression: the card said 'ended <the 30th of this month>', a day still to come."""
        p = self.her2_patient()
        for drug in (DOCE, TRAS, PERT):
            p.med(
                "MedicationStatement", drug, status="stopped", start=560, end=10, reason=PROGRESSION
            )["effectivePeriod"] = {"start": "2025-06", "end": "2026-11"}
        p.disease_status(12, *WORSENED)
        d = next(x for x in run(p, t, params) if x.rule == "R6")
        [line] = [text(x) for x in d.data if text(x).startswith("Metastatic line 1")]
        assert line.endswith("ended 2026-11, stopped for progression")

    def test_never_for_her2_negative_equivocal_or_unknown(
        self, t: Terminology, params: Parameters
    ) -> None:
        for her2 in ("neg", None, "equivocal"):
            p = bone_patient()
            p.resources = [r for r in p.resources if "48676-1" not in str(r.get("code"))]
            if her2 == "neg":
                p.her2(90, "neg")
            elif her2 == "equivocal":
                p.her2_ihc(90, "2+")
            assert not [c for c in concerns(run(p, t, params)) if c.startswith(("R6", "R7"))]

    def test_first_line_options_are_info_and_unranked(
        self, t: Terminology, params: Parameters
    ) -> None:
        d = next(x for x in run(self.her2_patient(), t, params) if x.rule == "R6")
        assert d.variant == "line-1"
        assert d.indicator == "info"
        assert [p.key for p in d.proposals] == [
            "thp-docetaxel",
            "thp-paclitaxel",
            "phesgo-docetaxel",  # §3c D17: the subcutaneous form, with docetaxel (label)
            "tdxd-pertuzumab",
        ]

    def test_no_card_while_the_line_continues(self, t: Terminology, params: Parameters) -> None:
        p = self.her2_patient()
        for drug in (TRAS, PERT):
            p.med("MedicationStatement", drug, status="active", start=700)
        assert not [x for x in run(p, t, params) if x.rule in ("R6", "R7")]

    def test_second_line_after_progression_excludes_nothing_used(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = self.her2_patient()
        for drug in (DOCE, TRAS, PERT):
            p.med(
                "MedicationStatement", drug, status="stopped", start=700, end=30, reason=PROGRESSION
            )
        d = next(x for x in run(p, t, params) if x.rule == "R6")
        assert d.variant == "line-2"
        assert [x.key for x in d.proposals] == ["tdxd", "tdm1"]

    def test_an_order_not_to_give_trastuzumab_leaves_out_its_regimens(
        self, t: Terminology, params: Parameters
    ) -> None:
        """Like an allergy, an order not to give an agent excludes even the antibody backbone."""
        p = self.her2_patient()
        p.med("MedicationRequest", TRAS, status="active", start=20)["doNotPerform"] = True
        d = next(x for x in run(p, t, params) if x.rule == "R6")
        assert d.variant == "line-1"  # no course of it: the order is not a line
        # Only the agent forbidden: trastuzumab deruxtecan is another medicine.
        assert [x.key for x in d.proposals] == ["tdxd-pertuzumab"]
        assert any("an order not to give it is on the chart" in text(n) for n in d.notes)

    def test_tdxd_hidden_with_ild(self, t: Terminology, params: Parameters) -> None:
        p = self.her2_patient()
        for drug in (DOCE, TRAS, PERT):
            p.med(
                "MedicationStatement", drug, status="stopped", start=700, end=30, reason=PROGRESSION
            )
        p.condition("", "", "", 300, text="Pneumonitis")
        d = next(x for x in run(p, t, params) if x.rule == "R6")
        assert [x.key for x in d.proposals] == ["tdm1"]
        assert any("interstitial" in text(n) for n in d.notes)

    @pytest.mark.parametrize("status", ["resolved", "inactive", "remission"])
    def test_tdxd_offered_with_a_past_ild_names_it(
        self, t: Terminology, params: Parameters, status: str
    ) -> None:
        """R6: 'hide it or add a warning detail' - a pneumonitis no longer active leaves T-DXd
        offered, the pneumonitis named (its order is R12's critical card)."""
        p = self.her2_patient()
        for drug in (DOCE, TRAS, PERT):
            p.med(
                "MedicationStatement", drug, status="stopped", start=700, end=30, reason=PROGRESSION
            )
        p.condition("http://snomed.info/sct", "205237003", "Pneumonitis", 900, status=status)
        d = next(x for x in run(p, t, params) if x.rule == "R6")
        assert "tdxd" in [x.key for x in d.proposals]
        assert any(text(x).startswith("ILD/pneumonitis recorded") for x in d.data)
        assert "ild-history" in d.note_keys

    def test_tdxd_not_reoffered_after_progression(self, t: Terminology, params: Parameters) -> None:
        p = self.her2_patient()
        for drug in (DOCE, TRAS, PERT):
            p.med(
                "MedicationStatement",
                drug,
                status="stopped",
                start=700,
                end=400,
                reason=PROGRESSION,
            )
        p.med("MedicationStatement", TDXD, status="active", start=390)
        p.disease_status(10, *WORSENED)
        d = next(x for x in run(p, t, params) if x.rule == "R6")
        assert d.variant == "line-3-plus"
        keys = [x.key for x in d.proposals]
        assert "tdxd" not in keys
        assert "tdm1" in keys
        assert "active-regimen-review" in d.note_keys

    def test_the_regimen_progressed_on_is_not_offered_again(
        self, t: Terminology, params: Parameters
    ) -> None:
        """Progressed on THP, then on trastuzumab + capecitabine: trastuzumab goes on with other
        partners (Rec 4.0), but trastuzumab + capecitabine itself is left out, and says why."""
        p = self.her2_patient()
        for drug in (DOCE, PERT):
            p.med(
                "MedicationStatement",
                drug,
                status="stopped",
                start=700,
                end=400,
                reason=PROGRESSION,
            )
        p.med("MedicationStatement", TRAS, status="active", start=700)
        p.med("MedicationStatement", CAPE, status="active", start=390)
        p.disease_status(10, *WORSENED)
        d = next(x for x in run(p, t, params) if x.rule == "R6")
        assert d.variant == "line-3-plus"
        keys = [x.key for x in d.proposals]
        assert "trastuzumab-capecitabine" not in keys
        assert {"trastuzumab-vinorelbine", "tucatinib-trastuzumab-capecitabine"} <= set(keys)
        assert any("the regimen of metastatic line 2" in text(n) for n in d.notes)

    @pytest.mark.parametrize("undated", [True, False])
    def test_an_undated_metastasis_is_said_to_leave_the_count_uncertain(
        self, t: Terminology, params: Parameters, undated: bool
    ) -> None:
        """With no metastasis date every regimen counts as metastatic (D14): the card says so."""
        p = self.her2_patient()
        if undated:
            for r in p.resources:
                if r["resourceType"] == "Condition" and "94222008" in str(r["code"]):
                    del r["onsetDateTime"], r["recordedDate"]
        for drug in (DOCE, TRAS, PERT):
            p.med(
                "MedicationStatement",
                drug,
                status="stopped",
                start=700,
                end=400,
                reason=PROGRESSION,
            )
        d = next(x for x in run(p, t, params) if x.rule == "R6")
        said = [text(x) for x in d.data]
        assert any("recorded with no date" in x for x in said) is undated

    def test_echocardiogram_added_when_lvef_is_old(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = self.her2_patient()
        p.resources = [r for r in p.resources if "10230-1" not in str(r.get("code"))]
        d = next(x for x in run(p, t, params) if x.rule == "R6")
        assert all(a.key == "echocardiogram" for a in [x.actions[-1] for x in d.proposals])  # type: ignore[union-attr]
