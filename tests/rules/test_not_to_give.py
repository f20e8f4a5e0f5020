"""R0c: a medicine ordered while an order not to give it is in force (rules/not_to_give.py)."""

from __future__ import annotations

import pytest

from cds.parameters import Parameters
from cds.terminology import Terminology
from fixtures.factories import TRAS, XGEVA, ZOL4, draft_med
from tests.rules.helpers import bone_patient, concerns, run, text


class TestR0cOrderNotToGive:
    @pytest.mark.parametrize(
        ("forbidden", "status", "drafted", "expected"),
        [
            (ZOL4, "active", ZOL4, ["R0c:order-not-to-give"]),
            (ZOL4, "active", XGEVA, []),  # another agent: what the prohibition leaves open
            (TRAS, "active", TRAS, ["R0c:order-not-to-give"]),
            (ZOL4, "completed", ZOL4, []),  # no longer in force
        ],
    )
    def test_by_what_is_forbidden_and_what_is_drafted(
        self,
        t: Terminology,
        params: Parameters,
        forbidden: tuple[str, str],
        status: str,
        drafted: tuple[str, str],
        expected: list[str],
    ) -> None:
        p = bone_patient()
        prohibition = p.med("MedicationRequest", forbidden, status=status, start=10)
        prohibition["doNotPerform"] = True
        drafts = [draft_med("p", "d1", drafted, "as ordered")]
        decisions = [d for d in run(p, t, params, "order-sign", drafts) if d.rule == "R0c"]
        assert concerns(decisions) == expected
        if expected:
            [d] = decisions
            lines = [text(x) for x in d.data]
            assert lines[0] == "Draft order: MedicationRequest/d1"
            assert lines[1].startswith(f"Order not to give {d.bindings['drugs']}: ")
            assert lines[1].endswith(f", dated {p.day(10)}")

    def test_only_the_orders_selected(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient()
        p.med("MedicationRequest", ZOL4, status="active", start=10)["doNotPerform"] = True
        zol, dmab = draft_med("p", "d1", ZOL4, "4 mg"), draft_med("p", "d2", XGEVA, "120 mg")
        for selected, fires in (("MedicationRequest/d2", False), ("MedicationRequest/d1", True)):
            decisions = run(p, t, params, "order-select", [zol, dmab], selections=[selected])
            assert ("R0c:order-not-to-give" in concerns(decisions)) is fires
