"""R12: T-DXd and interstitial lung disease / pneumonitis (rules/ild.py)."""

from __future__ import annotations

import pytest

from cds.parameters import Parameters
from cds.terminology import Terminology
from fixtures.factories import TDXD, draft_med
from tests.rules.helpers import bone_patient, run


class TestR12TdxdOrdered:
    @pytest.mark.parametrize(
        ("given_days_ago", "ild", "expected"),
        [
            (None, False, ["R12:start-monitoring"]),  # a first order: monitor from the start
            (21, False, []),  # the next cycle of a course already given: no start
            (21, True, ["R12:ild-order"]),  # with ILD on record, every order is critical
        ],
    )
    def test_by_what_came_before(
        self,
        t: Terminology,
        params: Parameters,
        given_days_ago: int | None,
        ild: bool,
        expected: list[str],
    ) -> None:
        p = bone_patient(her2="pos")
        p.lvef(10, 60)
        if given_days_ago is not None:
            p.med("MedicationAdministration", TDXD, status="completed", start=given_days_ago)
        if ild:
            p.condition("", "", "", 300, text="Pneumonitis")
        drafts = [draft_med("p", "d", TDXD, "5.4 mg/kg every 3 weeks")]
        got = [d.concern for d in run(p, t, params, "order-sign", drafts) if d.rule == "R12"]
        assert got == expected
