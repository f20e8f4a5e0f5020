"""F8 creatinine clearance and corrected calcium, F9 LVEF: latest values with dates and units."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal, NamedTuple

from cds.facts.days import last_day, window
from cds.fhir.records import Excluded, ObservationRecord, PatientRecord, Records, resource_ref
from cds.fhir.values import Quantity, Value
from cds.said import Said, say
from cds.terminology import Terminology, ValueSet

CrClMethod = Literal["reported", "cockcroft-gault"]


class Measurement(NamedTuple):
    """One lab value as the cards show it. A NamedTuple (immutable, built in a third of a frozen
    dataclass's time): a chart's whole creatinine series is kept as these."""

    value: float
    unit: str
    when: date | None
    ref: str


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Lvef:
    latest: Measurement | None
    baseline: Measurement | None  # before the first active HER2 antibody/ADC started
    series: tuple[Measurement, ...] = ()  # oldest first

    def baseline_before(self, start: date | None) -> Measurement | None:
        """The last LVEF on or before a drug's start: that drug's pre-treatment value (C4)."""
        if start is None:
            return None
        before = [m for m in self.series if m.when is not None and m.when <= start]
        return before[-1] if before else None


def _mg_dl_creatinine(obs: ObservationRecord) -> float | None:
    q = _measured(obs)
    if q is None:
        return None  # an impossible or bounded creatinine is unusable data, never a divisor
    unit = q.unit_text().lower()
    if unit in {"mg/dl", "mg/100ml"}:
        return q.value
    if unit in {"umol/l", "µmol/l", "μmol/l"}:
        return q.value / 88.4
    return None


def _mg_dl_calcium(obs: ObservationRecord) -> float | None:
    q = _measured(obs)
    if q is None:
        return None
    unit = q.unit_text().lower()
    if unit == "mg/dl":
        return q.value
    if unit == "mmol/l":
        return q.value * 4.008
    return None


def _g_dl_albumin(obs: ObservationRecord) -> float | None:
    q = _measured(obs)
    if q is None:
        return None
    unit = q.unit_text().lower()
    if unit == "g/dl":
        return q.value
    if unit == "g/l":
        return q.value / 10
    return None


def _kg(obs: ObservationRecord) -> float | None:
    q = _measured(obs)
    if q is None:
        return None
    unit = q.unit_text().lower()
    if unit == "kg":
        return q.value
    if unit in {"[lb_av]", "lb", "lbs"}:
        return q.value * 0.45359237
    if unit == "g":
        return q.value / 1000
    return None


def _measured(obs: ObservationRecord) -> Quantity | None:
    """The quantity when it is a measurement: not a bound ("< 0.5 mg/dL") and above zero."""
    q = obs.value.quantity
    if q is None or q.comparator is not None or q.value <= 0:
        return None
    return q


def _plain(obs: ObservationRecord) -> float | None:
    """The number as reported, for results whose unit is fixed by their code (CrCl, eGFR)."""
    q = obs.value.quantity
    return q.value if q is not None and q.comparator is None else None


# An LVEF of 1 or less is no percent: an ejection fraction sent as a fraction without its unit
# (0.46 for 46%), or a typing error. Read as a percent, 0.46 was a critical "withhold" card.
# It is left out and named, never multiplied by 100: the unit is not known.
_LVEF_FRACTION_MAX = 1.0


def _percent(obs: ObservationRecord) -> float | None:
    q = obs.value.quantity
    value: float | None = None
    if q is not None and q.comparator is not None:
        return None  # "< 40%" is a bound: an LVEF band cannot be read from it
    if q is not None and q.unit_text() in {"%", ""}:
        value = q.value
    elif obs.value.integer is not None:
        value = float(obs.value.integer)
    return value if value is not None and _LVEF_FRACTION_MAX < value <= 100 else None


# How each lab is read into the unit the rules use. A result its reader cannot use - a value no
# patient can have, a bound ("< 0.5 mg/dL"), a unit it does not know - is left out of the
# arithmetic and named on the cards (R0b): a creatinine of 0 used to divide Cockcroft-Gault by
# zero, and a newer creatinine without a unit was passed over for an older one, unsaid.
_READERS: dict[str, Callable[[ObservationRecord], float | None]] = {
    "creatinine": _mg_dl_creatinine,
    "body-weight": _kg,
    "calcium": _mg_dl_calcium,
    "albumin": _g_dl_albumin,
    "creatinine-clearance": _plain,
    "egfr": _plain,
    "lvef": _percent,
}


def unusable_values(
    records: Records, t: Terminology, *, as_of: date, lead_days: int
) -> tuple[Excluded, ...]:
    out: list[Excluded] = []
    today = last_day(as_of, lead_days)
    for vs_id, read in _READERS.items():
        vs = t[vs_id]
        series, observations = _series(records, t, vs_id, read), records.observations_in(vs)
        out.extend(
            _dated_after_today(o, vs)
            for o, _ in series
            if o.effective is not None and o.effective > today
        )
        if len(series) == len(observations):
            continue  # every result usable: the common case
        usable = {id(o) for o, _ in series}
        for o in observations:
            if id(o) not in usable and (excluded := _unusable(o, vs)) is not None:
                out.append(excluded)
    return tuple(out)


def _lab_name(o: ObservationRecord, vs: ValueSet) -> str:
    """A lab as it names itself (its code's text or display), else by its value set."""
    return o.code.text or next((c.display for c in o.code.codings if c.display), None) or vs.title


def _dated_after_today(o: ObservationRecord, vs: ValueSet) -> Excluded:
    """A result dated later than any clock's today (a typing error in the year, most often) is
    not the latest result: it is left out of the checks, and named, never passed over unsaid."""
    q = o.value.quantity
    shown = f"{q.value:g} {q.unit_text()}".strip() if q is not None else ""
    if q is None and o.value.integer is not None:
        shown = str(o.value.integer)
    reason = say("dated-after-today", lab=_lab_name(o, vs), value=shown, on=o.effective)
    return Excluded(
        "Observation", "effective[x]", reason, resource_ref("Observation", o.id), o.code
    )


def _unusable(o: ObservationRecord, vs: ValueSet) -> Excluded | None:
    """Why a result its reader could not use is left out, or None when it holds no value at
    all (nothing was measured: a result with a dataAbsentReason is missing data, not unusable).
    A result sent as text ("3.0 mg/dL" in valueString) used to be passed over unsaid, for an
    older result or for none."""
    lab = _lab_name(o, vs)
    ref = resource_ref("Observation", o.id)
    q = o.value.quantity
    if q is None and o.value.integer is not None:
        q = Quantity(float(o.value.integer))  # a number without its unit
    if q is None:
        written = o.value.texts()
        if not written:
            return None
        reason = say("value-as-text", lab=lab, text=written[0])
        return Excluded("Observation", "value[x]", reason, ref, o.code)
    unit = q.unit_text()
    impossible = q.value <= 0 or (vs.id == "lvef" and not _LVEF_FRACTION_MAX < q.value <= 100)
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


Series = tuple[tuple[ObservationRecord, float], ...]


def _series(
    records: Records,
    t: Terminology,
    vs_id: str,
    convert: Callable[[ObservationRecord], float | None],
) -> Series:
    """A lab's usable results in the rules' unit, oldest first; read once a call (the unusable
    ones are named from the same reading)."""

    def read() -> Series:
        out = []
        for o in records.observations_in(t[vs_id]):
            v = convert(o)
            if v is not None:
                out.append((o, float(v)))
        out.sort(key=lambda p: p[0].effective or date.min)
        return tuple(out)

    return records.once((_series, vs_id, convert), read)


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
) -> Renal:
    """F2: the latest fresh creatinine, its series and baseline, eGFR (context only), and CrCl
    as reported, else by Cockcroft-Gault, else what is missing to calculate it."""
    scr = _series(records, t, "creatinine", _mg_dl_creatinine)
    fresh_scr = _fresh(scr, as_of, lab_days, lead_days)
    egfr_series = _fresh(_series(records, t, "egfr", _plain), as_of, lab_days, lead_days)
    base = Renal(
        crcl=None,
        method=None,
        creatinine=_m(fresh_scr[-1], "mg/dL") if fresh_scr else None,
        creatinine_baseline=_m(scr[0], "mg/dL") if scr else None,
        missing=(),
        egfr=_m(egfr_series[-1], "mL/min/1.73 m²") if egfr_series else None,
        creatinine_points=tuple(scr),
    )
    reported = _fresh(
        _series(records, t, "creatinine-clearance", _plain), as_of, lab_days, lead_days
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
    )


def _by_cockcroft_gault(
    base: Renal,
    records: Records,
    t: Terminology,
    *,
    as_of: date,
    lab_days: int,
    weight_days: int,
    lead_days: int,
) -> Renal:
    """CrCl by Cockcroft-Gault with the inputs it used (the card shows them), or the inputs
    that are missing: never a CrCl from partial data."""
    latest = base.creatinine
    weight = _fresh(_series(records, t, "body-weight", _kg), as_of, weight_days, lead_days)
    age = age_on(records.patient, as_of)
    sex = records.patient.gender if records.patient else None
    missing: list[Said] = []
    if latest is None:
        missing.append(say("missing-creatinine", days=lab_days))
    if not weight:
        missing.append(say("missing-weight", days=weight_days))
    if age is None:
        missing.append(say("missing-birth-date"))
    if sex not in ("male", "female"):
        missing.append(say("missing-sex"))
    if latest is None or not weight or age is None or sex not in ("male", "female"):
        return replace(base, missing=tuple(missing))
    kg = weight[-1][1]
    crcl = cockcroft_gault(
        age=age, weight_kg=kg, creatinine_mg_dl=latest.value, female=sex == "female"
    )
    basis = say(
        "crcl-basis",
        sex=sex,
        age=age,
        kg=kg,
        weighed=weight[-1][0].effective,
        creatinine=latest.value,
        creatinine_on=latest.when,
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
) -> Calcium:
    every = _series(records, t, "calcium", _mg_dl_calcium)
    last_result = every[-1][0].effective if every else None
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
        )
    obs, value = ca[-1]
    refs = [f"Observation/{obs.id}"]
    alb = _fresh(_series(records, t, "albumin", _g_dl_albumin), as_of, lab_days, lead_days)
    corrected = value
    if alb:
        # Corrected Ca = Ca + 0.8 × (4.0 − albumin g/dL) (clinical-logic F8).
        corrected = value + 0.8 * (4.0 - alb[-1][1])
        refs.append(f"Observation/{alb[-1][0].id}")
    low_limit = _reference_limit(obs, obs.ref_low, _mg_dl_calcium)
    high_limit = _reference_limit(obs, obs.ref_high, _mg_dl_calcium)
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
    )


def extract_lvef(
    records: Records, t: Terminology, *, her2_start: date | None, as_of: date, lead_days: int
) -> Lvef:
    today = last_day(as_of, lead_days)
    series = tuple(
        p
        for p in _series(records, t, "lvef", _percent)
        if p[0].effective is None or p[0].effective <= today
    )
    latest = _m(series[-1], "%") if series else None
    baseline = None
    if her2_start is not None:
        before = [p for p in series if p[0].effective is not None and p[0].effective <= her2_start]
        baseline = _m(before[-1], "%") if before else None
    return Lvef(latest=latest, baseline=baseline, series=tuple(_m(x, "%") for x in series))
