"""FHIR R4 JSON → small typed records: the one place that validates with fhir.resources (R4B).

Validation is costly (100-400 µs a resource), so each resource is first screened on its raw JSON
(resource type, status, the codes our value sets name) and only the ones a rule could read are
validated, once. A resource that fails validation is excluded and counted; the call goes on.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from cds.terminology import Coding, Concept, Terminology

log = logging.getLogger(__name__)

# Types the rules read. Everything else in a Bundle is skipped unparsed.
RELEVANT_TYPES = frozenset(
    {
        "Patient",
        "Condition",
        "Observation",
        "MedicationStatement",
        "MedicationRequest",
        "MedicationAdministration",
        "Medication",
        "Procedure",
        "ServiceRequest",
        "Encounter",
        "AllergyIntolerance",
        "Specimen",
    }
)
MEDICATION_TYPES = ("MedicationStatement", "MedicationRequest", "MedicationAdministration")
FINAL_OBSERVATION = frozenset({"final", "amended", "corrected"})

CONDITION_SETS = (
    "breast-cancer",
    "secondary-neoplasm",
    "cord-compression",
    "heart-failure",
    "interstitial-lung-disease",
    "mronj",
    "dialysis",
)
# Tumour markers (F4) and the labs of F8/F9; the prefetch templates use the same lists.
MARKER_SETS = (
    "her2-interpretation",
    "her2-ihc",
    "her2-ish",
    "her2-ish-ratio",
    "her2-ish-copies",
    "her2-serum",
    "er-status",
    "er-percent",
    "pr-status",
    "pr-percent",
)
# The answer sets the receptor interpretation reads (F4, §5).
RESULT_SETS = ("result-positive", "result-negative", "result-equivocal", "result-unknown")
LAB_SETS = ("creatinine", "calcium", "albumin", "body-weight", "creatinine-clearance", "egfr")
# Staging and history of metastatic cancer (F2 b/c, clinical-logic C8).
STAGING_SETS = (
    "stage-group",
    "m-category",
    "history-of-metastatic-cancer",
    "history-of-metastatic-site",
)
OBSERVATION_SETS = (*MARKER_SETS, "disease-status", *LAB_SETS, "lvef", *STAGING_SETS)
SERVICE_SETS = (
    "dental-evaluation",
    "radiation-oncology",
    "echocardiogram",
    "biopsy",
    "dialysis",
    "invasive-dental",
    "spine-surgery",
)

_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


def warm_up() -> None:
    """Build the R4B models once at start-up, so the first call does not pay ~100 ms for it."""
    for rtype in sorted(RELEVANT_TYPES):
        # Building the validator is the point, not passing it.
        with contextlib.suppress(ValidationError):
            get_fhir_model_class(rtype).model_validate({"resourceType": rtype})


def fhir_date(value: object) -> date | None:
    """The calendar date of a FHIR date/dateTime/instant; partial dates fall on the first day."""
    if not isinstance(value, str):
        return None
    m = _DATE.match(value)
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1))
    except ValueError:
        return None


def concept(raw: object) -> Concept:
    """A CodeableConcept from raw JSON, tolerant of wrong shapes (screening precedes validation)."""
    if not isinstance(raw, dict):
        return Concept()
    codings = []
    for c in json_list(raw.get("coding")):
        if isinstance(c, dict) and isinstance(c.get("code"), str):
            display = c.get("display")
            codings.append(
                Coding(
                    system=str(c.get("system") or ""),
                    code=c["code"],
                    display=display if isinstance(display, str) else None,
                )
            )
    text = raw.get("text")
    return Concept(codings=tuple(codings), text=text if isinstance(text, str) else None)


def concepts(raw: object) -> tuple[Concept, ...]:
    if isinstance(raw, dict):
        return (concept(raw),)
    if isinstance(raw, list):
        return tuple(concept(x) for x in raw)
    return ()


def _number(raw: object) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(raw)
        except ValueError:
            return None
    return None


def json_list(raw: object) -> list[Any]:
    """A JSON array as sent, or nothing when it is not an array (screening precedes validation,
    and a referenced Medication is never validated itself)."""
    return raw if isinstance(raw, list) else []


def json_object(raw: object) -> dict[str, Any]:
    return raw if isinstance(raw, dict) else {}


def _text(raw: object) -> str | None:
    """A string field as sent, or None when it is not a string (screening precedes validation)."""
    return raw if isinstance(raw, str) else None


def _ref_id(raw: object) -> str | None:
    if isinstance(raw, dict) and isinstance(raw.get("reference"), str):
        return str(raw["reference"])
    return None


@dataclass(frozen=True, slots=True)
class Quantity:
    value: float
    unit: str | None = None
    code: str | None = None

    def unit_text(self) -> str:
        return (self.code or self.unit or "").strip()


@dataclass(frozen=True, slots=True)
class Value:
    """Observation.value[x] (or a component's), reduced to the forms the rules read."""

    quantity: Quantity | None = None
    concept: Concept | None = None
    string: str | None = None
    integer: int | None = None
    ratio: float | None = None
    boolean: bool | None = None

    def texts(self) -> tuple[str, ...]:
        out = []
        if self.string:
            out.append(self.string)
        if self.concept is not None:
            out.append(self.concept.all_text())
        return tuple(out)


def _value(raw: Mapping[str, Any]) -> Value:
    q = raw.get("valueQuantity")
    quantity = None
    if isinstance(q, dict) and (v := _number(q.get("value"))) is not None:
        quantity = Quantity(value=v, unit=_text(q.get("unit")), code=_text(q.get("code")))
    ratio = None
    r = raw.get("valueRatio")
    if isinstance(r, dict):
        num = _number((r.get("numerator") or {}).get("value"))
        den = _number((r.get("denominator") or {}).get("value")) if r.get("denominator") else 1.0
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
    )


@dataclass(frozen=True, slots=True)
class PatientRecord:
    id: str
    gender: str | None
    birth_date: date | None


@dataclass(frozen=True, slots=True)
class ConditionRecord:
    id: str
    code: Concept
    body_sites: tuple[Concept, ...]
    active: bool
    onset: date | None
    recorded: date | None
    primary_cancer_profile: bool = False
    abated: date | None = None  # abatement[x]: the condition is over, whatever the status says
    # Severity and notes as text: where a grade (ILD/pneumonitis) is written, if anywhere.
    grade_text: str = ""

    @property
    def date(self) -> date | None:
        return self.onset or self.recorded


@dataclass(frozen=True, slots=True)
class Component:
    code: Concept
    value: Value


@dataclass(frozen=True, slots=True)
class ObservationRecord:
    id: str
    code: Concept
    effective: date | None
    value: Value
    interpretation: tuple[Concept, ...] = ()
    components: tuple[Component, ...] = ()
    notes: tuple[str, ...] = ()
    specimen: str | None = None
    ref_low: float | None = None
    ref_high: float | None = None


@dataclass(frozen=True, slots=True)
class Dose:
    """What the dosage says, as far as the BMA dose test and the order checks need it."""

    text: str | None = None
    quantity: Quantity | None = None
    every_weeks: float | None = None
    # timing.repeat.duration with its UCUM durationUnit: how long one administration takes.
    duration: float | None = None
    duration_unit: str | None = None


@dataclass(frozen=True, slots=True)
class MedicationRecord:
    id: str
    resource_type: str
    status: str
    intent: str | None
    medication: Concept
    start: date | None
    end: date | None
    status_reasons: tuple[Concept, ...]
    doses: tuple[Dose, ...]

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.id}"


@dataclass(frozen=True, slots=True)
class ActivityRecord:
    """A Procedure, ServiceRequest or Encounter: something done or ordered, with its date."""

    id: str
    resource_type: str
    status: str | None
    code: Concept
    when: date | None


@dataclass(frozen=True, slots=True)
class AllergyRecord:
    id: str
    code: Concept


@dataclass(frozen=True, slots=True)
class Excluded:
    """A resource that failed validation: type and where, never its content."""

    resource_type: str
    location: str
    reason: str


class ValidationCache:
    """Content-addressed memo of R4B validation verdicts, bounded, least recently used out.

    EHRs send the same chart again and again (patient-view, then order-select, then order-sign);
    identical bytes get an identical verdict from the same library version, so a verdict is
    looked up by a hash of the resource's canonical JSON (~12 µs) instead of validating again
    (100-400 µs). Only verdicts are kept - never resource content.
    """

    def __init__(self, capacity: int = 50_000) -> None:
        self.capacity = capacity
        self._verdicts: OrderedDict[bytes, tuple[str, str] | None] = OrderedDict()
        self.hits = self.misses = 0
        # Calls are evaluated in worker threads: the bookkeeping is guarded (never validation).
        self._lock = threading.Lock()

    @staticmethod
    def key(resource: Mapping[str, Any]) -> bytes:
        canonical = json.dumps(resource, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.blake2b(canonical.encode(), digest_size=16).digest()

    def verdict(self, resource: Mapping[str, Any]) -> tuple[str, str] | None:
        """None when valid, else (JSON location, reason) of the first error."""
        key = self.key(resource)
        with self._lock:
            if key in self._verdicts:
                self.hits += 1
                self._verdicts.move_to_end(key)
                return self._verdicts[key]
            self.misses += 1
        result = validate(resource)
        with self._lock:
            self._verdicts[key] = result
            if len(self._verdicts) > self.capacity:
                self._verdicts.popitem(last=False)
        return result


def validate(resource: Mapping[str, Any]) -> tuple[str, str] | None:
    """Validate with the R4B model of its type; None when valid, else (location, reason).

    The narrative (text.div XHTML) is never read by the rules: validating it would cost about a
    quarter of the time and could exclude a clinically valid resource.
    """
    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(
            {k: v for k, v in resource.items() if k != "text"}
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        return ".".join(str(p) for p in err["loc"]) or "(root)", str(err["msg"])
    return None


@dataclass(frozen=True, slots=True)
class Records:
    patient: PatientRecord | None = None
    conditions: tuple[ConditionRecord, ...] = ()
    observations: tuple[ObservationRecord, ...] = ()
    medications: tuple[MedicationRecord, ...] = ()
    activities: tuple[ActivityRecord, ...] = ()
    allergies: tuple[AllergyRecord, ...] = ()
    specimen_dates: Mapping[str, date] = field(default_factory=dict)
    excluded: tuple[Excluded, ...] = ()
    # Which kinds of data arrived at all: absent data is unknown, never negative.
    received: frozenset[str] = frozenset()


def flatten(payload: object) -> Iterable[dict[str, Any]]:
    """Resources from a resource, a Bundle (entries' resources), or a list of either."""
    if isinstance(payload, list):
        for item in payload:
            yield from flatten(item)
    elif isinstance(payload, dict):
        if payload.get("resourceType") == "Bundle":
            for entry in json_list(payload.get("entry")):
                if isinstance(entry, dict):
                    yield from flatten(entry.get("resource"))
        elif isinstance(payload.get("resourceType"), str):
            yield payload


def _entered_in_error(raw: Mapping[str, Any]) -> bool:
    if raw.get("status") == "entered-in-error":
        return True
    vs = concept(raw.get("verificationStatus"))
    return any(c.code in {"entered-in-error", "refuted"} for c in vs.codings)


def _medication_concept(
    raw: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]]
) -> Concept:
    if "medicationCodeableConcept" in raw:
        return concept(raw["medicationCodeableConcept"])
    ref = _ref_id(raw.get("medicationReference"))
    if ref is None:
        return Concept()
    target: Mapping[str, Any] | None = None
    if ref.startswith("#"):
        for c in json_list(raw.get("contained")):
            if isinstance(c, dict) and c.get("id") == ref[1:]:
                target = c
    else:
        target = medications.get(ref) or medications.get(ref.rsplit("/", 1)[-1])
    if target is None:
        return Concept(text=_display(raw.get("medicationReference")))
    base = concept(target.get("code"))
    extra: list[Coding] = []
    texts = [base.text or ""]
    for ing in json_list(target.get("ingredient")):
        if isinstance(ing, dict):
            item = concept(ing.get("itemCodeableConcept"))
            extra.extend(item.codings)
            texts.append(item.text or "")
    return Concept(
        codings=base.codings + tuple(extra), text=" ".join(t for t in texts if t) or None
    )


def _display(raw: object) -> str | None:
    if isinstance(raw, dict) and isinstance(raw.get("display"), str):
        return str(raw["display"])
    return None


def _period(raw: Mapping[str, Any], prefix: str) -> tuple[date | None, date | None]:
    if f"{prefix}DateTime" in raw:
        d = fhir_date(raw[f"{prefix}DateTime"])
        return d, d
    p = raw.get(f"{prefix}Period")
    if isinstance(p, dict):
        return fhir_date(p.get("start")), fhir_date(p.get("end"))
    return None, None


_WEEKS = {"d": 1 / 7, "wk": 1.0, "mo": 52 / 12, "a": 52.0, "h": 1 / 168}


def _dose(raw: object) -> Dose:
    if not isinstance(raw, dict):
        return Dose()
    quantity = None
    for dr in json_list(raw.get("doseAndRate")):
        q = dr.get("doseQuantity") if isinstance(dr, dict) else None
        if isinstance(q, dict) and (v := _number(q.get("value"))) is not None:
            quantity = Quantity(value=v, unit=_text(q.get("unit")), code=_text(q.get("code")))
    q = raw.get("dose")  # MedicationAdministration.dosage.dose
    if quantity is None and isinstance(q, dict) and (v := _number(q.get("value"))) is not None:
        quantity = Quantity(value=v, unit=_text(q.get("unit")), code=_text(q.get("code")))
    every = duration = None
    duration_unit = None
    rep = (raw.get("timing") or {}).get("repeat") if isinstance(raw.get("timing"), dict) else None
    if isinstance(rep, dict):
        period, unit = _number(rep.get("period")), rep.get("periodUnit")
        freq = _number(rep.get("frequency")) or 1.0
        if period is not None and unit in _WEEKS:
            every = period * _WEEKS[unit] / freq
        duration, duration_unit = _number(rep.get("duration")), _text(rep.get("durationUnit"))
    text = raw.get("text")
    return Dose(
        text=text if isinstance(text, str) else None,
        quantity=quantity,
        every_weeks=every,
        duration=duration,
        duration_unit=duration_unit,
    )


class _Reader:
    def __init__(self, terminology: Terminology) -> None:
        self.t = terminology
        self.conditions = terminology.screen(CONDITION_SETS)
        self.observations = terminology.screen(OBSERVATION_SETS)
        self.services = terminology.screen(SERVICE_SETS)

    def relevant(self, raw: Mapping[str, Any], medications: Mapping[str, Any]) -> bool:
        rtype = raw["resourceType"]
        if rtype in {"Patient", "Specimen"}:
            return True
        if rtype == "Condition":
            return self.conditions.matches(concept(raw.get("code")))
        if rtype == "Observation":
            if _text(raw.get("status")) not in FINAL_OBSERVATION:
                return False
            return self.observations.matches(concept(raw.get("code")))
        if rtype in MEDICATION_TYPES:
            return bool(
                self.t.medications.match(_medication_concept(raw, medications), self.t.rxnorm)
            )
        if rtype in {"Procedure", "ServiceRequest", "Encounter"}:
            codes = [concept(raw.get("code"))] if rtype != "Encounter" else []
            codes += list(concepts(raw.get("type"))) + list(concepts(raw.get("serviceType")))
            return any(self.services.matches(c) for c in codes)
        if rtype == "AllergyIntolerance":
            return bool(self.t.medications.match(concept(raw.get("code")), self.t.rxnorm))
        return False


@functools.lru_cache(maxsize=4)
def _reader(terminology: Terminology) -> _Reader:
    """One screening index per loaded terminology, built on first use, not per call."""
    return _Reader(terminology)


def read_records(
    payloads: Iterable[object],
    terminology: Terminology,
    cache: ValidationCache | None = None,
) -> Records:
    """Screen, validate once, and reduce every resource the rules could read."""
    reader = _reader(terminology)
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    anonymous: list[dict[str, Any]] = []
    received: set[str] = set()
    for payload in payloads:
        for raw in flatten(payload):
            rtype = raw["resourceType"]
            received.add(rtype)
            if rtype not in RELEVANT_TYPES:
                continue
            rid = raw.get("id")
            if isinstance(rid, str):
                seen.setdefault((rtype, rid), raw)  # the same resource from two keys counts once
            else:
                anonymous.append(raw)
    resources = list(seen.values()) + anonymous
    medications = {
        f"Medication/{r['id']}": r
        for r in resources
        if r["resourceType"] == "Medication" and isinstance(r.get("id"), str)
    }

    excluded: list[Excluded] = []
    out: dict[str, list[Any]] = {k: [] for k in ("cond", "obs", "med", "act", "allergy")}
    patient: PatientRecord | None = None
    specimen_dates: dict[str, date] = {}
    for raw in resources:
        rtype = raw["resourceType"]
        if rtype == "Medication" or _entered_in_error(raw):
            continue
        if not reader.relevant(raw, medications):
            continue
        verdict = cache.verdict(raw) if cache is not None else validate(raw)
        if verdict is not None:
            where, reason = verdict
            excluded.append(Excluded(rtype, where, reason))
            log.warning("excluded invalid %s at %s", rtype, where)
            continue
        rid = str(raw.get("id") or "")
        if rtype == "Patient":
            patient = PatientRecord(
                id=rid, gender=raw.get("gender"), birth_date=fhir_date(raw.get("birthDate"))
            )
        elif rtype == "Specimen":
            coll = raw.get("collection") or {}
            d = fhir_date(coll.get("collectedDateTime")) or _period(coll, "collected")[0]
            if d is not None:
                specimen_dates[f"Specimen/{rid}"] = d
        elif rtype == "Condition":
            out["cond"].append(_condition(rid, raw))
        elif rtype == "Observation":
            out["obs"].append(_observation(rid, raw))
        elif rtype in MEDICATION_TYPES:
            out["med"].append(medication_record(rid, raw, medications))
        elif rtype == "AllergyIntolerance":
            out["allergy"].append(AllergyRecord(id=rid, code=concept(raw.get("code"))))
        else:
            out["act"].append(activity_record(rid, raw))
    return Records(
        patient=patient,
        conditions=tuple(out["cond"]),
        observations=tuple(out["obs"]),
        medications=tuple(out["med"]),
        activities=tuple(out["act"]),
        allergies=tuple(out["allergy"]),
        specimen_dates=specimen_dates,
        excluded=tuple(excluded),
        received=frozenset(received),
    )


def _condition(rid: str, raw: Mapping[str, Any]) -> ConditionRecord:
    status = concept(raw.get("clinicalStatus"))
    codes = {c.code for c in status.codings}
    # A Condition without a clinical status is taken as active: a metastasis is never assumed
    # resolved for lack of a field.
    active = not codes or bool(codes & {"active", "recurrence", "relapse"})
    onset = fhir_date(raw.get("onsetDateTime")) or _period(raw, "onset")[0]
    abated = fhir_date(raw.get("abatementDateTime")) or _period(raw, "abatement")[1]
    if abated is None and isinstance(raw.get("abatementPeriod"), dict):
        abated = _period(raw, "abatement")[0]
    notes = [n.get("text") for n in json_list(raw.get("note")) if isinstance(n, dict)]
    grade_text = " ".join(
        [concept(raw.get("severity")).all_text(), concept(raw.get("code")).all_text()]
        + [n for n in notes if isinstance(n, str)]
    )
    return ConditionRecord(
        id=rid,
        code=concept(raw.get("code")),
        body_sites=concepts(raw.get("bodySite")),
        active=active,
        onset=onset,
        recorded=fhir_date(raw.get("recordedDate")),
        abated=abated,
        grade_text=grade_text.lower(),
        primary_cancer_profile=any(
            "mcode-primary-cancer-condition" in str(p)
            for p in json_list(json_object(raw.get("meta")).get("profile"))
        ),
    )


def _observation(rid: str, raw: Mapping[str, Any]) -> ObservationRecord:
    effective = _period(raw, "effective")[0] or fhir_date(raw.get("effectiveInstant"))
    effective = effective or fhir_date(raw.get("issued"))
    low = high = None
    for rr in json_list(raw.get("referenceRange")):
        if isinstance(rr, dict):
            low = _number((rr.get("low") or {}).get("value"))
            high = _number((rr.get("high") or {}).get("value"))
            break
    return ObservationRecord(
        id=rid,
        code=concept(raw.get("code")),
        effective=effective,
        value=_value(raw),
        interpretation=concepts(raw.get("interpretation")),
        components=tuple(
            Component(code=concept(c.get("code")), value=_value(c))
            for c in json_list(raw.get("component"))
            if isinstance(c, dict)
        ),
        notes=tuple(
            n["text"] for n in json_list(raw.get("note")) if isinstance(n, dict) and "text" in n
        ),
        specimen=_ref_id(raw.get("specimen")),
        ref_low=low,
        ref_high=high,
    )


def _status_reasons(raw: Mapping[str, Any]) -> tuple[Concept, ...]:
    reasons = list(concepts(raw.get("statusReason")))
    for ext in json_list(raw.get("extension")):
        # Legacy mCODE carried the stop reason in a terminationReason extension.
        if isinstance(ext, dict) and "terminationreason" in str(ext.get("url", "")).lower():
            reasons.append(concept(ext.get("valueCodeableConcept")))
    return tuple(reasons)


def medication_record(
    rid: str, raw: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]]
) -> MedicationRecord:
    rtype = raw["resourceType"]
    if rtype == "MedicationRequest":
        start = fhir_date(raw.get("authoredOn"))
        end = None
        validity = (raw.get("dispenseRequest") or {}).get("validityPeriod")
        if isinstance(validity, dict):
            start = fhir_date(validity.get("start")) or start
            end = fhir_date(validity.get("end"))
        doses = tuple(_dose(d) for d in json_list(raw.get("dosageInstruction")))
    elif rtype == "MedicationStatement":
        start, end = _period(raw, "effective")
        start = start or fhir_date(raw.get("dateAsserted"))
        doses = tuple(_dose(d) for d in json_list(raw.get("dosage")))
    else:
        start, end = _period(raw, "effective")
        doses = (_dose(raw.get("dosage")),) if raw.get("dosage") else ()
    return MedicationRecord(
        id=rid,
        resource_type=rtype,
        status=_text(raw.get("status")) or "unknown",
        intent=_text(raw.get("intent")),
        medication=_medication_concept(raw, medications),
        start=start,
        end=end,
        status_reasons=_status_reasons(raw),
        doses=doses,
    )


def activity_record(rid: str, raw: Mapping[str, Any]) -> ActivityRecord:
    rtype = raw["resourceType"]
    if rtype == "Encounter":
        code = Concept(
            codings=tuple(
                c
                for cc in concepts(raw.get("type")) + concepts(raw.get("serviceType"))
                for c in cc.codings
            ),
            text=" ".join(
                cc.all_text() for cc in concepts(raw.get("type")) + concepts(raw.get("serviceType"))
            ),
        )
        period = raw.get("period")
        when = fhir_date(period.get("start")) if isinstance(period, dict) else None
    else:
        code = concept(raw.get("code"))
        when = _period(raw, "performed")[0] if rtype == "Procedure" else None
        when = when or fhir_date(raw.get("authoredOn")) or _period(raw, "occurrence")[0]
    return ActivityRecord(
        id=rid, resource_type=rtype, status=_text(raw.get("status")), code=code, when=when
    )
