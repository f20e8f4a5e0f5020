"""Reading FHIR R4 JSON as sent: small tolerant helpers over dicts and lists.

The readers run on raw JSON (a resource is checked by `cds.fhir.conformance` before its record
is built, and screening looks at resources before any check), so every helper accepts a wrong
shape and answers "nothing" rather than raising.
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

import orjson

from cds.terminology import Coding, Concept

_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


# A date within a decade of the calendar's ends is a placeholder, not a date: 0001-01-01 and
# 9999-12-31 are what systems write for "unknown" and "no end". Read as no date (an unknown
# start, an open end), as the rules read a missing one; read as dates, the rules' day arithmetic
# ran off the calendar (a 500 for any chart holding one).
FIRST_DATE = date(11, 1, 1)
LAST_DATE = date(9989, 12, 31)


def fhir_date(value: object) -> date | None:
    """The calendar date of a FHIR date/dateTime/instant; partial dates fall on the first day."""
    if not isinstance(value, str):
        return None
    if len(value) >= 10 and value[4] == "-" and value[7] == "-":
        try:  # a full date, alone or starting a dateTime/instant: the common case, parsed in C
            read = date.fromisoformat(value[:10])
        except ValueError:
            pass  # not digits, or not a real day: read by the pattern, as always
        else:
            return read if FIRST_DATE <= read <= LAST_DATE else None
    return date_by_pattern(value)


def period_end(value: object) -> date | None:
    """A Period's end. FHIR R4 Period: "the end value includes any matching date/time", so a
    partial end falls on the last day it may be (2026-04 ends on 30 April 2026, 2026 on 31
    December). Read as the first day, a trastuzumab course that ended '2026-04' sat up to 29 days
    further from an anthracycline order than it may have, and no washout warning came."""
    if not isinstance(value, str) or len(value) >= 10:
        return fhir_date(value)  # a full date, or nothing: read as any date is
    m = _DATE.match(value)
    if not m:
        return None
    year, month = int(m.group(1)), int(m.group(2) or 12)
    try:
        read = date(year, month, calendar.monthrange(year, month)[1])
    except ValueError:  # a month 13, a year 0
        return None
    return read if FIRST_DATE <= read <= LAST_DATE else None


def month_end(value: object) -> date | None:
    """The last day of a date charted to its month ('2026-05': 31 May 2026), else None. A date
    charted by its year only is read by its first day, as before: a year is too long a span to
    count a dose's day or a course's start from at either end."""
    if not isinstance(value, str) or len(value) != 7:
        return None
    return period_end(value)


def date_by_pattern(value: str) -> date | None:
    """`fhir_date` without its fast path: year, month and day as far as they are given."""
    m = _DATE.match(value)
    if not m:
        return None
    try:
        read = date(int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1))
    except ValueError:
        return None
    return read if FIRST_DATE <= read <= LAST_DATE else None


# The code systems the rules read, as some systems send them: under their HL7 OIDs instead of
# their FHIR URIs (FHIR R4 NamingSystem registry, namingsystem-terminologies.html; ICD-10-CM:
# HL7 Terminology's CodeSystem icd10CM), as some EHRs and CDA converters do, or with https or a
# closing slash ("http://loinc.org/"). No other code system lives there, and read as unknown
# systems their codes were lost (sent with a slash, 137 of 154 scenarios' cards changed).
_OIDS = {
    "urn:oid:2.16.840.1.113883.6.1": "http://loinc.org",
    "urn:oid:2.16.840.1.113883.6.96": "http://snomed.info/sct",
    "urn:oid:2.16.840.1.113883.6.88": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "urn:oid:2.16.840.1.113883.6.90": "http://hl7.org/fhir/sid/icd-10-cm",
}


def _spellings(oids: Mapping[str, str]) -> dict[str, str]:
    """Each other way of writing a system the rules read → its FHIR URI."""
    table = dict(oids)
    for uri in oids.values():
        https = uri.replace("http://", "https://", 1)
        table |= {f"{uri}/": uri, https: uri, f"{https}/": uri}
    return table


_URI_OF_SPELLING = _spellings(_OIDS)

# ICD codes "SHALL be represented with the period included" (FHIR R4 icd.html), which also
# notes that some systems drop it; feeds derived from billing often do ("C7951"). An ICD-10-CM
# code's period always follows its third character, so a code sent without it (or in lower
# case) is that code: read so, a dotless bone metastasis or cord compression is not passed over
# as an unknown code of a system whose codes decide before text.
_ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
_DOTLESS_ICD10CM = re.compile(r"[A-Z][0-9][0-9A-Z][0-9A-Z]{1,4}")


def _icd10cm_code(code: str) -> str:
    """An ICD-10-CM code as the code system writes it: its period after the third character,
    its letters upper case (the tabular has no lower-case code)."""
    if code.isupper() and "." in code:
        return code  # the common case, as sent
    code = code.upper()
    return f"{code[:3]}.{code[3:]}" if _DOTLESS_ICD10CM.fullmatch(code) else code


_CONCEPTS: dict[bytes, Concept] = {}
# What an absent (or not an object) CodeableConcept reads as: one shared object, so what matching
# works out about it is worked out once, not for every resource that lacks the element.
NO_CONCEPT = Concept()
_MAX_CONCEPTS = 4096  # distinct CodeableConcepts remembered (a few MB at most)
_MAX_KEY = 1024  # longer ones (long free text) are built each time, never kept


def concept(raw: object) -> Concept:
    """A CodeableConcept from raw JSON, tolerant of wrong shapes (screening precedes validation).

    The same CodeableConcept comes back again and again (a creatinine is a creatinine in every
    chart): one Concept per distinct JSON text, so what matching works out about it (its value
    sets, its text) is worked out once, across calls. Concepts are immutable and what their
    memo holds depends only on their content and the loaded knowledge.
    """
    if not isinstance(raw, dict):
        return NO_CONCEPT
    try:
        key = orjson.dumps(raw)
    except TypeError:  # not JSON (an integer beyond 64 bits, a non-text key): build it
        return _build_concept(raw)
    found = _CONCEPTS.get(key)
    if found is None:
        found = _build_concept(raw)
        if len(key) <= _MAX_KEY:
            if len(_CONCEPTS) >= _MAX_CONCEPTS:
                _CONCEPTS.clear()
                NO_CONCEPT._memo.clear()  # what it holds for knowledge loaded since, bounded too
            _CONCEPTS[key] = found
    return found


def _build_concept(raw: dict[str, Any]) -> Concept:
    codings = []
    texts = [raw["text"]] if isinstance(raw.get("text"), str) else []
    for c in json_list(raw.get("coding")):
        if not isinstance(c, dict):
            continue
        display = c.get("display") if isinstance(c.get("display"), str) else None
        if isinstance(c.get("code"), str):
            system = str(c.get("system") or "")
            system = _URI_OF_SPELLING.get(system, system)
            code = c["code"]
            if system == _ICD10CM:
                code = _icd10cm_code(code)
            codings.append(Coding(system=system, code=code, display=display))
        elif display and display not in texts:
            # Coding.code is 0..1: a coding with a display only still names the concept, read
            # as its text (a draft "Enhertu" so sent is checked, not taken for an empty draft).
            texts.append(display)
    return Concept(codings=tuple(codings), text=" ".join(texts) or None)


def concepts(raw: object) -> tuple[Concept, ...]:
    if isinstance(raw, dict):
        return (concept(raw),)
    if isinstance(raw, list):
        return tuple(concept(x) for x in raw)
    return ()


_LARGEST_INT = 2**63  # orjson's: float() of an int within it is exact enough and finite


def as_number(raw: object) -> float | None:
    # Parsed JSON holds exact floats and ints: the common cases, found first and cheaply (JSON
    # has no infinity: the parser refuses a number beyond a double).
    if type(raw) is float:
        return raw
    if type(raw) is int and -_LARGEST_INT <= raw <= _LARGEST_INT:
        return float(raw)
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        try:
            return finite(float(raw))
        except OverflowError:  # an int beyond a double (not from orjson, which refuses one)
            return None
    if isinstance(raw, str):
        return number_from_text(raw)
    return None


def number_from_text(text: str) -> float | None:
    """A number written as text, or None when it is none or is not finite: "NaN", "Infinity"
    and a 400-digit dose are not numbers a rule can judge (read as infinite, such a dose showed
    as "inf mg" on a card; a ratio so written read as HER2-positive)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return finite(value)


def finite(value: float) -> float | None:
    """The value, or None when it is not finite (a number scaled beyond a double)."""
    return value if math.isfinite(value) else None


def json_list(raw: object) -> list[Any]:
    """A JSON array as sent; a single value sent where FHIR has an array, as an array of one
    (real clients send `"doseAndRate": {...}`: a draft dose so sent is still checked, and a
    resource so sent is screened in and then named by its check, not dropped unseen); nothing
    for nothing. Screening precedes validation, drafts and a referenced Medication are never
    validated, and callers take only the item shapes they read."""
    if isinstance(raw, list):
        return raw
    return [] if raw is None else [raw]


def json_object(raw: object) -> dict[str, Any]:
    return raw if isinstance(raw, dict) else {}


def as_text(raw: object) -> str | None:
    """A string field as sent, or None when it is not a string (screening precedes validation)."""
    return raw if isinstance(raw, str) else None


def reference_of(raw: object) -> str | None:
    """A Reference's target as `Type/id` (`local_reference`), or None when it gives none."""
    if isinstance(raw, dict) and isinstance(raw.get("reference"), str):
        return local_reference(str(raw["reference"]))
    return None


def local_reference(reference: str) -> str:
    """`Type/id` for a reference written absolute (`https://ehr/fhir/Medication/m1`) or to a
    version (`Medication/m1/_history/2`): FHIR R4 allows both for the same resource, and the
    resources sent beside it are known by `Type/id` (the subject check and the Medication
    search read references so too). Contained (`#id`), `urn:` and other forms are kept."""
    if reference.startswith(("#", "urn:")):
        return reference
    parts = reference.split("/_history/", 1)[0].split("/")
    if len(parts) < 2 or not (parts[-2][:1].isupper() and parts[-2].isalpha() and parts[-1]):
        return reference
    return f"{parts[-2]}/{parts[-1]}"


def display_of(raw: object) -> str | None:
    if isinstance(raw, dict) and isinstance(raw.get("display"), str):
        return str(raw["display"])
    return None


def choice_period(raw: Mapping[str, Any], prefix: str) -> tuple[date | None, date | None]:
    if f"{prefix}DateTime" in raw:
        d = fhir_date(raw[f"{prefix}DateTime"])
        return d, d
    p = raw.get(f"{prefix}Period")
    if isinstance(p, dict):
        return fhir_date(p.get("start")), period_end(p.get("end"))
    return None, None


def flatten(payload: object) -> list[dict[str, Any]]:
    """Resources from a resource, a Bundle (entries' resources), or a list of either."""
    out: list[dict[str, Any]] = []
    _collect(payload, out)
    return out


def _collect(payload: object, out: list[dict[str, Any]]) -> None:
    # Into one list, not generators within generators: a Bundle's entries are most of a call.
    if isinstance(payload, list):
        for item in payload:
            _collect(item, out)
    elif isinstance(payload, dict):
        rtype = payload.get("resourceType")
        if rtype == "Bundle":
            for entry in json_list(payload.get("entry")):
                if isinstance(entry, dict):
                    _collect(entry.get("resource"), out)
        elif isinstance(rtype, str):
            out.append(payload)
