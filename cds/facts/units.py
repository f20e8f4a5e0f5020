"""Doses and durations with their units (UCUM), so that 0.004 g is 4 mg and {pill} is no mass
(a count of tablets, read only with the strength of the tablet product the order names).

A small explicit table rather than a units library: the rules need mass doses in mg and
infusion times in minutes, nothing else, and a table the pharmacist can read is the safer
artefact. Anything not in it is "unknown", never assumed to be mg (clinical-logic §3b C2).
"""

from __future__ import annotations

import re

from cds.fhir.dosing import interval_weeks
from cds.fhir.elements import finite, number_from_text
from cds.fhir.values import Quantity

# UCUM mass units (case-sensitive codes) and the spellings EHRs put in `unit`, to milligrams.
_MG_PER: dict[str, float] = {
    "kg": 1_000_000.0,
    "g": 1000.0,
    "mg": 1.0,
    "ug": 0.001,
    "µg": 0.001,
    "μg": 0.001,
    "mcg": 0.001,
    "ng": 0.000001,
}
_MG_NAMES: dict[str, str] = {
    "milligram": "mg",
    "milligrams": "mg",
    "gram": "g",
    "grams": "g",
    "gm": "g",  # the pharmacy abbreviation
    "microgram": "ug",
    "micrograms": "ug",
}
# UCUM time units to minutes (timing.repeat.durationUnit is a UCUM code: s, min, h, d).
_MIN_PER: dict[str, float] = {"s": 1 / 60, "min": 1.0, "h": 60.0, "d": 1440.0}
# A number with thousands separators is read whole: "4,000 mg" is 4000 mg (it used to be read
# as "000 mg", 0 mg, under every ceiling). A decimal comma ("2,5 mg") is not read at all.
_NUMBER = r"(?<![\w.,])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
_TEXT_MASS = re.compile(
    _NUMBER + r"\s*(mg|g|gm|mcg|ug|µg|micrograms?|milligrams?|grams?)(?![\w/])",
    re.IGNORECASE,
)
_TEXT_MINUTES = re.compile(
    r"over\s+(?:at\s+least\s+|no\s+less\s+than\s+|a\s+minimum\s+of\s+)?(\d+(?:\.\d+)?)\s*"
    r"(min|mins|minutes|minute|h|hr|hrs|hour|hours)\b",
    re.IGNORECASE,
)


def mass_unit(q: Quantity) -> str | None:
    """The UCUM mass unit of a quantity (code first, then the printed unit), or None."""
    for raw in (q.code, q.unit):
        if not raw:
            continue
        unit = raw.strip()
        if unit in _MG_PER:
            return unit
        named = _MG_NAMES.get(unit.lower())
        if named is not None:
            return named
        if unit.lower() in ("mg", "g", "mcg", "ug", "kg", "ng"):
            return unit.lower()
    return None


def to_mg(q: Quantity) -> float | None:
    """A mass dose in mg; None when the unit is missing, per weight, per area or unknown."""
    unit = mass_unit(q)
    return None if unit is None else finite(q.value * _MG_PER[unit])


# A dose by body weight, as the antibody-drug conjugates are ordered: UCUM "mg/kg" (code or
# printed unit), or "5.4 mg/kg" in the order's text.
_PER_KG = frozenset({"mg/kg", "mg/kg{body weight}", "mg/kg{bw}"})
_TEXT_PER_KG = re.compile(r"(?<![\w.,])(\d+(?:\.\d+)?)\s*mg\s*/\s*kg\b", re.IGNORECASE)


def to_mg_per_kg(q: Quantity) -> float | None:
    """A dose in mg per kg of body weight, or None for any other unit."""
    return _value_in(q, _PER_KG)


def _value_in(q: Quantity, units: frozenset[str]) -> float | None:
    """The quantity's value when its code or printed unit is one of `units` (lower case)."""
    if any(raw and raw.strip().lower() in units for raw in (q.code, q.unit)):
        return q.value
    return None


# A count of tablets, as oral drugs are ordered ("2 tablets"): read only with the strength of
# the product the order names by its RxNorm clinical drug code (never assumed otherwise). A
# pill of a tablet product is one tablet: the CDS Hooks Sandbox orders in {pill}.
_TABLETS = frozenset(
    {
        "tab",
        "tabs",
        "tablet",
        "tablets",
        "tbl",
        "{tab}",
        "{tbl}",
        "{tablet}",
        "pill",
        "pills",
        "{pill}",
    }
)
_TEXT_TABLETS = re.compile(r"(?<![\w.,/-])(\d+(?:\.\d+)?)\s*(?:tablets?|tabs?)\b", re.IGNORECASE)
# "1-2 tablets", "1 to 2 tablets", "1 or 2 tablets": a range, no dose to check.
_TEXT_TABLET_RANGE = re.compile(
    r"\d\s*(?:-|–|to|or)\s*\d+(?:\.\d+)?\s*(?:tablets?|tabs?)\b", re.IGNORECASE
)


def tablets(q: Quantity) -> float | None:
    """A dose as a count of tablets (UCUM annotation or printed unit), or None."""
    return _value_in(q, _TABLETS)


def tablets_from_text(text: str) -> float | None:
    """The count of tablets an order's text gives as its one dose ("take 2 tablets twice
    daily"); None for none, a range, or several counts ("2 tablets in the morning and 1 at
    night" is no single dose)."""
    counts = _TEXT_TABLETS.findall(text)
    if len(counts) != 1 or _TEXT_TABLET_RANGE.search(text):
        return None
    return number_from_text(counts[0])


def mg_per_kg_from_text(text: str) -> float | None:
    m = _TEXT_PER_KG.search(text)
    return number_from_text(m.group(1)) if m else None


# A dose by body surface area, as capecitabine and the taxanes are ordered: UCUM "mg/m2" (code or
# printed unit, "mg/m²" as printed), or "1,000 mg/m2" in the order's text. A day's total
# ("2,000 mg/m2/day in two doses", as the Tykerb label writes capecitabine's) is no dose: it is
# read apart, as the day's total.
_PER_M2 = frozenset({"mg/m2", "mg/m²", "mg/m^2", "mg/m2{bsa}"})
_MG_PER_M2 = _NUMBER + r"\s*mg\s*/\s*m(?:2|²|\^2)"
_TEXT_PER_M2 = re.compile(
    _MG_PER_M2 + r"(?:\s*/\s*dose\b)?(?![\w/]|\s*(?:/|per\s+day|a\s+day|each\s+day|total))",
    re.IGNORECASE,
)
_TEXT_PER_M2_A_DAY = re.compile(
    _MG_PER_M2 + r"\s*(?:/\s*d(?:ay)?(?![a-z])|per\s+day\b|a\s+day\b|each\s+day\b)",
    re.IGNORECASE,
)


def to_mg_per_m2(q: Quantity) -> float | None:
    """A dose in mg per m² of body surface area, or None for any other unit."""
    return _value_in(q, _PER_M2)


def mg_per_m2_from_text(text: str) -> float | None:
    m = _TEXT_PER_M2.search(text)
    return number_from_text(m.group(1).replace(",", "")) if m else None


def mg_per_m2_a_day_from_text(text: str) -> float | None:
    """A day's total by body surface area written in the order's text ("2,000 mg/m2/day")."""
    m = _TEXT_PER_M2_A_DAY.search(text)
    return number_from_text(m.group(1).replace(",", "")) if m else None


# How often, in words an order's free text uses: "daily", "every 3 weeks", "q4w", "every 21 days",
# "every 12 hours", "q12h", "every four weeks", "weekly", "twice a week", "monthly". An interval
# not read is unknown (never taken as a safe one); "weekly" used to be, and a weekly denosumab
# order passed unchecked (D1).
_NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "eight": 8,
    "twelve": 12,
}
_TEXT_EVERY = re.compile(
    r"\b(?:every|q)\s*(\d+(?:\.\d+)?|" + "|".join(_NUMBER_WORDS) + r")\s*"
    r"(d|days?|h|hrs?|hours?|w|wk|wks|weeks?|mo|months?)\b",
    re.IGNORECASE,
)
# Words for a schedule, most frequent first: "twice weekly" is read before "weekly".
_TEXT_SCHEDULES = tuple(
    (re.compile(pattern, re.IGNORECASE), weeks)
    for pattern, weeks in (
        (r"\b(?:tid|t\.i\.d\.|three times (?:a |per )?day|three times daily)\b", 1 / 21),
        (r"\b(?:bid|b\.i\.d\.|twice (?:a |per )?day|twice daily)\b", 1 / 14),
        (r"\b(?:daily|once a day|every day|qd|od)\b", 1 / 7),
        (r"\bevery other day\b", 2 / 7),
        (r"\b(?:twice|two times) (?:a |per )?week(?:ly)?\b", 0.5),
        (r"\b(?:weekly|every week|once (?:a|per) week)\b", 1.0),
        (r"\bevery other week\b", 2.0),
        (r"\b(?:monthly|every month|once (?:a|per) month)\b", 52 / 12),
    )
)


def weeks_from_text(text: str) -> float | None:
    """The dosing interval in weeks written in free text, or None when it says none."""
    m = _TEXT_EVERY.search(text)
    if m is not None:
        number, unit = m.group(1).lower(), m.group(2).lower()
        value = _NUMBER_WORDS.get(number) or number_from_text(number)
        if value is None:
            return None
        if unit.startswith("d"):
            return interval_weeks(value / 7)
        if unit.startswith("h"):
            return interval_weeks(value / 168)
        if unit.startswith("m"):
            return interval_weeks(value * 52 / 12)
        return interval_weeks(value)
    for pattern, weeks in _TEXT_SCHEDULES:
        if pattern.search(text):
            return weeks
    return None


def mg_from_text(text: str) -> float | None:
    m = _TEXT_MASS.search(text)
    if m is None:
        return None
    unit = _MG_NAMES.get(m.group(2).lower(), m.group(2).lower())
    value = number_from_text(m.group(1).replace(",", ""))
    return None if value is None else finite(value * _MG_PER[unit])


def minutes(value: float | None, ucum: str | None) -> float | None:
    if value is None or ucum not in _MIN_PER:
        return None
    return finite(value * _MIN_PER[ucum])


def minutes_from_text(text: str) -> float | None:
    m = _TEXT_MINUTES.search(text)
    if m is None:
        return None
    value, unit = number_from_text(m.group(1)), m.group(2).lower()
    return None if value is None else finite(value * (60.0 if unit.startswith("h") else 1.0))
