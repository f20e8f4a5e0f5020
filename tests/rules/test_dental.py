"""R4 dental review and MRONJ (rules/dental.py)."""

from __future__ import annotations

import pytest

from cds.parameters import Parameters
from cds.terminology import Terminology
from fixtures.factories import (
    XGEVA,
    draft_med,
)
from tests.rules.helpers import bone_patient, concerns, creatinine_for, facts, run  # noqa: F401


class TestR4Dental:
    @pytest.mark.parametrize(
        ("days", "fires"),
        [pytest.param(183, False, id="6-months"), pytest.param(184, True, id="6-months+1")],
    )
    def test_look_back(self, t: Terminology, params: Parameters, days: int, fires: bool) -> None:
        """A BMA started 10 days ago: the dental card depends on the look-back alone (with R1
        firing, the referral travels inside its suggestions instead, C9)."""
        p = bone_patient(dental=False)
        p.med("MedicationStatement", XGEVA, status="active", start=10)
        p.dental_exam(days)
        assert ("R4a:dental-review" in concerns(run(p, t, params))) is fires

    def test_first_bma_order_without_dental(self, t: Terminology, params: Parameters) -> None:
        d = run(
            bone_patient(dental=False),
            t,
            params,
            "order-select",
            [draft_med("p", "d", XGEVA, "120 mg SC q4w", 120)],
        )
        assert "R4b:dental-before-bma" in concerns(d)

    def test_no_dental_card_once_on_bma(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient(dental=False)
        p.med("MedicationStatement", XGEVA, status="completed", start=300, end=200)
        d = run(p, t, params, "order-select", [draft_med("p", "d", XGEVA, "120 mg", 120)])
        assert "R4b:dental-before-bma" not in concerns(d)
