"""Each lab result read into the unit the rules use (mg/dL, g/dL, kg, percent), oldest first,
and the results set aside named: a value no patient can have, a bound, a unit not read, a value
sent as text, a date after today, a preliminary result newer than the final one. The facts in
`cds.facts.labs` are worked out from these readings."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import date

from cds.facts.days import last_day
from cds.fhir.records import Excluded, ObservationRecord, Records, resource_ref
from cds.fhir.values import Quantity
from cds.parameters import ReadRange
from cds.said import Said, say
from cds.terminology import Terminology, ValueSet


def read_creatinine(obs: ObservationRecord) -> float | None:
    q = _measured(obs)
    if q is None:
        return None  # an impossible or bounded creatinine is unusable data, never a divisor
    unit = q.unit_text().lower()
    if unit in {"mg/dl", "mg/100ml"}:
        return q.value
    if unit in {"umol/l", "µmol/l", "μmol/l", "micromol/l"}:
        return q.value / 88.4
    return None


def read_calcium(obs: ObservationRecord) -> float | None:
    q = _measured(obs)
    if q is None:
        return None
    unit = q.unit_text().lower()
    if unit == "mg/dl":
        return q.value
    if unit == "mmol/l":
        return q.value * 4.008
    return None


def read_albumin(obs: ObservationRecord) -> float | None:
    q = _measured(obs)
    if q is None:
        return None
    unit = q.unit_text().lower()
    if unit == "g/dl":
        return q.value
    if unit == "g/l":
        return q.value / 10
    return None


def _kg(q: Quantity) -> float | None:
    unit = q.unit_text().lower()
    if unit in {"kg", "kgs", "kilogram", "kilograms"}:
        return q.value
    if unit in {"[lb_av]", "lb", "lbs", "pound", "pounds"}:
        return q.value * 0.45359237
    if unit == "g":
        return q.value / 1000
    return None


def read_weight(obs: ObservationRecord) -> float | None:
    q = _measured(obs)
    return None if q is None else _kg(q)


def _measured(obs: ObservationRecord) -> Quantity | None:
    """The quantity when it is a measurement: not a bound ("< 0.5 mg/dL") and above zero."""
    q = obs.value.quantity
    if q is None or q.comparator is not None or q.value <= 0:
        return None
    return q


def read_as_reported(obs: ObservationRecord) -> float | None:
    """The number as reported, for results whose unit is fixed by their code (CrCl, eGFR)."""
    q = obs.value.quantity
    return q.value if q is not None and q.comparator is None else None


# An LVEF of 1 or less is no percent: an ejection fraction sent as a fraction without its unit
# (0.46 for 46%), or a typing error. Read as a percent, 0.46 was a critical "withhold" card.
# It is left out and named, never multiplied by 100: the unit is not known.
_LVEF_FRACTION_MAX = 1.0


# An echocardiogram report's LVEF as written: one number, as a percent ("55%", "55 %", "55").
# A range ("55-60%") or a bound ("> 55%") is no measurement: left out and named.
_LVEF_TEXT = re.compile(r"(\d{1,3}(?:\.\d+)?)\s*(?:%|percent)?", re.IGNORECASE)


def read_lvef(obs: ObservationRecord) -> float | None:
    q = obs.value.quantity
    value: float | None = None
    if q is not None and q.comparator is not None:
        return None  # "< 40%" is a bound: an LVEF band cannot be read from it
    if q is not None and q.unit_text().lower() in {"%", "", "percent"}:
        value = q.value
    elif obs.value.integer is not None:
        value = float(obs.value.integer)
    elif obs.value.string and (m := _LVEF_TEXT.fullmatch(obs.value.string.strip())):
        value = float(m.group(1))
    return value if value is not None and _LVEF_FRACTION_MAX < value <= 100 else None


Reader = Callable[[ObservationRecord], float | None]

# How each lab is read into the unit the rules use. A result its reader cannot use - a value no
# patient can have, a bound ("< 0.5 mg/dL"), a unit it does not know - is left out of the
# arithmetic and named on the cards (R0b): a creatinine of 0 used to divide Cockcroft-Gault by
# zero, and a newer creatinine without a unit was passed over for an older one, unsaid.
_READERS: dict[str, Reader] = {
    "creatinine": read_creatinine,
    "body-weight": read_weight,
    "calcium": read_calcium,
    "albumin": read_albumin,
    "creatinine-clearance": read_as_reported,
    "egfr": read_as_reported,
    "lvef": read_lvef,
}
# The unit each lab is read into: a read range (parameter lab_read_ranges) is given in it. CrCl
# and eGFR are read as reported, in the unit their codes fix: they have no read range.
READ_UNITS = {
    "creatinine": "mg/dL",
    "body-weight": "kg",
    "calcium": "mg/dL",
    "albumin": "g/dL",
    "lvef": "%",
}


def unusable_values(
    records: Records,
    t: Terminology,
    *,
    as_of: date,
    lead_days: int,
    ranges: Mapping[str, ReadRange],
) -> tuple[Excluded, ...]:
    out: list[Excluded] = []
    today = last_day(as_of, lead_days)
    for vs_id in _READERS:
        vs = t[vs_id]
        series, observations = lab_series(records, t, vs_id, ranges), records.observations_in(vs)
        out.extend(
            _dated_after_today(o, vs)
            for o, _ in series
            if o.effective is not None and o.effective > today
        )
        if records.preliminary:
            out.extend(_newer_preliminary(records.preliminary, series, vs, today))
        if len(series) == len(observations):
            continue  # every result usable: the common case
        usable = {id(o) for o, _ in series}
        for o in observations:
            if (
                id(o) not in usable
                and (excluded := _unusable(o, vs, ranges.get(vs_id))) is not None
            ):
                out.append(excluded)
    return tuple(out)


def result_name(o: ObservationRecord, vs: ValueSet) -> str:
    """A result as it names itself (its code's text or display), else by its value set."""
    return o.code.named() or vs.title


def _shown(o: ObservationRecord) -> str:
    """A result's value as reported, with its unit (none for a value sent as text)."""
    q = o.value.quantity
    if q is not None:
        return f"{q.value:g} {q.unit_text()}".strip()
    return str(o.value.integer) if o.value.integer is not None else ""


def _dated_after_today(o: ObservationRecord, vs: ValueSet) -> Excluded:
    """A result dated later than any clock's today (a typing error in the year, most often) is
    not the latest result: it is left out of the checks, and named, never passed over unsaid."""
    reason = say("dated-after-today", lab=result_name(o, vs), value=_shown(o), on=o.effective)
    return Excluded(
        "Observation", "effective[x]", reason, resource_ref("Observation", o.id), o.code
    )


def _newer_preliminary(
    preliminary: tuple[ObservationRecord, ...], series: Series, vs: ValueSet, today: date
) -> list[Excluded]:
    """The checks use final results only (final, amended, corrected: clinical-logic §1). A
    preliminary result newer than the newest final one in use - a creatinine drawn this morning,
    not yet verified - used to be passed over unsaid for an older result, or for none: it is
    named, with the date of the newest final one. One dated after today is not newer."""
    used = max(
        (o.effective for o, _ in series if o.effective is not None and o.effective <= today),
        default=None,
    )
    out = []
    for o in preliminary:
        when = o.effective
        if when is None or when > today or (used is not None and when <= used):
            continue
        if not vs.matches(o.code):
            continue
        value = _shown(o) or next(iter(o.value.texts()), "")
        if not value:
            continue  # nothing measured yet (a dataAbsentReason): no result to wait for
        lab = result_name(o, vs)
        if o.status == "preliminary":
            reason = (
                say("preliminary-newer", lab=lab, value=value, on=when, final=used)
                if used is not None
                else say("preliminary-only", lab=lab, value=value, on=when)
            )
        else:  # 'unknown': not known to be final
            reason = (
                say("status-unknown-newer", lab=lab, value=value, on=when, final=used)
                if used is not None
                else say("status-unknown-only", lab=lab, value=value, on=when)
            )
        out.append(
            Excluded("Observation", "status", reason, resource_ref("Observation", o.id), o.code)
        )
    return out


def _unusable(o: ObservationRecord, vs: ValueSet, within: ReadRange | None) -> Excluded | None:
    """Why a result its reader could not use is left out, or None when it holds no value at
    all (nothing was measured: a result with a dataAbsentReason is missing data, not unusable).
    A result sent as text ("3.0 mg/dL" in valueString) or as a range (an LVEF of "36-41 %" in
    valueRange, as echo reports often give it) used to be passed over unsaid, for an older
    result or for none: an LVEF of 36-41% on T-DXd lost its withhold card without a word. A
    range is not read as either end: which end a threshold is held to is the clinician's call."""
    lab = result_name(o, vs)
    ref = resource_ref("Observation", o.id)
    q = o.value.quantity
    if q is None and o.value.integer is not None:
        q = Quantity(float(o.value.integer))  # a number without its unit
    if q is None and o.value.range is not None:
        reason = say("value-as-range", lab=lab, range=o.value.range)
        return Excluded("Observation", "valueRange", reason, ref, o.code)
    if q is None:
        written = o.value.texts()
        if not written:
            return None
        reason = say("value-as-text", lab=lab, text=written[0])
        return Excluded("Observation", "value[x]", reason, ref, o.code)
    unit = q.unit_text()
    impossible = q.value <= 0 or (vs.id == "lvef" and not _LVEF_FRACTION_MAX < q.value <= 100)
    if within is not None and not impossible and _READERS[vs.id](o) is not None:
        # Read in a unit the checks know, but outside the lab's read range.
        reason = say("outside-read-range", lab=lab, value=q.value, unit=unit, range=_said(within))
        return Excluded("Observation", "valueQuantity.value", reason, ref, o.code)
    if q.comparator is not None:
        reason = say("bounded-value", lab=lab, bound=f"{q.comparator} {q.value:g} {unit}".strip())
    elif impossible and unit:
        reason = say("impossible-value", lab=lab, value=q.value, unit=unit)
    elif impossible:
        reason = say("impossible-value-no-unit", lab=lab, value=q.value)
    elif unit:
        reason = say("unit-unread", lab=lab, value=q.value, unit=unit)
    else:
        reason = say("unit-missing", lab=lab, value=q.value)
    return Excluded("Observation", "valueQuantity.value", reason, ref, o.code)


def _said(r: ReadRange) -> Said:
    if r.low is not None and r.high is not None:
        return say("read-range-between", low=r.low, high=r.high, unit=r.unit)
    if r.low is not None:
        return say("read-range-from", low=r.low, unit=r.unit)
    return say("read-range-to", high=r.high, unit=r.unit)


Series = tuple[tuple[ObservationRecord, float], ...]


def lab_series(
    records: Records, t: Terminology, vs_id: str, ranges: Mapping[str, ReadRange]
) -> Series:
    """A lab's usable results in the rules' unit, oldest first, within its read range where it
    has one (parameter lab_read_ranges): outside it a value is a typing error or another unit
    far more often than a patient's - 620 kg for 62.0, a creatinine of 0.13 for 1.3 - and,
    read, it made Cockcroft-Gault ten times too high (a renal dose reduction missed) or too
    low. Like an LVEF sent as a fraction it is left out and named (`unusable_values`); the
    checks use an earlier result, or say none can be read."""
    return series_of(records, t, vs_id, _READERS[vs_id], ranges.get(vs_id))


def series_of(
    records: Records,
    t: Terminology,
    vs_id: str,
    convert: Callable[[ObservationRecord], float | None],
    within: ReadRange | None = None,
) -> Series:
    """A lab's usable results in the rules' unit, oldest first, within `within`; read once a
    call (the unusable ones are named from the same reading)."""

    low = -math.inf if within is None or within.low is None else within.low
    high = math.inf if within is None or within.high is None else within.high

    def read() -> Series:
        out = []
        for o in records.observations_in(t[vs_id]):
            v = convert(o)
            if v is not None and low <= v <= high:
                out.append((o, float(v)))
        out.sort(key=lambda p: p[0].effective or date.min)
        return tuple(out)

    # Keyed by the bounds, not the range: hashing a pydantic model is a Python call.
    return records.once((series_of, vs_id, convert, low, high), read)
