"""Observation.value[x] (and a component's, a dose's Quantity), read into the typed values the
facts use: a Quantity with its unit and comparator, or the other forms a rule reads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from cds.fhir.elements import as_number, as_text, concept
from cds.terminology import Concept


# The per-resource value types below are NamedTuples, not frozen dataclasses: as immutable, and
# built in a third of the time (a typical chart's read builds hundreds of them: ~25% of it).
class Quantity(NamedTuple):
    value: float
    unit: str | None = None
    code: str | None = None
    # "<", "<=", ">=", ">": the value is a bound ("<1%", "<2.0"), not a measurement.
    comparator: str | None = None

    def unit_text(self) -> str:
        return (self.code or self.unit or "").strip()


class Value(NamedTuple):
    """Observation.value[x] (or a component's), reduced to the forms the rules read."""

    quantity: Quantity | None = None
    concept: Concept | None = None
    string: str | None = None
    integer: int | None = None
    ratio: float | None = None
    boolean: bool | None = None
    # valueRange as written ("36-41 %"): a span, not a measurement a threshold can be read from
    range: str | None = None

    def texts(self) -> tuple[str, ...]:
        out = []
        if self.string:
            out.append(self.string)
        if self.concept is not None:
            out.append(self.concept.all_text())
        return tuple(out)


_NO_VALUE = Value()
_VALUE_KEYS = frozenset(
    {
        "valueQuantity",
        "valueRatio",
        "valueInteger",
        "valueString",
        "valueBoolean",
        "valueCodeableConcept",
        "valueRange",
    }
)


_NOT_QUANTITY = _VALUE_KEYS - {"valueQuantity"}


def read_quantity(raw: object) -> Quantity | None:
    """A Quantity as sent, or None when it has no numeric value."""
    if isinstance(raw, dict) and (v := as_number(raw.get("value"))) is not None:
        comparator = as_text(raw["comparator"]) if "comparator" in raw else None
        return Quantity(v, as_text(raw.get("unit")), as_text(raw.get("code")), comparator)
    return None


def read_value(raw: Mapping[str, Any]) -> Value:
    if "valueQuantity" in raw:
        if _NOT_QUANTITY.isdisjoint(raw):  # most labs: one Quantity, nothing else to look for
            return Value(read_quantity(raw["valueQuantity"]))
    elif _VALUE_KEYS.isdisjoint(raw):
        return _NO_VALUE  # most components and many observations: nothing to build
    quantity = read_quantity(raw.get("valueQuantity"))
    ratio = None
    r = raw.get("valueRatio")
    if isinstance(r, dict):
        num = as_number((r.get("numerator") or {}).get("value"))
        den = as_number((r.get("denominator") or {}).get("value")) if r.get("denominator") else 1.0
        if num is not None and den:
            ratio = num / den
    integer = raw.get("valueInteger")
    string = raw.get("valueString")
    boolean = raw.get("valueBoolean")
    return Value(
        boolean=boolean if isinstance(boolean, bool) else None,
        quantity=quantity,
        concept=concept(raw["valueCodeableConcept"]) if "valueCodeableConcept" in raw else None,
        string=string if isinstance(string, str) else None,
        integer=integer if isinstance(integer, int) and not isinstance(integer, bool) else None,
        ratio=ratio,
        range=range_text(raw["valueRange"]) if "valueRange" in raw else None,
    )


def range_text(raw: object) -> str | None:
    """A Range as written: "36-41 %", ">= 50 %", "<= 35 %"; None when it bounds nothing."""
    if not isinstance(raw, dict):
        return None
    low, high = read_quantity(raw.get("low")), read_quantity(raw.get("high"))
    unit = next((q.unit_text() for q in (low, high) if q is not None and q.unit_text()), "")
    if low is not None and high is not None:
        span = f"{low.value:g}-{high.value:g}"
    elif low is not None:
        span = f">= {low.value:g}"
    elif high is not None:
        span = f"<= {high.value:g}"
    else:
        return None
    return f"{span} {unit}".strip()
