"""Is a resource fit to be read? The fields the rules read, checked against FHIR R4 (the default),
or the whole resource against the `fhir.resources` R4B model (`CDS_VALIDATION=full`).

Full R4B validation costs 100-400 µs a resource and judges fields no rule reads: a chart with a
bad narrative or an odd extension would lose a clinically valid resource for nothing. The narrow
models below hold only what `cds.facts.records` reads, with FHIR's cardinalities (an array is an
array), its primitive formats (the regular expressions of the R4 specification, the same ones
`fhir_core` uses; dates must be real dates), and the required elements among them (status,
intent, code) - so a resource that is wrong where the rules look is still excluded and reported,
and costs a few microseconds. JSON null, which FHIR forbids, is read as absent: absent data is
never a negative finding.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from fhir.resources.R4B import get_fhir_model_class
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    TypeAdapter,
    ValidationError,
)

Mode = Literal["fields", "full"]
Verdict = tuple[str, str] | None  # None when fit, else (JSON location, reason) of the first error

# FHIR R4 primitive formats (https://hl7.org/fhir/R4/datatypes.html), anchored.
_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
_ZONE = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_MONTH_DAY = r"-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])"
DATE_RE = rf"^{_YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?$"
DATETIME_RE = rf"^{_YEAR}({_MONTH_DAY}(T{_TIME}{_ZONE})?)?)?$"
INSTANT_RE = rf"^{_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T{_TIME}{_ZONE}$"


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


class _Element(BaseModel):
    # strict: no coercion ("5" is not a number); extra ignored: only what is read is judged.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class Coding(_Element):
    system: Uri | None = None
    code: Code | None = None
    display: String | None = None


class CodeableConcept(_Element):
    coding: list[Coding] | None = None
    text: String | None = None


class Quantity(_Element):
    value: Decimal | None = None
    unit: String | None = None
    system: Uri | None = None
    code: Code | None = None


class Ratio(_Element):
    numerator: Quantity | None = None
    denominator: Quantity | None = None


class Period(_Element):
    start: DateTime | None = None
    end: DateTime | None = None


class Reference(_Element):
    reference: String | None = None
    display: String | None = None


class Annotation(_Element):
    text: str  # markdown: any string, but present (1..1)


class Extension(_Element):
    url: Uri
    valueCodeableConcept: CodeableConcept | None = None


class Meta(_Element):
    profile: list[Uri] | None = None


class _Resource(_Element):
    """The fields every reader reads."""

    id: Id | None = None
    meta: Meta | None = None
    # Choice elements the reader of this type looks into: value[x] may carry one type only.
    choices: ClassVar[tuple[str, ...]] = ()


class _Valued(_Element):
    valueQuantity: Quantity | None = None
    valueCodeableConcept: CodeableConcept | None = None
    valueString: String | None = None
    valueInteger: int | None = None
    valueRatio: Ratio | None = None
    valueBoolean: bool | None = None


class Patient(_Resource):
    gender: Code | None = None
    birthDate: Date | None = None


class Collection(_Element):
    collectedDateTime: DateTime | None = None
    collectedPeriod: Period | None = None


class Specimen(_Resource):
    collection: Collection | None = None


class Condition(_Resource):
    choices = ("onset", "abatement")
    clinicalStatus: CodeableConcept | None = None
    verificationStatus: CodeableConcept | None = None
    severity: CodeableConcept | None = None
    code: CodeableConcept | None = None
    bodySite: list[CodeableConcept] | None = None
    onsetDateTime: DateTime | None = None
    onsetPeriod: Period | None = None
    abatementDateTime: DateTime | None = None
    abatementPeriod: Period | None = None
    recordedDate: DateTime | None = None
    note: list[Annotation] | None = None


class ReferenceRange(_Element):
    low: Quantity | None = None
    high: Quantity | None = None


class Component(_Valued):
    code: CodeableConcept


class Observation(_Resource, _Valued):
    choices = ("value", "effective")
    status: Code
    code: CodeableConcept
    effectiveDateTime: DateTime | None = None
    effectivePeriod: Period | None = None
    effectiveInstant: Instant | None = None
    issued: Instant | None = None
    interpretation: list[CodeableConcept] | None = None
    component: list[Component] | None = None
    note: list[Annotation] | None = None
    specimen: Reference | None = None
    referenceRange: list[ReferenceRange] | None = None


class Repeat(_Element):
    frequency: PositiveInt | None = None
    period: Decimal | None = None
    periodUnit: Code | None = None
    duration: Decimal | None = None
    durationUnit: Code | None = None


class Timing(_Element):
    repeat: Repeat | None = None


class DoseAndRate(_Element):
    doseQuantity: Quantity | None = None


class Dosage(_Element):
    text: String | None = None
    timing: Timing | None = None
    doseAndRate: list[DoseAndRate] | None = None


class AdministrationDosage(_Element):
    text: String | None = None
    dose: Quantity | None = None


class Ingredient(_Element):
    itemCodeableConcept: CodeableConcept | None = None


class Medication(_Resource):
    code: CodeableConcept | None = None
    ingredient: list[Ingredient] | None = None


class _Other(_Element):
    """A contained resource the readers never look into."""


def _contained_kind(value: Any) -> str:
    is_medication = isinstance(value, dict) and value.get("resourceType") == "Medication"
    return "Medication" if is_medication else "other"


Contained = Annotated[
    Annotated[Medication, Tag("Medication")] | Annotated[_Other, Tag("other")],
    Discriminator(_contained_kind),
]


class _MedicationUse(_Resource):
    choices = ("medication", "effective")
    status: Code
    medicationCodeableConcept: CodeableConcept | None = None
    medicationReference: Reference | None = None
    contained: list[Contained] | None = None
    extension: list[Extension] | None = None


class MedicationStatement(_MedicationUse):
    statusReason: list[CodeableConcept] | None = None
    effectiveDateTime: DateTime | None = None
    effectivePeriod: Period | None = None
    dateAsserted: DateTime | None = None
    dosage: list[Dosage] | None = None


class DispenseRequest(_Element):
    validityPeriod: Period | None = None


class MedicationRequest(_MedicationUse):
    intent: Code
    statusReason: CodeableConcept | None = None
    authoredOn: DateTime | None = None
    dispenseRequest: DispenseRequest | None = None
    dosageInstruction: list[Dosage] | None = None


class MedicationAdministration(_MedicationUse):
    statusReason: list[CodeableConcept] | None = None
    effectiveDateTime: DateTime | None = None
    effectivePeriod: Period | None = None
    dosage: AdministrationDosage | None = None


class Procedure(_Resource):
    choices = ("performed",)
    status: Code
    code: CodeableConcept | None = None
    performedDateTime: DateTime | None = None
    performedPeriod: Period | None = None


class ServiceRequest(_Resource):
    choices = ("occurrence",)
    status: Code
    intent: Code
    code: CodeableConcept | None = None
    authoredOn: DateTime | None = None
    occurrenceDateTime: DateTime | None = None
    occurrencePeriod: Period | None = None


class Encounter(_Resource):
    status: Code
    type: list[CodeableConcept] | None = None
    serviceType: CodeableConcept | None = None
    period: Period | None = None


class AllergyIntolerance(_Resource):
    code: CodeableConcept | None = None


_MODELS: tuple[type[_Resource], ...] = (
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
# One validator per type the rules read, built once at import.
_READ_MODELS: dict[str, TypeAdapter[Any]] = {m.__name__: TypeAdapter(m) for m in _MODELS}
READ_TYPES = frozenset(_READ_MODELS)


def _choice_names(model: type[_Resource]) -> tuple[tuple[str, frozenset[str]], ...]:
    """Each choice element's JSON names (valueQuantity, valueString, ...) as R4B lists them."""
    fields = get_fhir_model_class(model.__name__).model_fields
    names = {f.alias or n for n, f in fields.items()}  # JSON names; `_valueString` is not one
    return tuple(
        (stem, frozenset(n for n in names if n.startswith(stem) and n[len(stem) :][:1].isupper()))
        for stem in model.choices
    )


_CHOICES = {m.__name__: _choice_names(m) for m in _MODELS if m.choices}


def _first_error(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors(include_url=False, include_input=False)[0]
    return ".".join(str(p) for p in err["loc"]) or "(root)", str(err["msg"])


def check_read_fields(resource: Mapping[str, Any]) -> Verdict:
    """The fields the rules read, against FHIR R4; types the rules never read pass."""
    rtype = resource.get("resourceType", "")
    adapter = _READ_MODELS.get(rtype)
    if adapter is None:
        return None
    for stem, names in _CHOICES.get(rtype, ()):
        if len(sent := resource.keys() & names) > 1:
            return f"{stem}[x]", f"sent as {' and '.join(sorted(sent))}: one type only"
    try:
        adapter.validate_python(resource)
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
        canonical = json.dumps(resource, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.blake2b(canonical.encode(), digest_size=16).digest()

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
