"""FHIR R4 primitive formats and the data types the narrow read schemas are made of
(cds.fhir.conformance): each with only the fields a rule reads, strict (an array is an array, a
number a number), and dates that must be real dates."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, Required

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints, with_config

# pydantic reads TypedDicts from typing_extensions on Python < 3.12 (it depends on it).
from typing_extensions import TypedDict

# FHIR R4 primitive formats (https://hl7.org/fhir/R4/datatypes.html), anchored.
_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
_ZONE = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_MONTH = r"(0[1-9]|1[0-2])"
_DAY = r"(0[1-9]|[1-2][0-9]|3[0-1])"
DATE_RE = rf"^{_YEAR}(-{_MONTH}(-{_DAY})?)?$"
DATETIME_RE = rf"^{_YEAR}(-{_MONTH}(-{_DAY}(T{_TIME}{_ZONE})?)?)?$"
INSTANT_RE = rf"^{_YEAR}-{_MONTH}-{_DAY}T{_TIME}{_ZONE}$"


def _real_date(value: str) -> str:
    """The formats allow 2026-02-30; FHIR says dates SHALL be valid dates."""
    if len(value) >= 10:
        dt.date.fromisoformat(value[:10])  # ValueError: pydantic reports it at the field
    return value


String = Annotated[str, StringConstraints(pattern=r"^[ \r\n\t\S]+$")]
Code = Annotated[str, StringConstraints(pattern=r"^[^\s]+(\s[^\s]+)*$")]
# R4 says 64 characters; real EHR ids (Epic's) are longer, and fhir_core allows 255 as well.
Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9\-.]{1,255}$")]
Uri = Annotated[str, StringConstraints(pattern=r"^\S*$")]
Date = Annotated[str, StringConstraints(pattern=DATE_RE), AfterValidator(_real_date)]
DateTime = Annotated[str, StringConstraints(pattern=DATETIME_RE), AfterValidator(_real_date)]
Instant = Annotated[str, StringConstraints(pattern=INSTANT_RE), AfterValidator(_real_date)]
Decimal = float  # strict: a JSON number, never a string or a boolean
PositiveInt = Annotated[int, Field(gt=0)]


STRICT = ConfigDict(strict=True, extra="ignore")


@with_config(STRICT)
class Coding(TypedDict, total=False):
    system: Uri
    code: Code
    display: String


@with_config(STRICT)
class CodeableConcept(TypedDict, total=False):
    coding: list[Coding]
    text: String


@with_config(STRICT)
class Quantity(TypedDict, total=False):
    value: Decimal
    comparator: Literal["<", "<=", ">=", ">"]  # "<1%": a bound, not a measurement
    unit: String
    system: Uri
    code: Code


@with_config(STRICT)
class SimpleQuantity(TypedDict, total=False):
    value: Decimal
    unit: String
    system: Uri
    code: Code


@with_config(STRICT)
class Range(TypedDict, total=False):
    """An LVEF of 36-41% (read only to be named: cds.facts.lab_results)."""

    low: SimpleQuantity
    high: SimpleQuantity


@with_config(STRICT)
class Ratio(TypedDict, total=False):
    numerator: Quantity
    denominator: Quantity


@with_config(STRICT)
class _PeriodFields(TypedDict, total=False):
    start: DateTime
    end: DateTime


def _start_not_after_end(period: _PeriodFields) -> _PeriodFields:
    """FHIR R4 invariant per-1: a period's start is not after its end. Compared by the day,
    with a day to spare (a time in one zone against a time in another), and a partial date by
    the days it may be (2026-05 against 2026-05-12 is no contradiction). Read reversed, a course
    ended before it began: a trastuzumab course so sent hid the anthracycline washout card."""
    start, end = period.get("start"), period.get("end")
    if start is None or end is None or start[:10] <= end[:10]:
        return period  # most periods: in order as text, so in order as dates
    if (_earliest(start) - _latest(end)).days > 1:
        raise ValueError("start is after end (FHIR R4 invariant per-1)")
    return period


def _earliest(value: str) -> dt.date:
    """The first day a (checked) date or dateTime may be: 2026-05 is 1 May 2026."""
    year = int(value[:4])
    if len(value) >= 10:
        return dt.date.fromisoformat(value[:10])
    return dt.date(year, int(value[5:7]), 1) if len(value) >= 7 else dt.date(year, 1, 1)


def _latest(value: str) -> dt.date:
    """The last day a (checked) date or dateTime may be: 2026-05 is 31 May 2026."""
    year = int(value[:4])
    if len(value) >= 10:
        return dt.date.fromisoformat(value[:10])
    if len(value) < 7:
        return dt.date(year, 12, 31)
    month = int(value[5:7])
    first_of_next = dt.date(year + month // 12, month % 12 + 1, 1)
    return first_of_next - dt.timedelta(days=1)


Period = Annotated[_PeriodFields, AfterValidator(_start_not_after_end)]


@with_config(STRICT)
class Reference(TypedDict, total=False):
    reference: String
    display: String


@with_config(STRICT)
class Annotation(TypedDict, total=False):
    text: Required[str]  # markdown: any string, but present (1..1)


@with_config(STRICT)
class Extension(TypedDict, total=False):
    url: Required[Uri]
    valueCodeableConcept: CodeableConcept


@with_config(STRICT)
class Meta(TypedDict, total=False):
    profile: list[Uri]


@with_config(STRICT)
class ResourceFields(TypedDict, total=False):
    """The fields every reader reads."""

    id: Id
    meta: Meta


@with_config(STRICT)
class ValueFields(TypedDict, total=False):
    valueQuantity: Quantity
    valueCodeableConcept: CodeableConcept
    valueString: String
    valueInteger: int
    valueRatio: Ratio
    valueBoolean: bool
    valueRange: Range
