"""Lab tests already ordered and not yet resulted (rules/lab_orders.py): named on the cards that
find them missing, never suggested a second time (§3c D20)."""

from __future__ import annotations

from typing import Any

import pytest

from cds.parameters import Parameters
from cds.rules import Decision, Order
from cds.terminology import Terminology
from fixtures.factories import LOINC, XGEVA, ZOL4, Patient, draft_med, drop_codes
from tests.rules.helpers import bone_patient, ordered, run, text

_TESTS = {"creatinine": "2160-0", "calcium": "17861-6", "albumin": "1751-7"}


def _lab_order(test: str, status: str = "active", days_ago: int = 2) -> dict[str, Any]:
    return ordered(LOINC, _TESTS[test], status=status, days_ago=days_ago, rid=f"sr-{test}")


def _orders(d: Decision) -> list[str]:
    return [a.key for pr in d.proposals for a in pr.actions if isinstance(a, Order)]


def _lines(d: Decision) -> list[str]:
    return [text(x) for x in d.data]


def _no_labs(*tests: str) -> Patient:
    p = bone_patient(dental=True)
    drop_codes(p, *(_TESTS[t] for t in tests))
    return p


class TestLabOrderedNotYetResulted:
    @pytest.mark.parametrize(
        ("status", "days_ago", "counts"),
        [
            pytest.param("active", 2, True, id="ordered"),
            pytest.param("active", 30, True, id="ordered-30-days-ago"),
            pytest.param("active", 31, False, id="older-than-a-result-would-count"),
            pytest.param("draft", 2, False, id="draft-nobody-signed"),
            pytest.param("completed", 2, False, id="done"),
            pytest.param("revoked", 2, False, id="revoked"),
        ],
    )
    def test_a_zoledronic_acid_order_without_creatinine(
        self, t: Terminology, params: Parameters, status: str, days_ago: int, counts: bool
    ) -> None:
        p = _no_labs("creatinine")
        p.add(_lab_order("creatinine", status, days_ago))
        [card] = [
            d
            for d in run(p, t, params, "order-sign", [draft_med("p", "z", ZOL4, "4 mg IV", 4)])
            if d.concern == "R2:no-creatinine"
        ]
        assert ("lab-creatinine" in _orders(card)) is not counts
        named = "Serum creatinine ordered" in " ".join(_lines(card))
        assert named is counts

    def test_the_start_card_orders_only_what_is_not_ordered(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = _no_labs("creatinine", "calcium", "albumin")
        [before] = [d for d in run(p, t, params) if d.rule == "R1"]
        p.add(_lab_order("creatinine"))
        [start] = [d for d in run(p, t, params) if d.rule == "R1"]
        assert {"lab-creatinine", "lab-calcium", "lab-albumin"} <= set(_orders(before))
        assert "lab-creatinine" not in _orders(start)
        assert {"lab-calcium", "lab-albumin"} <= set(_orders(start))
        assert any(x.startswith("Serum creatinine ordered") for x in _lines(start))

    def test_a_denosumab_order_with_calcium_ordered(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = _no_labs("calcium", "albumin")
        p.add(_lab_order("calcium"))
        drafts = [draft_med("p", "d", XGEVA, "120 mg SC q4w", 120)]
        [card] = [d for d in run(p, t, params, "order-sign", drafts) if d.rule == "R3a"]
        assert card.concern == "R3a:calcium-unknown"
        assert card.proposals == ()
        assert any(x.startswith("Serum calcium ordered") for x in _lines(card))

    @pytest.mark.parametrize(("days_ago", "quiet"), [(35, True), (36, False)])
    def test_the_calcium_check_on_denosumab(
        self, t: Terminology, params: Parameters, days_ago: int, quiet: bool
    ) -> None:
        p = _no_labs("calcium", "albumin")
        p.obs("17861-6", 60, valueQuantity={"value": 9.2, "unit": "mg/dL", "code": "mg/dL"})
        p.on_denosumab(80)
        p.add(_lab_order("calcium", days_ago=days_ago))
        fired = [d.concern for d in run(p, t, params) if d.rule == "R3c"]
        assert (fired == []) is quiet


class TestLabDraftedWithTheOrder:
    def test_a_creatinine_drafted_with_zoledronic_acid(
        self, t: Terminology, params: Parameters
    ) -> None:
        drafted = _lab_order("creatinine", "draft") | {"id": "draft-creatinine"}
        drafts = [draft_med("p", "z", ZOL4, "4 mg IV", 4), drafted]
        [card] = [
            d
            for d in run(_no_labs("creatinine"), t, params, "order-sign", drafts)
            if d.concern == "R2:no-creatinine"
        ]
        assert card.proposals == ()
        assert "Serum creatinine being ordered with it (ServiceRequest/draft-creatinine)" in (
            _lines(card)
        )

    @pytest.mark.parametrize(
        ("drafted", "suggested"),
        [((), True), (("calcium", "albumin"), False), (("calcium",), False), (("albumin",), True)],
    )
    def test_calcium_drafted_with_denosumab(
        self,
        t: Terminology,
        params: Parameters,
        drafted: tuple[str, ...],
        suggested: bool,
    ) -> None:
        drafts = [draft_med("p", "d", XGEVA, "120 mg SC q4w", 120)] + [
            _lab_order(x, "draft") | {"id": f"draft-{x}"} for x in drafted
        ]
        p = _no_labs("calcium", "albumin")
        [card] = [d for d in run(p, t, params, "order-sign", drafts) if d.rule == "R3a"]
        assert bool(card.proposals) is suggested
