"""Lab tests the cards would order, already ordered and not yet resulted: named, never ordered a
second time (§3c D20: the card stops once the record shows what it asked for)."""

from __future__ import annotations

from collections.abc import Callable

from cds.facts import Dated, PatientFacts, latest_within
from cds.rules import Order
from cds.said import Said, say

# The orders.yaml key of each test, and the value set its order is read by.
_VALUESET = {"lab-creatinine": "creatinine", "lab-calcium": "calcium", "lab-albumin": "albumin"}
_LINE: dict[str, Callable[[Dated], Said]] = {
    "lab-creatinine": lambda d: say("creatinine-ordered", when=d.when, ref=d.ref),
    "lab-calcium": lambda d: say("calcium-ordered", when=d.when, ref=d.ref),
    "lab-albumin": lambda d: say("albumin-ordered", when=d.when, ref=d.ref),
}
CALCIUM_TESTS = ("lab-calcium", "lab-albumin")


def lab_ordered(f: PatientFacts, key: str, days: int) -> Dated | None:
    """The latest order for the test, written within `days` (the window a result would count
    in) and still active."""
    return latest_within(f.lab_orders.get(_VALUESET[key], ()), f.as_of, days)


def lab_actions(f: PatientFacts, keys: tuple[str, ...], days: int) -> tuple[Order, ...]:
    """An order for each test not already ordered."""
    return tuple(Order(key=k) for k in keys if lab_ordered(f, k, days) is None)


def lab_lines(f: PatientFacts, keys: tuple[str, ...], days: int) -> tuple[Said, ...]:
    """The tests ordered and not yet resulted, each named with its date and request."""
    return tuple(_LINE[k](d) for k in keys if (d := lab_ordered(f, k, days)) is not None)
