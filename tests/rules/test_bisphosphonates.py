"""R2 zoledronic acid and pamidronate orders (rules/bisphosphonates.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from cds.parameters import Parameters
from cds.rules import UpdateDraft
from cds.terminology import Terminology
from fixtures.factories import (
    STABLE,
    ZOL4,
    draft_med,
)
from tests.rules.helpers import (  # noqa: F401
    bone_patient,
    concerns,
    creatinine_for,
    facts,
    run,
    text,
)


class TestR2BisphosphonateOrders:
    def draft(self, mg: float = 4, text: str = "4 mg IV over 15 minutes") -> dict[str, Any]:
        return draft_med("p", "z", ZOL4, text, mg)

    @pytest.mark.parametrize(
        ("crcl", "expected"),
        [
            pytest.param(29, ["R2:renal-contraindicated"], id="crcl-29-critical"),
            pytest.param(30, ["R2:dose-adjust"], id="crcl-30-adjust"),
            pytest.param(60, ["R2:dose-adjust"], id="crcl-60-adjust"),
            pytest.param(61, [], id="crcl-61-ok"),
        ],
    )
    def test_renal_bands(
        self, t: Terminology, params: Parameters, crcl: float, expected: list[str]
    ) -> None:
        p = bone_patient(creatinine=creatinine_for(crcl))
        d = run(p, t, params, "order-sign", [self.draft()])
        assert [c for c in concerns(d) if c.startswith("R2")] == expected

    def test_reduced_draft_dose_is_accepted(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient(creatinine=creatinine_for(45))
        d = run(p, t, params, "order-sign", [self.draft(mg=3.3, text="3.3 mg IV over 15 min")])
        assert not [c for c in concerns(d) if c.startswith("R2")]

    @pytest.mark.parametrize(
        ("quantity", "expected"),
        [
            pytest.param({"value": 0.004, "unit": "g", "code": "g"}, "R2:dose-adjust", id="g"),
            pytest.param({"value": 4000, "unit": "ug", "code": "ug"}, "R2:dose-adjust", id="ug"),
            pytest.param({"value": 4, "unit": "mg", "code": "mg"}, "R2:dose-adjust", id="mg"),
            pytest.param({"value": 3, "unit": "mg", "code": "mg"}, None, id="3mg-ok"),
            pytest.param({"value": 3000, "code": "ug"}, None, id="3000ug-ok"),
            pytest.param({"value": 1, "code": "{pill}"}, "R2:dose-unknown", id="pill-unknown"),
            pytest.param({"value": 4}, "R2:dose-unknown", id="no-unit-unknown"),
        ],
    )
    def test_draft_dose_units(
        self,
        t: Terminology,
        params: Parameters,
        quantity: dict[str, Any],
        expected: str | None,
    ) -> None:
        """C2: a draft dose is read with its UCUM unit; an unknown unit is 'dose unknown'."""
        p = bone_patient(creatinine=creatinine_for(35))
        draft = draft_med("p", "z", ZOL4, "IV over 15 minutes every 12 weeks")
        draft["dosageInstruction"][0]["doseAndRate"] = [{"doseQuantity": quantity}]
        got = [c for c in concerns(run(p, t, params, "order-sign", [draft])) if c.startswith("R2")]
        assert got == ([expected] if expected else [])

    def test_dose_change_keeps_route_time_and_interval(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient(creatinine=creatinine_for(35))
        d = run(
            p, t, params, "order-sign", [self.draft(text="4 mg IV over 15 minutes every 12 weeks")]
        )
        update = d[0].proposals[0].actions[0]
        assert isinstance(update, UpdateDraft)
        assert update.dose_mg == 3.0

    def test_infusion_time_from_timing_duration(self, t: Terminology, params: Parameters) -> None:
        """C2: timing.repeat.duration + durationUnit is read before free text."""
        p = bone_patient()
        for value, unit, fires in ((10, "min", True), (15, "min", False), (0.25, "h", False)):
            draft = self.draft(text="4 mg IV every 12 weeks")
            draft["dosageInstruction"][0]["timing"] = {
                "repeat": {"duration": value, "durationUnit": unit}
            }
            d = run(p, t, params, "order-sign", [draft])
            assert ("R2:infusion-time" in concerns(d)) is fires

    def test_pamidronate_under_two_hours(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient()
        for minutes, fires in ((119, True), (120, False)):
            draft = draft_med(
                "p",
                "pam",
                ("1737461", "Pamidronate disodium 90 MG Injection"),
                f"90 mg IV over {minutes} minutes every 4 weeks",
                90,
            )
            assert (
                "R2:infusion-time" in concerns(run(p, t, params, "order-sign", [draft]))
            ) is fires

    def test_creatinine_rise_never_also_reduces(self, t: Terminology, params: Parameters) -> None:
        """C2: on treatment, a creatinine rise means withhold - not withhold and reduce."""
        p = bone_patient(creatinine=creatinine_for(45))
        p.obs("2160-0", 300, valueQuantity={"value": 0.6, "unit": "mg/dL", "code": "mg/dL"})
        p.med("MedicationAdministration", ZOL4, status="completed", start=90, mg=4)
        got = [
            c
            for c in concerns(run(p, t, params, "order-sign", [self.draft()]))
            if c.startswith("R2")
        ]
        assert got == ["R2:creatinine-rise"]

    def test_infusion_time_boundary(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient()
        for minutes, fires in ((14, True), (15, False)):
            d = run(
                p, t, params, "order-sign", [self.draft(text=f"4 mg IV over {minutes} minutes")]
            )
            assert ("R2:infusion-time" in concerns(d)) is fires

    @pytest.mark.parametrize(
        ("baseline", "latest", "fires"),
        [
            pytest.param(0.8, 1.29, False, id="normal-baseline-rise-0.49"),
            pytest.param(0.8, 1.3, True, id="normal-baseline-rise-0.5"),
            pytest.param(1.5, 2.49, False, id="abnormal-baseline-rise-0.99"),
            pytest.param(1.5, 2.5, True, id="abnormal-baseline-rise-1.0"),
        ],
    )
    def test_creatinine_rise(
        self, t: Terminology, params: Parameters, baseline: float, latest: float, fires: bool
    ) -> None:
        p = bone_patient()
        p.resources = [r for r in p.resources if "2160-0" not in str(r.get("code"))]
        p.obs("2160-0", 300, valueQuantity={"value": baseline, "unit": "mg/dL", "code": "mg/dL"})
        p.obs("2160-0", 3, valueQuantity={"value": latest, "unit": "mg/dL", "code": "mg/dL"})
        p.obs("35591-7", 3, valueQuantity={"value": 80, "unit": "mL/min"})  # isolate the rise
        p.med("MedicationAdministration", ZOL4, status="completed", start=90, mg=4)
        d = run(p, t, params, "order-sign", [self.draft()])
        assert ("R2:creatinine-rise" in concerns(d)) is fires

    @pytest.mark.parametrize(
        ("doses", "got"),
        [
            # the treatment the order continues began after the 0.6: a rise from it
            ((170, 86), ["R2:creatinine-rise"]),
            # adjuvant zoledronic acid every 6 months ended 200 days ago: this order begins a
            # treatment, and the table sets its dose from the creatinine of now
            ((746, 564, 382, 200), ["R2:dose-adjust"]),
            # ... ended 180 days ago: a treatment held, not ended - the rise counts
            ((726, 544, 362, 180), ["R2:creatinine-rise"]),
        ],
    )
    def test_the_rise_is_counted_from_before_the_treatment_the_order_continues(
        self, t: Terminology, params: Parameters, doses: tuple[int, ...], got: list[str]
    ) -> None:
        """Zometa label: the serum creatinine prior to treatment - the treatment now given
        (`new_treatment_gap_days`), not the first dose ever."""
        p = bone_patient(creatinine=creatinine_for(45))
        p.obs("2160-0", 800, valueQuantity={"value": 0.6, "unit": "mg/dL", "code": "mg/dL"})
        for days_ago in doses:
            p.med("MedicationAdministration", ZOL4, status="completed", start=days_ago, mg=4)
        d = run(p, t, params, "order-sign", [self.draft()])
        assert [c for c in concerns(d) if c.startswith("R2")] == got

    def test_a_dose_on_no_known_day_keeps_the_rise_check(
        self, t: Terminology, params: Parameters
    ) -> None:
        """A dose charted with no date may belong to the treatment going on: not a first dose
        (no dose table), so the rise is checked - from before the dated treatment, or the
        earliest result. Never neither: with a dated dose long ago as well, no check ran."""
        p = bone_patient(creatinine=creatinine_for(45))
        p.obs("2160-0", 900, valueQuantity={"value": 0.6, "unit": "mg/dL", "code": "mg/dL"})
        p.med("MedicationAdministration", ZOL4, status="completed", start=800, mg=4)
        undated = p.med("MedicationStatement", ZOL4, status="completed", start=100)
        del undated["effectivePeriod"]
        d = run(p, t, params, "order-sign", [self.draft()])
        assert [c for c in concerns(d) if c.startswith("R2")] == ["R2:creatinine-rise"]

    def test_before_the_first_dose_a_rise_is_the_baseline_for_the_dose_table(
        self, t: Terminology, params: Parameters
    ) -> None:
        """C2: the withhold rule is for a patient on treatment. Before the first dose the
        latest creatinine is the baseline, and the table sets the dose from it."""
        p = bone_patient(creatinine=creatinine_for(45))
        p.obs("2160-0", 300, valueQuantity={"value": 0.6, "unit": "mg/dL", "code": "mg/dL"})
        got = [
            c
            for c in concerns(run(p, t, params, "order-sign", [self.draft()]))
            if c.startswith("R2")
        ]
        assert got == ["R2:dose-adjust"]

    def test_severe_renal_suggests_delete_and_denosumab(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient(creatinine=creatinine_for(20))
        d = run(p, t, params, "order-sign", [self.draft()])[0]
        assert d.indicator == "critical"
        actions = d.proposals[0].actions
        # C2: the replacement carries the supports of R1 (calcium + vitamin D here). D19: the
        # draft is removed last, so a client applying actions in order never holds no order.
        assert [(type(a).__name__, getattr(a, "key", None)) for a in actions] == [
            ("RegimenOrder", "denosumab"),
            ("RegimenOrder", "calcium-vitamin-d"),
            ("DeleteDraft", None),
        ]


class TestR5Interval:
    """R5: zoledronic acid every 3-4 weeks for 3 months or more with stable disease."""

    @pytest.mark.parametrize(
        ("doses", "since"),
        [
            ((112, 84, 56, 28), 112),
            ((84, 56, 28), None),  # under 3 months of this treatment
            # adjuvant zoledronic acid every 6 months, ended 550 days before: another treatment
            ((1096, 914, 732, 550, 84, 56, 28), None),
            ((1096, 914, 732, 550, 112, 84, 56, 28), 112),
        ],
    )
    def test_counted_from_this_treatments_start(
        self, t: Terminology, params: Parameters, doses: tuple[int, ...], since: int | None
    ) -> None:
        p = bone_patient(dental=True)
        for days_ago in doses:
            p.med("MedicationAdministration", ZOL4, status="completed", start=days_ago, mg=4)
        p.disease_status(10, *STABLE)
        got = [d for d in run(p, t, params) if d.rule == "R5"]
        if since is None:
            assert got == []
        else:
            [d] = got
            assert text(d.data[0]).startswith(
                f"Zoledronic acid since {(p.as_of - timedelta(days=since)).isoformat()}"
            )
