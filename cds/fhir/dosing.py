"""A Dosage read into what the BMA dose test, the order checks and the course dates need: the
dose, the interval, the infusion time, the timing's words and its bounds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from cds.fhir.elements import as_number, as_text, choice_period, concept, json_list, json_object
from cds.fhir.values import Quantity, range_text, read_quantity


@dataclass(frozen=True, slots=True)
class Dose:
    """What the dosage says, as far as the BMA dose test and the order checks need it."""

    text: str | None = None
    quantity: Quantity | None = None
    # doseRange as written ("4-8 mg"), when it is no single dose: named, never read as one.
    dose_range: str | None = None
    every_weeks: float | None = None
    # timing.repeat.duration with its UCUM durationUnit: how long one administration takes.
    duration: float | None = None
    duration_unit: str | None = None
    # timing.code in words ("Every 4 weeks"), read for the interval after timing.repeat.
    timing_text: str | None = None
    # timing.repeat.boundsPeriod: when this dosing starts and stops (an order's course dates).
    bounds: tuple[date | None, date | None] | None = None


_WEEKS = {"d": 1 / 7, "wk": 1.0, "mo": 52 / 12, "a": 52.0, "h": 1 / 168}
# timing.code from the FHIR R4 TimingAbbreviation value set (v3-GTSAbbreviation), in weeks:
# the codes seen in the published R4 value set; others are read by their words, if any.
_GTS = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"
_ABBREVIATION_WEEKS = {
    "QD": 1 / 7,
    "AM": 1 / 7,
    "PM": 1 / 7,
    "QOD": 2 / 7,
    "BID": 1 / 14,
    "TID": 1 / 21,
    "QID": 1 / 28,
    **{f"Q{h}H": h / 168 for h in (1, 2, 3, 4, 6)},
}


# An interval longer than a century or shorter than a minute is no dosing schedule, and a
# negative one FHIR forbids: not read. Read, "every 1e308 years" overflowed where a card put it
# in days (a 500), and "every 1e-308 days" gave a dose of "inf mg a day". Zero, which FHIR allows,
# is read: as more often than any label's interval.
_LONGEST_WEEKS = 100 * 52.0
_SHORTEST_WEEKS = 1 / (7 * 24 * 60)


def interval_weeks(weeks: float) -> float | None:
    """An interval in weeks as read from an order, or None when it is no interval to judge."""
    return weeks if weeks == 0 or _SHORTEST_WEEKS <= weeks <= _LONGEST_WEEKS else None


def read_dose(raw: object, *, administration: bool = False) -> Dose:
    """A Dosage (request, statement) or a MedicationAdministration.dosage (`administration`):
    each is read by its own elements only, the ones the read-field check judged."""
    if not isinstance(raw, dict):
        return Dose()
    text = raw.get("text")
    if administration:  # text and dose: a given dose has no timing
        return Dose(
            text=text if isinstance(text, str) else None, quantity=read_quantity(raw.get("dose"))
        )
    quantity = dose_range = None
    for dr in json_list(raw.get("doseAndRate")):
        if isinstance(dr, dict) and (found := read_quantity(dr.get("doseQuantity"))) is not None:
            quantity = found  # the last readable one, as before
        elif isinstance(dr, dict) and "doseRange" in dr:
            dose_range = range_text(dr["doseRange"])
            quantity = _one_dose(dr["doseRange"]) or quantity
    if quantity is not None:
        dose_range = None
    every = duration = None
    duration_unit = timing_text = None
    bounds = None
    timing = json_object(raw.get("timing"))
    rep = timing.get("repeat")
    if isinstance(rep, dict):
        period, unit = as_number(rep.get("period")), as_text(rep.get("periodUnit"))
        # Absent (or sent as null) is once a period; anything else must be a positive count.
        freq = 1.0 if rep.get("frequency") is None else as_number(rep["frequency"])
        if period is not None and unit in _WEEKS and freq is not None and freq > 0:
            every = interval_weeks(period * _WEEKS[unit] / freq)
        duration, duration_unit = as_number(rep.get("duration")), as_text(rep.get("durationUnit"))
        if "boundsPeriod" in rep:
            bounds = choice_period(rep, "bounds")
    if "code" in timing:
        code = concept(timing["code"])
        if every is None:
            every = next(
                (_ABBREVIATION_WEEKS.get(c.code) for c in code.codings if c.system == _GTS), None
            )
        timing_text = code.named()
    return Dose(
        text=text if isinstance(text, str) else None,
        quantity=quantity,
        dose_range=dose_range,
        every_weeks=every,
        duration=duration,
        duration_unit=duration_unit,
        timing_text=timing_text,
        bounds=bounds,
    )


def _one_dose(raw: object) -> Quantity | None:
    """A doseRange whose low and high are the same quantity ("4 mg to 4 mg"): that dose."""
    if not isinstance(raw, dict):
        return None
    low, high = read_quantity(raw.get("low")), read_quantity(raw.get("high"))
    return low if low is not None and low == high else None


def dosing_bounds(doses: tuple[Dose, ...]) -> tuple[date | None, date | None]:
    """The course the dosages' boundsPeriods span: their first start, and their last end
    only when every bounded dosage has one (an open-ended dosing has not stopped)."""
    bounded = [d.bounds for d in doses if d.bounds is not None]
    starts = [s for s, _ in bounded if s is not None]
    ends = [e for _, e in bounded if e is not None]
    return (
        min(starts, default=None),
        max(ends) if ends and len(ends) == len(bounded) else None,
    )
