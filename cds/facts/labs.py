"""F8 creatinine clearance and corrected calcium, F9 LVEF: latest values with dates and units."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal, NamedTuple

from cds.facts.days import last_day, window
from cds.facts.lab_results import (
    Series,
    lab_series,
    read_calcium,
)
from cds.fhir.records import ObservationRecord, PatientRecord, Records
from cds.fhir.values import Quantity, Value
from cds.parameters import ReadRange
from cds.said import Said, say
from cds.terminology import Terminology

CrClMethod = Literal["reported", "cockcroft-gault"]


class Measurement(NamedTuple):
    """One lab value as the cards show it. A NamedTuple (immutable, built in a third of a frozen
    dataclass's time): a chart's whole creatinine series is kept as these."""

    value: float
    unit: str
    when: date | None
    ref: str


# A lab's results on record that its reader could not use (text, a bound, a unit not read),
# each (reference, date): named on R0b, and never said to be missing.
Unread = tuple[tuple[str, date | None], ...]


def unread_results(
    records: Records, t: Terminology, vs_id: str, ranges: Mapping[str, ReadRange]
) -> Unread:
    """The results of one lab its reader could not use (read once a call: `lab_series`)."""
    usable = lab_series(records, t, vs_id, ranges)
    observations = records.observations_in(t[vs_id])
    if len(usable) == len(observations):
        return ()  # every result usable: the common case
    read_ids = {id(o) for o, _ in usable}
    return tuple(
        (f"Observation/{o.id}", o.effective) for o in observations if id(o) not in read_ids
    )


def said_missing(missing: Said, unread: Unread, since: date) -> Said:
    """What a card says is missing, with the results dated since `since` that are on record but
    could not be read: a lab drawn is not missing, it is unreadable."""
    refs = tuple(ref for ref, when in unread if when is not None and when >= since)
    return say("missing-unread", missing=missing, refs=refs) if refs else missing


@dataclass(frozen=True, slots=True, kw_only=True)
class Renal:
    """Cockcroft-Gault creatinine clearance only (the Zometa table is by CG CrCl; C2): an eGFR
    is kept apart, as context, and never stands in for CrCl."""

    crcl: float | None
    method: CrClMethod | None
    creatinine: Measurement | None  # latest, mg/dL, within the freshness window
    creatinine_baseline: Measurement | None
    missing: tuple[Said, ...]  # what kept CrCl unknown, for the card
    basis: Said | None = None  # the inputs, so the clinician can check the arithmetic
    egfr: Measurement | None = None  # mL/min/1.73 m², context only
    # Every usable creatinine (its record and mg/dL), oldest first: a chart may hold dozens, and
    # a rule asks for one of them, built as a Measurement when it does.
    creatinine_points: tuple[tuple[ObservationRecord, float], ...] = ()
    creatinine_unread: Unread = ()

    @property
    def refs(self) -> tuple[str, ...]:
        return tuple(m.ref for m in (self.creatinine,) if m is not None)

    def baseline_before(self, first_dose: date | None) -> Measurement | None:
        """The creatinine before the first dose of a course (the label's baseline), else the
        earliest one on record."""
        if first_dose is not None:
            before = [
                p for p in self.creatinine_points if p[0].effective and p[0].effective <= first_dose
            ]
            if before:
                return _m(before[-1], "mg/dL")
        return self.creatinine_baseline


@dataclass(frozen=True, slots=True, kw_only=True)
class Calcium:
    corrected: float | None  # mg/dL; measured calcium when albumin is missing
    albumin_corrected: bool
    when: date | None
    low: bool | None
    high: bool | None
    refs: tuple[str, ...]
    last_result: date | None = None  # any calcium result, however old (R3c)
    unread: Unread = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Lvef:
    latest: Measurement | None
    baseline: Measurement | None  # before the first active HER2 antibody/ADC started
    series: tuple[Measurement, ...] = ()  # oldest first
    unread: Unread = ()  # an echo done is never 'no LVEF'

    def measured_within(self, as_of: date, days: int) -> bool:
        """An LVEF read within `days` of as_of: no echo is due (R6, R11, R15)."""
        latest = self.latest
        return latest is not None and latest.when is not None and (as_of - latest.when).days <= days

    def baseline_before(self, start: date | None) -> Measurement | None:
        """The last LVEF on or before a drug's start: that drug's pre-treatment value (C4)."""
        if start is None:
            return None
        before = [m for m in self.series if m.when is not None and m.when <= start]
        return before[-1] if before else None


def _fresh(
    series: Series, as_of: date, days: int, lead_days: int
) -> list[tuple[ObservationRecord, float]]:
    """The results no more than `days` before as_of (and not in the future: `days.within`)."""
    first, last = window(as_of, days, lead_days)
    return [p for p in series if p[0].effective is not None and first <= p[0].effective <= last]


def _reference_limit(
    obs: ObservationRecord,
    limit: Quantity | None,
    read: Callable[[ObservationRecord], float | None],
) -> float | None:
    """A reference limit in the rules' unit, converted as the result is; a limit sent without a
    unit is in the result's. A calcium of 2.0 mmol/L (8.0 mg/dL) was compared with its range's
    2.15-2.55 as if that were mg/dL: not low, and high."""
    if limit is None:
        return None
    result = obs.value.quantity
    if not limit.unit_text() and result is not None:
        limit = limit._replace(unit=result.unit, code=result.code)
    return read(obs._replace(value=Value(limit)))


def _m(p: tuple[ObservationRecord, float], unit: str) -> Measurement:
    return Measurement(
        value=p[1],
        unit=unit,
        when=p[0].effective,
        ref=f"Observation/{p[0].id}",
    )


def age_on(patient: PatientRecord | None, as_of: date) -> int | None:
    if patient is None or patient.birth_date is None:
        return None
    b = patient.birth_date
    return as_of.year - b.year - ((as_of.month, as_of.day) < (b.month, b.day))


# Cockcroft-Gault is an adult formula: Cockcroft and Gault derived it in patients aged 18-92
# (Nephron 1976;16:31-41). Below that age - or with a date of birth after the day of the call, a
# typing error - it overstates clearance (a birth date of 2030 gave a "CrCl" above the
# patient's measured one, and a zoledronic acid contraindication became a dose reduction).
CG_YOUNGEST_AGE = 18


def cockcroft_gault(*, age: int, weight_kg: float, creatinine_mg_dl: float, female: bool) -> float:
    """CrCl (mL/min) = (140 − age) × weight / (72 × SCr), × 0.85 if female (Zometa label: C-G)."""
    crcl = (140 - age) * weight_kg / (72 * creatinine_mg_dl)
    return crcl * 0.85 if female else crcl


def extract_renal(
    records: Records,
    t: Terminology,
    *,
    as_of: date,
    lab_days: int,
    weight_days: int,
    lead_days: int,
    ranges: Mapping[str, ReadRange],
) -> Renal:
    """F2: the latest fresh creatinine, its series and baseline, eGFR (context only), and CrCl
    as reported, else by Cockcroft-Gault, else what is missing to calculate it."""
    scr = lab_series(records, t, "creatinine", ranges)
    fresh_scr = _fresh(scr, as_of, lab_days, lead_days)
    egfr_series = _fresh(lab_series(records, t, "egfr", ranges), as_of, lab_days, lead_days)
    base = Renal(
        crcl=None,
        method=None,
        creatinine=_m(fresh_scr[-1], "mg/dL") if fresh_scr else None,
        creatinine_baseline=_m(scr[0], "mg/dL") if scr else None,
        missing=(),
        egfr=_m(egfr_series[-1], "mL/min/1.73 m²") if egfr_series else None,
        creatinine_points=tuple(scr),
        creatinine_unread=unread_results(records, t, "creatinine", ranges),
    )
    reported = _fresh(
        lab_series(records, t, "creatinine-clearance", ranges), as_of, lab_days, lead_days
    )
    if reported:
        return replace(base, crcl=reported[-1][1], method="reported")
    return _by_cockcroft_gault(
        base,
        records,
        t,
        as_of=as_of,
        lab_days=lab_days,
        weight_days=weight_days,
        lead_days=lead_days,
        ranges=ranges,
    )


def extract_weight(
    records: Records,
    t: Terminology,
    *,
    as_of: date,
    weight_days: int,
    lead_days: int,
    ranges: Mapping[str, ReadRange],
) -> Measurement | None:
    """The latest body weight within `weight_days` (kg), of those within its read range: what a
    dose by weight is checked against; None when no weight is that recent (never an older
    one)."""
    fresh = _fresh(lab_series(records, t, "body-weight", ranges), as_of, weight_days, lead_days)
    return _m(fresh[-1], "kg") if fresh else None


def _age_missing(records: Records, age: int | None) -> Said | None:
    """Why the age Cockcroft-Gault needs is missing: no birth date, a birth date after the
    day, or an age below the formula's derivation (CG_YOUNGEST_AGE); None for an adult."""
    if age is None:
        return say("missing-birth-date")
    if age >= CG_YOUNGEST_AGE:
        return None
    birth = records.patient.birth_date if records.patient else None
    if age < 0:
        return say("missing-birth-date-before-today", born=birth)
    return say("missing-adult-age", born=birth, age=age)


def _by_cockcroft_gault(
    base: Renal,
    records: Records,
    t: Terminology,
    *,
    as_of: date,
    lab_days: int,
    weight_days: int,
    lead_days: int,
    ranges: Mapping[str, ReadRange],
) -> Renal:
    """CrCl by Cockcroft-Gault with the inputs it used (the card shows them), or the inputs
    that are missing: never a CrCl from partial data."""
    latest = base.creatinine
    weight = _fresh(
        lab_series(records, t, "body-weight", ranges),
        as_of,
        weight_days,
        lead_days,
    )
    age = age_on(records.patient, as_of)
    sex = records.patient.gender if records.patient else None
    missing: list[Said] = []
    if latest is None:
        since = window(as_of, lab_days, lead_days)[0]
        missing.append(
            said_missing(say("missing-creatinine", days=lab_days), base.creatinine_unread, since)
        )
    if not weight:
        unread = unread_results(records, t, "body-weight", ranges)
        since = window(as_of, weight_days, lead_days)[0]
        missing.append(said_missing(say("missing-weight", days=weight_days), unread, since))
    if (no_age := _age_missing(records, age)) is not None:
        missing.append(no_age)
    if sex not in ("male", "female"):
        missing.append(say("missing-sex"))
    if missing or latest is None or age is None:  # each input it lacks is named above
        return replace(base, missing=tuple(missing))
    kg = weight[-1][1]
    crcl = cockcroft_gault(
        age=age, weight_kg=kg, creatinine_mg_dl=latest.value, female=sex == "female"
    )
    inputs = {
        "sex": sex,
        "age": age,
        "kg": kg,
        "weighed": weight[-1][0].effective,
        "creatinine": latest.value,
        "creatinine_on": latest.when,
    }
    # A birth year (or year and month) alone is read as its first day: the card says so.
    born = records.patient.birth_date_partial if records.patient else None
    basis = (
        say("crcl-basis-partial-birth-date", born=born, **inputs)
        if born
        else say("crcl-basis", **inputs)
    )
    return replace(base, crcl=crcl, method="cockcroft-gault", basis=basis)


def extract_calcium(
    records: Records,
    t: Terminology,
    *,
    as_of: date,
    lab_days: int,
    lead_days: int,
    low_fallback: float,
    high_fallback: float,
    ranges: Mapping[str, ReadRange],
) -> Calcium:
    every = lab_series(records, t, "calcium", ranges)
    last_result = every[-1][0].effective if every else None
    unread = unread_results(records, t, "calcium", ranges)
    ca = _fresh(every, as_of, lab_days, lead_days)
    if not ca:
        return Calcium(
            corrected=None,
            albumin_corrected=False,
            when=None,
            low=None,
            high=None,
            refs=(),
            last_result=last_result,
            unread=unread,
        )
    obs, value = ca[-1]
    refs = [f"Observation/{obs.id}"]
    albumin = lab_series(records, t, "albumin", ranges)
    alb = _fresh(albumin, as_of, lab_days, lead_days)
    corrected = value
    if alb:
        # Corrected Ca = Ca + 0.8 × (4.0 − albumin g/dL) (clinical-logic F8).
        corrected = value + 0.8 * (4.0 - alb[-1][1])
        refs.append(f"Observation/{alb[-1][0].id}")
    low_limit = _reference_limit(obs, obs.ref_low, read_calcium)
    high_limit = _reference_limit(obs, obs.ref_high, read_calcium)
    low_limit = low_fallback if low_limit is None else low_limit
    high_limit = high_fallback if high_limit is None else high_limit
    return Calcium(
        corrected=round(corrected, 2),
        albumin_corrected=bool(alb),
        when=obs.effective,
        low=corrected < low_limit,
        high=corrected > high_limit,
        refs=tuple(refs),
        last_result=last_result,
        unread=unread,
    )


def extract_lvef(
    records: Records,
    t: Terminology,
    *,
    her2_start: date | None,
    as_of: date,
    lead_days: int,
    ranges: Mapping[str, ReadRange],
) -> Lvef:
    today = last_day(as_of, lead_days)
    series = tuple(
        p
        for p in lab_series(records, t, "lvef", ranges)
        if p[0].effective is None or p[0].effective <= today
    )
    latest = _m(series[-1], "%") if series else None
    baseline = None
    if her2_start is not None:
        before = [p for p in series if p[0].effective is not None and p[0].effective <= her2_start]
        baseline = _m(before[-1], "%") if before else None
    unread = tuple(
        (ref, when)
        for ref, when in unread_results(records, t, "lvef", ranges)
        if when is None or when <= today
    )
    return Lvef(
        latest=latest,
        baseline=baseline,
        series=tuple(_m(x, "%") for x in series),
        unread=unread,
    )
