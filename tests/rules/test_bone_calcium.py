"""R3 calcium and vitamin D (rules/bone_calcium.py)."""

from __future__ import annotations

import pytest

from cds.parameters import Parameters
from cds.terminology import Terminology
from fixtures.factories import (
    PAMIDRONATE,
    XGEVA,
    ZOL4,
    draft_med,
)
from tests.rules.helpers import bone_patient, concerns, creatinine_for, facts, run, text  # noqa: F401


class TestR3Calcium:
    def test_denosumab_order_with_low_calcium_is_critical(
        self, t: Terminology, params: Parameters
    ) -> None:
        d = run(
            bone_patient(calcium=8.0),
            t,
            params,
            "order-sign",
            [draft_med("p", "d", XGEVA, "120 mg SC q4w", 120)],
        )
        assert concerns(d)[0] == "R3a:hypocalcaemia"
        assert d[0].indicator == "critical"

    @pytest.mark.parametrize(
        ("draft", "calcium", "expected"),
        [
            (ZOL4, 8.0, ["R3a:hypocalcaemia-bisphosphonate"]),
            (PAMIDRONATE, 8.0, ["R3a:hypocalcaemia-bisphosphonate"]),
            (ZOL4, 9.4, []),
        ],
    )
    def test_a_bisphosphonate_order_with_low_calcium_is_a_warning(
        self,
        t: Terminology,
        params: Parameters,
        draft: tuple[str, str],
        calcium: float,
        expected: list[str],
    ) -> None:
        """§3c D4: low calcium is corrected before any bone agent, not only denosumab."""
        drafts = [draft_med("p", "d", draft, "as ordered", 4)]
        decisions = [
            d
            for d in run(bone_patient(calcium=calcium), t, params, "order-sign", drafts)
            if d.rule == "R3a"
        ]
        assert concerns(decisions) == expected
        if expected:
            assert decisions[0].indicator == "warning"
            assert [text(x) for x in decisions[0].data][1].startswith("Calcium 8 mg/dL on ")

    def test_supplements_not_suggested_when_hypercalcaemic(
        self, t: Terminology, params: Parameters
    ) -> None:
        for calcium, fires in ((10.4, True), (10.6, False)):
            p = bone_patient(calcium=calcium)
            p.med("MedicationStatement", XGEVA, status="active", start=20)
            assert ("R3b:supplement" in concerns(run(p, t, params))) is fires

    def test_a_supplement_of_unknown_status_is_named(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient()
        p.med("MedicationStatement", XGEVA, status="active", start=20)
        p.med("MedicationStatement", "calcium carbonate", status="unknown", start=400)
        [d] = [x for x in run(p, t, params) if x.rule == "R3b"]
        assert any("calcium recorded with status 'unknown'" in text(x) for x in d.data)

    def test_calcium_check_on_denosumab(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient()
        p.resources = [r for r in p.resources if "17861-6" not in str(r.get("code"))]
        p.med("MedicationStatement", XGEVA, status="active", start=20)
        p.med("MedicationStatement", "calcium carbonate", status="active", start=20)
        assert "R3c:check-calcium" in concerns(run(p, t, params))

    @pytest.mark.parametrize(
        ("status", "last_dose", "checked"),
        [
            pytest.param("on-hold", 62, False, id="held-no-dose-in-35-days"),
            pytest.param("on-hold", None, False, id="held-no-dose-charted"),
            pytest.param("on-hold", 20, True, id="held-dosed-20-days-ago"),
            pytest.param("active", 62, True, id="order-active"),
        ],
    )
    def test_calcium_check_on_denosumab_on_hold(
        self,
        t: Terminology,
        params: Parameters,
        status: str,
        last_dose: int | None,
        checked: bool,
    ) -> None:
        """C9: held, with no dose in the 35 days the check follows, there is no dose to monitor
        after (the order to resume it is checked against calcium, R3a)."""
        p = bone_patient()
        p.resources = [r for r in p.resources if "17861-6" not in str(r.get("code"))]
        p.med("MedicationRequest", XGEVA, status=status, start=300)
        if last_dose is not None:
            p.med("MedicationAdministration", XGEVA, status="completed", start=last_dose, mg=120)
        got = [c for c in concerns(run(p, t, params)) if c.startswith("R3c")]
        assert got == (["R3c:check-calcium"] if checked else [])

    @pytest.mark.parametrize(
        ("status", "end", "expected"),
        [
            ("active", None, ["R3c:check-calcium"]),
            ("unknown", None, ["R3c:check-calcium-status-unknown"]),
            ("unknown", 100, []),  # ended by its dates: history
        ],
    )
    def test_calcium_check_on_denosumab_of_unknown_status(
        self,
        t: Terminology,
        params: Parameters,
        status: str,
        end: int | None,
        expected: list[str],
    ) -> None:
        """A denosumab record of status 'unknown' may still be given: the check names it."""
        p = bone_patient()
        p.resources = [r for r in p.resources if "17861-6" not in str(r.get("code"))]
        p.med("MedicationStatement", XGEVA, status=status, start=400, end=end)
        decisions = [d for d in run(p, t, params) if d.rule == "R3c"]
        assert concerns(decisions) == expected
        if status == "unknown" and decisions:
            said = [text(x) for x in decisions[0].data]
            assert said
            assert all("recorded with status 'unknown'" in x for x in said)
