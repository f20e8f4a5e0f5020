"""Is a resource fit to be read? The fields the rules read, checked against FHIR R4 (the default),
or the whole resource against the `fhir.resources` R4B model (`CDS_VALIDATION=full`).

Full R4B validation costs 100-400 µs a resource and judges fields no rule reads: a chart with a
bad narrative or an odd extension would lose a clinically valid resource for nothing. The narrow
models below (of the data types in `cds.fhir.datatypes`) hold only what `cds.fhir.records`
reads, with FHIR's cardinalities (an array is an array), its primitive formats (the regular
expressions of the R4 specification, as `fhir_core` has them; dates must be real dates), and
the required elements among them (status, intent, code) - so a resource that is wrong where the
rules look is still excluded and reported, and costs a few microseconds. They are TypedDicts,
not models: validation builds nothing but plain dicts of the fields sent (three times faster
than models that fill every absent field).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Required

import orjson
from fhir.resources.R4B import get_fhir_model_class
from pydantic import (
    Discriminator,
    Tag,
    TypeAdapter,
    ValidationError,
    with_config,
)

# pydantic reads TypedDicts from typing_extensions on Python < 3.12 (it depends on it).
from typing_extensions import TypedDict

from cds.fhir.datatypes import (
    STRICT,
    Annotation,
    Code,
    CodeableConcept,
    Date,
    DateTime,
    Decimal,
    Extension,
    Instant,
    Period,
    PositiveInt,
    Quantity,
    Range,
    Reference,
    ResourceFields,
    String,
    ValueFields,
)

Mode = Literal["fields", "full"]
Verdict = tuple[str, str] | None  # None when fit, else (JSON location, reason) of the first error


@with_config(STRICT)
class Patient(ResourceFields, total=False):
    gender: Code
    birthDate: Date
    deceasedBoolean: bool
    deceasedDateTime: DateTime


@with_config(STRICT)
class Collection(TypedDict, total=False):
    collectedDateTime: DateTime
    collectedPeriod: Period


@with_config(STRICT)
class Specimen(ResourceFields, total=False):
    collection: Collection


@with_config(STRICT)
class Condition(ResourceFields, total=False):
    clinicalStatus: CodeableConcept
    verificationStatus: CodeableConcept
    severity: CodeableConcept
    code: CodeableConcept
    bodySite: list[CodeableConcept]
    onsetDateTime: DateTime
    onsetPeriod: Period
    abatementDateTime: DateTime
    abatementPeriod: Period
    recordedDate: DateTime
    note: list[Annotation]


@with_config(STRICT)
class ReferenceRange(TypedDict, total=False):
    low: Quantity
    high: Quantity


@with_config(STRICT)
class Component(ValueFields, total=False):
    code: Required[CodeableConcept]


@with_config(STRICT)
class Observation(ResourceFields, ValueFields, total=False):
    status: Required[Code]
    code: Required[CodeableConcept]
    effectiveDateTime: DateTime
    effectivePeriod: Period
    effectiveInstant: Instant
    issued: Instant
    interpretation: list[CodeableConcept]
    component: list[Component]
    note: list[Annotation]
    specimen: Reference
    referenceRange: list[ReferenceRange]


@with_config(STRICT)
class Repeat(TypedDict, total=False):
    frequency: PositiveInt
    period: Decimal
    periodUnit: Code
    duration: Decimal
    durationUnit: Code
    boundsPeriod: Period


@with_config(STRICT)
class Timing(TypedDict, total=False):
    repeat: Repeat
    code: CodeableConcept


@with_config(STRICT)
class DoseAndRate(TypedDict, total=False):
    doseQuantity: Quantity
    doseRange: Range


@with_config(STRICT)
class Dosage(TypedDict, total=False):
    text: String
    timing: Timing
    doseAndRate: list[DoseAndRate]


@with_config(STRICT)
class AdministrationDosage(TypedDict, total=False):
    text: String
    dose: Quantity


@with_config(STRICT)
class Ingredient(TypedDict, total=False):
    itemCodeableConcept: CodeableConcept


@with_config(STRICT)
class Medication(ResourceFields, total=False):
    code: CodeableConcept
    ingredient: list[Ingredient]


@with_config(STRICT)
class _Other(TypedDict, total=False):
    """A contained resource the readers never look into."""


def _contained_kind(value: Any) -> str:
    is_medication = isinstance(value, dict) and value.get("resourceType") == "Medication"
    return "Medication" if is_medication else "other"


Contained = Annotated[
    Annotated[Medication, Tag("Medication")] | Annotated[_Other, Tag("other")],
    Discriminator(_contained_kind),
]


@with_config(STRICT)
class _MedicationUse(ResourceFields, total=False):
    status: Required[Code]
    medicationCodeableConcept: CodeableConcept
    medicationReference: Reference
    contained: list[Contained]
    extension: list[Extension]


@with_config(STRICT)
class MedicationStatement(_MedicationUse, total=False):
    statusReason: list[CodeableConcept]
    effectiveDateTime: DateTime
    effectivePeriod: Period
    dateAsserted: DateTime
    dosage: list[Dosage]


@with_config(STRICT)
class DispenseRequest(TypedDict, total=False):
    validityPeriod: Period


@with_config(STRICT)
class MedicationRequest(_MedicationUse, total=False):
    intent: Required[Code]
    doNotPerform: bool  # a modifier: read by cds.fhir.modifiers
    statusReason: CodeableConcept
    authoredOn: DateTime
    dispenseRequest: DispenseRequest
    dosageInstruction: list[Dosage]


@with_config(STRICT)
class MedicationAdministration(_MedicationUse, total=False):
    statusReason: list[CodeableConcept]
    effectiveDateTime: DateTime
    effectivePeriod: Period
    dosage: AdministrationDosage


@with_config(STRICT)
class Procedure(ResourceFields, total=False):
    status: Required[Code]
    code: CodeableConcept
    performedDateTime: DateTime
    performedPeriod: Period


@with_config(STRICT)
class ServiceRequest(ResourceFields, total=False):
    status: Required[Code]
    intent: Required[Code]
    doNotPerform: bool
    code: CodeableConcept
    authoredOn: DateTime
    occurrenceDateTime: DateTime
    occurrencePeriod: Period


@with_config(STRICT)
class Encounter(ResourceFields, total=False):
    status: Required[Code]
    type: list[CodeableConcept]
    serviceType: CodeableConcept
    period: Period


@with_config(STRICT)
class AllergyIntolerance(ResourceFields, total=False):
    clinicalStatus: CodeableConcept
    code: CodeableConcept


# One validator per type the rules read, built once at import.
_READ_MODELS: dict[str, TypeAdapter[Any]] = {
    m.__name__: TypeAdapter(m)
    for m in (
        Patient,
        Specimen,
        Condition,
        Observation,
        MedicationStatement,
        MedicationRequest,
        MedicationAdministration,
        Procedure,
        ServiceRequest,
        Encounter,
        AllergyIntolerance,
        Medication,
    )
}
READ_TYPES = frozenset(_READ_MODELS)
# Their compiled validators, called directly: the adapter's own wrapper costs a sixth as much.
_READ_VALIDATORS = {rtype: adapter.validator for rtype, adapter in _READ_MODELS.items()}
# The choice elements each reader looks into: value[x] may carry one type only.
_CHOICE_ELEMENTS = {
    "Condition": ("onset", "abatement"),
    "Observation": ("value", "effective"),
    "MedicationStatement": ("medication", "effective"),
    "MedicationRequest": ("medication",),
    "MedicationAdministration": ("medication", "effective"),
    "Procedure": ("performed",),
    "ServiceRequest": ("occurrence",),
}


def _choice_names(rtype: str, stems: tuple[str, ...]) -> tuple[tuple[str, frozenset[str]], ...]:
    """Each choice element's JSON names (valueQuantity, valueString, ...) as R4B lists them."""
    fields = get_fhir_model_class(rtype).model_fields
    names = {f.alias or n for n, f in fields.items()}  # JSON names; `_valueString` is not one
    return tuple(
        (stem, frozenset(n for n in names if n.startswith(stem) and n[len(stem) :][:1].isupper()))
        for stem in stems
    )


_CHOICES = {rtype: _choice_names(rtype, stems) for rtype, stems in _CHOICE_ELEMENTS.items()}
# All of a type's choice names at once: one set operation finds what a resource sent of them.
_ANY_CHOICE = {rtype: frozenset().union(*(n for _, n in c)) for rtype, c in _CHOICES.items()}


def _first_error(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors(include_url=False, include_input=False)[0]
    return ".".join(str(p) for p in err["loc"]) or "(root)", str(err["msg"])


def check_read_fields(resource: Mapping[str, Any]) -> Verdict:
    """The fields the rules read, against FHIR R4; types the rules never read pass."""
    rtype = resource.get("resourceType", "")
    validator = _READ_VALIDATORS.get(rtype)
    if validator is None:
        return None
    if rtype in _ANY_CHOICE and len(sent := _ANY_CHOICE[rtype].intersection(resource)) > 1:
        for stem, names in _CHOICES[rtype]:
            if len(twice := sent & names) > 1:
                return f"{stem}[x]", f"sent as {' and '.join(sorted(twice))}: one type only"
    try:
        validator.validate_python(resource)
    except ValidationError as exc:
        return _first_error(exc)
    return None


def check_r4b(resource: Mapping[str, Any]) -> Verdict:
    """The whole resource against its R4B model.

    The narrative (text.div XHTML) is never read by the rules: validating it would cost about a
    quarter of the time and could exclude a clinically valid resource.
    """
    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(
            {k: v for k, v in resource.items() if k != "text"}
        )
    except ValidationError as exc:
        return _first_error(exc)
    return None


def warm_up() -> None:
    """Build the R4B models once at start-up, so the first full check does not pay ~100 ms."""
    for rtype in sorted(READ_TYPES):
        check_r4b({"resourceType": rtype})


class Checker:
    """The check a deployment chose, with full R4B verdicts remembered by content.

    EHRs send the same chart again and again (patient-view, then order-select, then order-sign);
    identical bytes get an identical verdict from the same library version, so in full mode a
    verdict is looked up by a hash of the resource's canonical JSON (~12 µs) instead of
    validating again (100-400 µs). Only verdicts are kept - never resource content. The field
    check is cheaper than the hash, so it is never remembered.
    """

    def __init__(self, mode: Mode = "fields", capacity: int = 50_000) -> None:
        self.mode: Mode = mode
        self.capacity = capacity
        self._verdicts: OrderedDict[bytes, Verdict] = OrderedDict()
        self.hits = self.misses = 0
        # Calls are evaluated in worker threads: the bookkeeping is guarded (never validation).
        self._lock = threading.Lock()

    @staticmethod
    def key(resource: Mapping[str, Any]) -> bytes:
        canonical = orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)
        return hashlib.blake2b(canonical, digest_size=16).digest()

    def verdict(self, resource: Mapping[str, Any]) -> Verdict:
        if self.mode == "fields":
            return check_read_fields(resource)
        key = self.key(resource)
        with self._lock:
            if key in self._verdicts:
                self.hits += 1
                self._verdicts.move_to_end(key)
                return self._verdicts[key]
            self.misses += 1
        # Full means R4B and the read-field check: R4B lets a few things through the rules
        # must not read (a decimal sent as a string).
        result = check_r4b(resource) or check_read_fields(resource)
        with self._lock:
            self._verdicts[key] = result
            if len(self._verdicts) > self.capacity:
                self._verdicts.popitem(last=False)
        return result
