"""HER2 therapy reasoning of the second review (clinical-logic §3c D13-D16)."""

from __future__ import annotations

import pytest

from cds.parameters import Parameters
from cds.terminology import Terminology
from fixtures.build_scenarios import PACLI, WORSENED, Patient, drop_codes, her2_low_base
from tests.rules.test_rules import concerns, facts, run


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
        assert "one testing event" in her2.reported
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
