"""The typed records the facts are computed from, one per kind of resource, built from JSON.

A record holds only what the rules read, in the shapes they read it (dates as dates, doses with
their units); a resource's record is built after `cds.fhir.conformance` judged it fit.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple, TypeVar, cast

from cds.fhir.dosing import Dose, dosing_bounds, read_dose
from cds.fhir.elements import (
    as_text,
    choice_period,
    concept,
    concepts,
    fhir_date,
    json_list,
    json_object,
    month_end,
    period_end,
    reference_of,
)
from cds.fhir.medication_names import medication_concept
from cds.fhir.values import Quantity, Value, read_quantity, read_value
from cds.said import Said
from cds.terminology import Concept, Terminology, ValueSet

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class PatientRecord:
    id: str
    gender: str | None
    birth_date: date | None  # a year or a year-month falls on its first day: the oldest age
    birth_date_partial: str | None = None  # the birthDate as sent, when it is not a full date
    deceased: bool = False  # deceasedBoolean true, or a deceasedDateTime (its date below)
    deceased_on: date | None = None


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


class Component(NamedTuple):
    code: Concept
    value: Value


class ObservationRecord(NamedTuple):
    id: str
    code: Concept
    effective: date | None
    value: Value
    interpretation: tuple[Concept, ...] = ()
    components: tuple[Component, ...] = ()
    notes: tuple[str, ...] = ()
    specimen: str | None = None
    # The first reference range's limits as sent, with their units: a calcium in mmol/L comes
    # with a range in mmol/L, and is compared in mg/dL only once both are converted.
    ref_low: Quantity | None = None
    ref_high: Quantity | None = None
    status: str = "final"  # or amended, corrected; 'preliminary' or 'unknown' (never used)


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
    # mCODE procedure-intent extension (curative, palliative), when the record carries it.
    treatment_intent: Concept | None = None
    # An order not to give the medicine (MedicationRequest.doNotPerform): never a course of it.
    do_not_perform: bool = False
    # The day an order was written (MedicationRequest.authoredOn): never after today.
    authored: date | None = None
    # A start charted by its month (effective '2026-05'): the last day it may have
    # been, where `start` is the first. None for a start charted to the day.
    start_through: date | None = None
    # An end charted by its month or year ('2026-11'), as charted: `end` is its last day (FHIR
    # Period), which a card would show as a day still to come this month.
    end_charted: str | None = None

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.id}"

    @property
    def started_by(self) -> date | None:
        """The latest day the record's course may have begun: its start, or the last day of
        the month its start was charted by."""
        return None if self.start is None else (self.start_through or self.start)


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
    at_risk: bool = True  # clinicalStatus, a modifier: inactive or resolved is no longer a risk


def resource_ref(resource_type: str, rid: str) -> str:
    """How a card names a resource: its reference, or its type when it was sent without an id."""
    return f"{resource_type}/{rid}" if rid else f"{resource_type} (no id)"


@dataclass(frozen=True, slots=True)
class Excluded:
    """A resource left out: it failed its check, or its value is one the checks cannot use (no
    patient has it, a bound, a unit not read). Its reference and code are for the card that
    names it (R0b), never for a log line."""

    resource_type: str
    location: str
    reason: str | Said  # as the check said it (for integrators), or a sentence of cards/
    ref: str  # "Observation/abc", or "Observation (no id)"
    code: Concept  # its code as sent, read before the check: what it might have said


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
    # Lab results still preliminary: never used (final, amended and corrected only), but one
    # newer than the final result in use is named (a creatinine drawn today, not yet verified).
    preliminary: tuple[ObservationRecord, ...] = ()
    # Which kinds of data arrived at all: absent data is unknown, never negative.
    received: frozenset[str] = frozenset()
    # Observations by value set (and whether text counted), worked out once a call: several
    # facts read the same labs. These memos are not init fields: a copy made with
    # dataclasses.replace (the chart with a result set aside) starts with its own, empty.
    _in_set: dict[tuple[str, bool], tuple[ObservationRecord, ...]] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )
    # Their distinct codes: a chart repeats a few (sixty creatinines are one concept, shared).
    _codes: dict[int, Concept] = field(default_factory=dict, init=False, compare=False, repr=False)
    # What the facts work out from these records, once a call (each lab read into its unit).
    _once: dict[Hashable, object] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def once(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        """`compute()`, worked out once for these records: several facts read the same labs."""
        if key not in self._once:
            self._once[key] = compute()
        return cast(_T, self._once[key])

    def observations_in(self, vs: ValueSet) -> tuple[ObservationRecord, ...]:
        """The observations whose code is in the value set (codes, then its text patterns)."""
        return self._picked(vs, by_text=True)

    def observations_coded_in(self, vs: ValueSet) -> tuple[ObservationRecord, ...]:
        """The observations whose code is one of the value set's codes (text is not read)."""
        return self._picked(vs, by_text=False)

    def _picked(self, vs: ValueSet, *, by_text: bool) -> tuple[ObservationRecord, ...]:
        found = self._in_set.get((vs.id, by_text))
        if found is None:
            if not self._codes:
                self._codes.update((id(o.code), o.code) for o in self.observations)
            # Each distinct concept matched once; the records keep them alive, so ids are unique.
            test = vs.matches if by_text else vs.matches_code
            hits = {key for key, code in self._codes.items() if test(code)}
            if not hits or len(hits) == len(self._codes):  # none or all: nothing to pick
                found = self.observations if hits else ()
            else:
                found = tuple(o for o in self.observations if id(o.code) in hits)
            self._in_set[(vs.id, by_text)] = found
        return found


def condition_record(rid: str, raw: Mapping[str, Any]) -> ConditionRecord:
    status = concept(raw.get("clinicalStatus"))
    codes = {c.code for c in status.codings}
    # A Condition without a clinical status is taken as active: a metastasis is never assumed
    # resolved for lack of a field.
    active = not codes or bool(codes & {"active", "recurrence", "relapse"})
    onset = fhir_date(raw.get("onsetDateTime")) or choice_period(raw, "onset")[0]
    abated = fhir_date(raw.get("abatementDateTime")) or choice_period(raw, "abatement")[1]
    if abated is None and isinstance(raw.get("abatementPeriod"), dict):
        abated = choice_period(raw, "abatement")[0]
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


def observation_record(rid: str, raw: Mapping[str, Any]) -> ObservationRecord:
    effective = fhir_date(raw["effectiveDateTime"]) if "effectiveDateTime" in raw else None
    if effective is None:
        effective = choice_period(raw, "effective")[0] or fhir_date(raw.get("effectiveInstant"))
        effective = effective or fhir_date(raw.get("issued"))
    low = high = None
    if "referenceRange" in raw:  # often absent: no call for nothing
        for rr in json_list(raw["referenceRange"]):
            if isinstance(rr, dict):
                low, high = read_quantity(rr.get("low")), read_quantity(rr.get("high"))
                break
    # Components, notes and interpretations are rare: the common case builds no empty tuples.
    components = raw.get("component")
    notes = raw.get("note")
    return ObservationRecord(
        rid,
        concept(raw.get("code")),
        effective,
        read_value(raw),
        concepts(raw["interpretation"]) if "interpretation" in raw else (),
        tuple(
            Component(code=concept(c.get("code")), value=read_value(c))
            for c in json_list(components)
            if isinstance(c, dict)
        )
        if components
        else (),
        tuple(n["text"] for n in json_list(notes) if isinstance(n, dict) and "text" in n)
        if notes
        else (),
        reference_of(raw["specimen"]) if "specimen" in raw else None,
        low,
        high,
        raw["status"],  # required: the checker has made sure it is a code
    )


def _status_reasons(raw: Mapping[str, Any]) -> tuple[Concept, ...]:
    reasons = list(concepts(raw.get("statusReason")))
    for ext in json_list(raw.get("extension")):
        # Legacy mCODE carried the stop reason in a terminationReason extension.
        if isinstance(ext, dict) and "terminationreason" in str(ext.get("url", "")).lower():
            reasons.append(concept(ext.get("valueCodeableConcept")))
    return tuple(reasons)


def _treatment_intent(raw: Mapping[str, Any]) -> Concept | None:
    for ext in json_list(raw.get("extension")):
        if isinstance(ext, dict) and str(ext.get("url", "")).endswith("mcode-procedure-intent"):
            return concept(ext.get("valueCodeableConcept"))
    return None


def medication_record(
    rid: str, raw: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]]
) -> MedicationRecord:
    rtype = raw["resourceType"]
    authored = start_through = end_charted = None
    if rtype == "MedicationRequest":
        doses = tuple(read_dose(d) for d in json_list(raw.get("dosageInstruction")))
        # The course dates: the dosing's own bounds (EHRs write an order's start and stop
        # there), else the prescription's validity, else the day it was written.
        start, end = dosing_bounds(doses)
        validity = (raw.get("dispenseRequest") or {}).get("validityPeriod")
        if isinstance(validity, dict):
            start = start or fhir_date(validity.get("start"))
            if end is None:
                end = period_end(validity.get("end"))
                end_charted = _partial(validity.get("end"), end)
        authored = fhir_date(raw.get("authoredOn"))
        start = start or authored
    elif rtype == "MedicationStatement":
        doses = tuple(read_dose(d) for d in json_list(raw.get("dosage")))
        start, end = choice_period(raw, "effective")
        if "effectiveDateTime" in raw:
            # One date is when the patient was taking it (FHIR: the time the statement is
            # about), not the day the course ended: an active statement so dated was read
            # as ended, and T-DXd's ILD card and a BMA's presence with it. Its status says
            # whether the course goes on; as its last known date, the date stays its `last`.
            end = None
        else:
            end_charted = _partial(_period_end_charted(raw), end)
        start_through = _charted_start_through(raw, start)
        if start is None and end is None:
            start, end = dosing_bounds(doses)
        start = start or fhir_date(raw.get("dateAsserted"))
    else:
        start, end = choice_period(raw, "effective")
        end_charted = _partial(_period_end_charted(raw), end)
        start_through = _charted_start_through(raw, start)
        charted = raw.get("effectiveDateTime")
        # (a full date, the common case, is not looked at twice)
        if type(charted) is str and len(charted) == 7 and (given_by := month_end(charted)):
            # A dose charted by its month was given on a day of it (FHIR R4: a partial
            # dateTime is the whole span): its last day is the latest it may have been. Read
            # as the first, a denosumab dose charted '2026-10' was 52 days old on 22 November
            # and the patient on it was told to start a bone agent. (Not after today: as_of.)
            end = given_by
        doses = (read_dose(raw.get("dosage"), administration=True),) if raw.get("dosage") else ()
    return MedicationRecord(
        id=rid,
        resource_type=rtype,
        status=as_text(raw.get("status")) or "unknown",
        # Only a request has an intent in R4: another type's would be a field nothing checked.
        intent=as_text(raw.get("intent")) if rtype == "MedicationRequest" else None,
        medication=medication_concept(raw, medications),
        start=start,
        end=end,
        status_reasons=_status_reasons(raw),
        doses=doses,
        treatment_intent=_treatment_intent(raw) if "extension" in raw else None,
        # Only a request can be one not to give (R4): another type's would be unchecked.
        do_not_perform=rtype == "MedicationRequest" and raw.get("doNotPerform") is True,
        authored=authored,
        start_through=start_through,
        end_charted=end_charted,
    )


def _period_end_charted(raw: Mapping[str, Any]) -> object:
    period = raw.get("effectivePeriod")
    return period.get("end") if isinstance(period, dict) else None


def _partial(charted: object, read: date | None) -> str | None:
    """A Period end charted by its month or year, as charted, when it was read as a day."""
    if read is None or type(charted) is not str or len(charted) not in (4, 7):
        return None
    return charted


def _charted_start_through(raw: Mapping[str, Any], start: date | None) -> date | None:
    """The last day a statement's or administration's start may have been, when it was
    charted by its month (FHIR R4: a partial date is its whole span; `month_end`). Outside
    histories are often kept so ('trastuzumab since May 2026'): read only as 1 May, an echo of
    6 May was after the start, and a 16-point LVEF drop on it had no pre-treatment value."""
    charted = raw.get("effectiveDateTime")
    if charted is None and isinstance(period := raw.get("effectivePeriod"), dict):
        charted = period.get("start")
    if start is None or type(charted) is not str or len(charted) != 7:
        return None  # charted to the day (the common case), or not at all
    through = month_end(charted)
    return through if through is not None and through > start else None


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
        # Each type's own date elements, the ones the read-field check judged.
        if rtype == "Procedure":
            when = choice_period(raw, "performed")[0]
        else:
            when = fhir_date(raw.get("authoredOn")) or choice_period(raw, "occurrence")[0]
    return ActivityRecord(
        id=rid, resource_type=rtype, status=as_text(raw.get("status")), code=code, when=when
    )


def allergens(code: Concept, t: Terminology) -> tuple[str, ...]:
    """The ingredients an allergy names: its drugs (by RxNorm code, else by name) and those of
    a drug class its words name ("Bisphosphonates": allergy_classes in cards/medications.yaml).
    Allergies are often recorded to a class; read as naming no drug, one was passed over."""
    drugs = [m.ingredient for m in t.medications.match(code, t.rxnorm)]
    if (classes := t.medications.allergy_class_re) is not None:
        for hit in classes.finditer(code.all_text()):
            drugs.extend(t.medications.allergy_classes[hit.group(0)])
    return tuple(dict.fromkeys(drugs))


def allergy_record(rid: str, raw: Mapping[str, Any]) -> AllergyRecord:
    # FHIR R4 AllergyIntolerance.clinicalStatus (a modifier element): "inactive - the subject is
    # no longer at risk of a reaction", "resolved" a kind of inactive. Without a status (or
    # active) the allergy counts: a risk is never assumed gone for lack of a field.
    status = {c.code for c in concept(raw.get("clinicalStatus")).codings}
    return AllergyRecord(
        id=rid, code=concept(raw.get("code")), at_risk=not status & {"inactive", "resolved"}
    )


def patient_record(rid: str, raw: Mapping[str, Any]) -> PatientRecord:
    sent = as_text(raw.get("birthDate"))
    died = fhir_date(raw["deceasedDateTime"]) if "deceasedDateTime" in raw else None
    return PatientRecord(
        id=rid,
        gender=as_text(raw.get("gender")),
        birth_date=fhir_date(sent),
        birth_date_partial=sent if sent is not None and len(sent) < 10 else None,
        deceased=raw.get("deceasedBoolean") is True or died is not None,
        deceased_on=died,
    )


def specimen_date(raw: Mapping[str, Any]) -> date | None:
    coll = json_object(raw.get("collection"))
    return fhir_date(coll.get("collectedDateTime")) or choice_period(coll, "collected")[0]
