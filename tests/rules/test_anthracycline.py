"""R10 anthracycline with HER2 therapy (rules/anthracycline.py)."""

from __future__ import annotations

import pytest

from cds.parameters import Parameters
from cds.terminology import Terminology
from fixtures.factories import (
    DOXO,
    TRAS,
    Patient,
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


class TestR10Anthracycline:
    def on_trastuzumab(self) -> Patient:
        p = bone_patient(her2="pos")
        p.med("MedicationStatement", TRAS, status="active", start=60)
        return p

    def test_order_while_on_trastuzumab_is_critical_with_delete(
        self, t: Terminology, params: Parameters
    ) -> None:
        d = run(
            self.on_trastuzumab(),
            t,
            params,
            "order-sign",
            [draft_med("p", "dox", DOXO, "60 mg/m2")],
        )
        r10 = next(x for x in d if x.rule == "R10")
        assert (r10.concern, r10.indicator) == ("R10:concurrent", "critical")
        assert type(r10.proposals[0].actions[0]).__name__ == "DeleteDraft"

    @pytest.mark.parametrize(
        ("status", "end", "expected"),
        [
            ("unknown", None, "R10:concurrent"),  # may still be given: named
            ("unknown", 300, None),  # ended by its dates, outside the washout
            # Not in use (its washout: test_washout_from_the_last_known_day).
            ("stopped", None, None),
        ],
    )
    def test_trastuzumab_of_unknown_status_counts_and_is_named(
        self,
        t: Terminology,
        params: Parameters,
        status: str,
        end: int | None,
        expected: str | None,
    ) -> None:
        p = bone_patient(her2="pos")
        p.med("MedicationStatement", TRAS, status=status, start=600, end=end)
        d = run(p, t, params, "order-sign", [draft_med("p", "dox", DOXO, "60 mg/m2")])
        r10 = [x for x in d if x.rule == "R10" and x.variant.startswith("concurrent")]
        assert concerns(r10) == ([expected] if expected else [])
        if expected:
            assert any("status 'unknown'" in text(x) for x in r10[0].data)
        p.med("MedicationStatement", DOXO, status="active", start=10)
        both = [x for x in run(p, t, params) if x.rule == "R10pv"]
        assert bool(both) is (expected is not None)

    @pytest.mark.parametrize(
        ("records", "expected"),
        [
            ([("unknown", None)], ("R10:concurrent-status-unknown", "warning")),
            ([("unknown", None), ("active", None)], ("R10:concurrent", "critical")),
            ([("unknown", 300)], None),  # ended by its dates
            ([("completed", 100)], None),  # sequential: anthracycline, then trastuzumab
        ],
    )
    def test_her2_order_with_an_anthracycline_of_unknown_status(
        self,
        t: Terminology,
        params: Parameters,
        records: list[tuple[str, int | None]],
        expected: tuple[str, str] | None,
    ) -> None:
        """The reverse order: an anthracycline that may still be given is named, never dropped;
        one of unknown status only is a question (warning), not a finding."""
        p = bone_patient(her2="pos")
        for status, end in records:
            p.med("MedicationStatement", DOXO, status=status, start=400, end=end)
        d = run(p, t, params, "order-sign", [draft_med("p", "tras", TRAS, "8 mg/kg")])
        r10 = [x for x in d if x.rule == "R10"]
        assert [(x.concern, x.indicator) for x in r10] == ([expected] if expected else [])
        if expected:
            assert any("status 'unknown'" in text(x) for x in r10[0].data)

    @pytest.mark.parametrize(
        ("days", "fires"),
        [pytest.param(213, True, id="7-months"), pytest.param(214, False, id="7-months+1")],
    )
    def test_washout(self, t: Terminology, params: Parameters, days: int, fires: bool) -> None:
        p = bone_patient(her2="pos")
        p.med("MedicationStatement", TRAS, status="completed", start=600, end=days)
        d = run(p, t, params, "order-sign", [draft_med("p", "dox", DOXO, "60 mg/m2")])
        assert ("R10:washout" in concerns(d)) is fires

    @pytest.mark.parametrize(
        ("rtype", "start", "end", "expected"),
        [
            # A start (or an order's date) within the washout: within it, whatever the end.
            pytest.param("MedicationRequest", 200, None, "R10:washout", id="written-within"),
            # Beyond it with no recorded end: the last dose may have been within it.
            pytest.param(
                "MedicationRequest", 500, None, "R10:washout-end-unrecorded", id="written-before"
            ),
            pytest.param(
                "MedicationStatement", 800, None, "R10:washout-end-unrecorded", id="period-open"
            ),
            # A recorded end beyond the washout, or a dose given then: past it.
            pytest.param("MedicationStatement", 800, 300, None, id="ended-before"),
            pytest.param("MedicationAdministration", 300, None, None, id="dose-before"),
        ],
    )
    def test_washout_from_the_last_known_day(
        self,
        t: Terminology,
        params: Parameters,
        rtype: str,
        start: int,
        end: int | None,
        expected: str | None,
    ) -> None:
        p = bone_patient(her2="pos")
        p.med(rtype, TRAS, status="completed", start=start, end=end)
        d = run(p, t, params, "order-sign", [draft_med("p", "dox", DOXO, "60 mg/m2")])
        r10 = [c for c in concerns(d) if c.startswith("R10")]
        assert r10 == ([expected] if expected else [])


class TestR10BothActive:
    def test_the_card_says_since_when_each_drug_is_recorded(
        self, t: Terminology, params: Parameters
    ) -> None:
        """An adjuvant doxorubicin order never closed reads as active (F5); the card gives its
        date so that the clinician sees an order written years ago."""
        p = bone_patient(her2="pos")
        p.med("MedicationRequest", DOXO, status="active", start=1000)
        p.med("MedicationStatement", TRAS, status="active", start=60)
        [d] = [x for x in run(p, t, params) if x.rule == "R10pv"]
        said = [text(x) for x in d.data]
        assert any(x.startswith(f"On doxorubicin since {p.day(1000)[:10]} (") for x in said)
        assert any(x.startswith(f"On trastuzumab since {p.day(60)[:10]} (") for x in said)

    @pytest.mark.parametrize("rtype", ["MedicationRequest", "MedicationStatement"])
    def test_a_drug_on_hold_is_said_to_be(
        self, t: Terminology, params: Parameters, rtype: str
    ) -> None:
        """An order or statement on hold counts as in use (it may resume: the anthracycline
        card stays critical) and the card says it is on hold."""
        p = bone_patient(her2="pos")
        held = p.med(rtype, TRAS, status="on-hold", start=60)
        drafts = [draft_med(p.pid, "d1", DOXO, "60 mg/m2 IV every 3 weeks")]
        [d] = [x for x in run(p, t, params, "order-sign", drafts) if x.rule == "R10"]
        assert d.indicator == "critical"
        said = [text(x) for x in d.data]
        line = f"On trastuzumab since {p.day(60)[:10]}, on hold ({rtype}/{held['id']})"
        assert line in said
