"""R6n: one HER2 kinase inhibitor at a time (tki_overlap.py)."""

from __future__ import annotations

import pytest

from cds.parameters import Parameters
from cds.rules import Decision, DeleteDraft
from cds.terminology import Terminology
from fixtures.factories import CAPE, TRAS, Patient, after_thp_progression, draft_med
from tests.rules.helpers import run, text

TUCATINIB = ("2361285", "Tucatinib")
NERATINIB = ("1940643", "Neratinib")
LAPATINIB = ("480167", "Lapatinib")


def _r6n(
    p: Patient, t: Terminology, params: Parameters, *drafts: dict[str, object]
) -> list[Decision]:
    return [d for d in run(p, t, params, "order-sign", list(drafts)) if d.rule == "R6n"]


def _tucatinib() -> dict[str, object]:
    return draft_med("p", "tuc", TUCATINIB, "300 mg by mouth twice daily", 300)


class TestR6nOneKinaseInhibitorAtATime:
    @pytest.mark.parametrize(
        ("status", "end", "expected"),
        [
            ("active", None, ("switch-not-add", "lapatinib")),  # the old record left open
            ("unknown", None, ("other-status-unknown", "lapatinib")),
            ("stopped", 10, None),  # stopped before the switch
            ("completed", 10, None),
        ],
    )
    def test_another_in_use(
        self,
        t: Terminology,
        params: Parameters,
        status: str,
        end: int | None,
        expected: tuple[str, str] | None,
    ) -> None:
        p = after_thp_progression("p")
        p.med("MedicationStatement", LAPATINIB, status=status, start=200, end=end)
        found = _r6n(p, t, params, _tucatinib())
        assert [(d.variant, d.bindings["other"]) for d in found] == (
            [] if expected is None else [expected]
        )
        for d in found:
            assert d.indicator == "warning"
            assert "MedicationRequest/tuc" in d.refs

    def test_a_switch_suggests_removing_the_draft(self, t: Terminology, params: Parameters) -> None:
        p = after_thp_progression("p")
        p.med("MedicationStatement", NERATINIB, status="active", start=100)
        [d] = _r6n(p, t, params, _tucatinib())
        [proposal] = d.proposals
        assert proposal.actions == (DeleteDraft(draft_ref="MedicationRequest/tuc"),)
        assert any("neratinib" in text(line) for line in d.data)

    def test_an_unknown_status_asks_and_suggests_nothing(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = after_thp_progression("p")
        p.med("MedicationStatement", NERATINIB, status="unknown", start=100)
        [d] = _r6n(p, t, params, _tucatinib())
        assert d.proposals == ()

    @pytest.mark.parametrize("reverse", [False, True])
    def test_two_drafted_together(self, t: Terminology, params: Parameters, reverse: bool) -> None:
        """One card, as for two bone agents, whichever draft comes first: neither is in use
        nor in the medication list to stop (the card said 'tucatinib drafted while lapatinib
        is drafted or in use', or the other way round, with the drafts listed the other way)."""
        lap = draft_med("p", "lap", LAPATINIB, "1250 mg by mouth daily", 1250)
        drafted = (lap, _tucatinib()) if reverse else (_tucatinib(), lap)
        [d] = _r6n(after_thp_progression("p"), t, params, *drafted)
        assert (d.variant, d.bindings["drugs"]) == ("drafted-together", "lapatinib and tucatinib")
        assert [(p.label_bindings["drug"], p.actions) for p in d.proposals] == [
            ("lapatinib", (DeleteDraft(draft_ref="MedicationRequest/tuc"),)),
            ("tucatinib", (DeleteDraft(draft_ref="MedicationRequest/lap"),)),
        ]
        assert d.refs == ("MedicationRequest/lap", "MedicationRequest/tuc")

    def test_a_selected_inhibitor_beside_another_draft_of_the_order(
        self, t: Terminology, params: Parameters
    ) -> None:
        """Order-select: lapatinib selected while tucatinib is drafted, not selected, in the
        same order - signed together. (It was checked alone: no card.)"""
        lap = draft_med("p", "lap", LAPATINIB, "1250 mg by mouth daily", 1250)
        found = [
            d
            for d in run(
                after_thp_progression("p"),
                t,
                params,
                "order-select",
                [_tucatinib(), lap],
                ["MedicationRequest/lap"],
            )
            if d.rule == "R6n"
        ]
        assert [(d.variant, d.bindings["drugs"]) for d in found] == [
            ("drafted-together", "lapatinib and tucatinib")
        ]

    def test_two_drafted_beside_one_in_use_are_a_switch(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = after_thp_progression("p")
        p.med("MedicationStatement", NERATINIB, status="active", start=100)
        lap = draft_med("p", "lap", LAPATINIB, "1250 mg by mouth daily", 1250)
        [d] = _r6n(p, t, params, _tucatinib(), lap)
        assert d.variant == "switch-not-add"
        assert d.bindings["other"] == "lapatinib and neratinib"

    def test_one_inhibitor_and_its_partners_need_no_card(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = after_thp_progression("p")
        p.med("MedicationStatement", TUCATINIB, status="active", start=30)  # a refill
        drafts = [
            _tucatinib(),
            draft_med("p", "tras", TRAS, "6 mg/kg IV every 3 weeks"),
            draft_med("p", "cape", CAPE, "1000 mg/m2 by mouth twice daily"),
        ]
        assert _r6n(p, t, params, *drafts) == []
