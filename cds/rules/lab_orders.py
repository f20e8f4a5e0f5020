"""Lab tests the cards would order, already ordered and not yet resulted, or being ordered with
the drafts: named, never ordered a second time (§3c D20: the card stops once the record shows
what it asked for)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from cds.facts import Dated, PatientFacts, latest_within
from cds.facts.orders import DraftOrders
from cds.rules import Order
from cds.said import Said, say

# The orders.yaml key of each test, and the value set its order is read by.
_VALUESET = {
    "lab-creatinine": "creatinine",
    "lab-calcium": "calcium",
    "lab-albumin": "albumin",
    "test-her2": "her2-ihc",
    "her2-ish": "her2-ish",
    "her2-ihc-score-request": "her2-ihc-score-request",
}
_ORDERED: dict[str, Callable[[Dated], Said]] = {
    "lab-creatinine": lambda d: say("creatinine-ordered", when=d.when, ref=d.ref),
    "lab-calcium": lambda d: say("calcium-ordered", when=d.when, ref=d.ref),
    "lab-albumin": lambda d: say("albumin-ordered", when=d.when, ref=d.ref),
    "test-her2": lambda d: say("her2-ihc-ordered", when=d.when, ref=d.ref),
    "her2-ish": lambda d: say("her2-ish-ordered", when=d.when, ref=d.ref),
    "her2-ihc-score-request": lambda d: say("her2-ihc-score-requested", when=d.when, ref=d.ref),
}
_DRAFTED: dict[str, Callable[[str], Said]] = {
    "lab-creatinine": lambda ref: say("creatinine-drafted", ref=ref),
    "lab-calcium": lambda ref: say("calcium-drafted", ref=ref),
    "lab-albumin": lambda ref: say("albumin-drafted", ref=ref),
    "test-her2": lambda ref: say("her2-ihc-drafted", ref=ref),
    "her2-ish": lambda ref: say("her2-ish-drafted", ref=ref),
    "her2-ihc-score-request": lambda ref: say("her2-ihc-score-request-drafted", ref=ref),
}
CALCIUM_TESTS = ("lab-calcium", "lab-albumin")


def lab_ordered(f: PatientFacts, key: str, days: int, *, after: date | None = None) -> Dated | None:
    """The latest order for the test, written within `days` (the window a result would count
    in; for a HER2 test, after the result that asks for it) and still active."""
    return latest_within(f.lab_orders.get(_VALUESET[key], ()), f.as_of, days, after=after)


def _drafted(drafts: DraftOrders | None, key: str) -> str | None:
    """The draft ordering the test with the drafts being signed, if one does."""
    services = drafts.services if drafts is not None else ()
    return next((s.ref for s in services if _VALUESET[key] in s.kinds), None)


def lab_pending(f: PatientFacts, key: str, days: int, drafts: DraftOrders | None = None) -> bool:
    """Whether the test is ordered and not yet resulted, or being ordered with the drafts."""
    return lab_ordered(f, key, days) is not None or _drafted(drafts, key) is not None


def lab_actions(
    f: PatientFacts, keys: tuple[str, ...], days: int, drafts: DraftOrders | None = None
) -> tuple[Order, ...]:
    """An order for each test neither ordered nor being ordered."""
    return tuple(Order(key=k) for k in keys if not lab_pending(f, k, days, drafts))


def lab_lines(
    f: PatientFacts,
    keys: tuple[str, ...],
    days: int,
    drafts: DraftOrders | None = None,
    *,
    after: date | None = None,
) -> tuple[Said, ...]:
    """The tests being ordered with the drafts, or ordered and not yet resulted, each named."""
    out = []
    for k in keys:
        if (ref := _drafted(drafts, k)) is not None:
            out.append(_DRAFTED[k](ref))
        elif (d := lab_ordered(f, k, days, after=after)) is not None:
            out.append(_ORDERED[k](d))
    return tuple(out)
