"""Prefetched JSON → records: screen, check, build. The first step of every call after prefetch.

Each resource is screened on its raw JSON (type, status, the codes our value sets name); only the
ones a rule could read are checked (`cds.fhir.conformance`) and built into records. A resource
that fails its check is excluded and named on the cards; the call goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from cds.fhir.conformance import Checker
from cds.fhir.elements import concept, flatten, json_list
from cds.fhir.medication_names import medication_concept, why_unnamed
from cds.fhir.modifiers import modifier_of, unconfirmed_status
from cds.fhir.records import (
    ActivityRecord,
    AllergyRecord,
    ConditionRecord,
    Excluded,
    MedicationRecord,
    ObservationRecord,
    PatientRecord,
    Records,
    activity_record,
    allergy_record,
    condition_record,
    medication_record,
    observation_record,
    patient_record,
    resource_ref,
    specimen_date,
)
from cds.fhir.screening import (
    FINAL_OBSERVATION,
    MEDICATION_TYPES,
    RELEVANT_TYPES,
    Screening,
    entered_in_error,
    screening,
)
from cds.said import say
from cds.terminology import Concept, Terminology

log = logging.getLogger(__name__)

_FIELDS_ONLY = Checker("fields")


def read_records(
    payloads: Iterable[object],
    terminology: Terminology,
    checker: Checker = _FIELDS_ONLY,
    *,
    patient_id: str | None = None,
) -> Records:
    """Screen, check once, and reduce every resource the rules could read: the patient's own,
    when `patient_id` (the call's context) says who that is."""
    screen = screening(terminology)
    resources, received = _distinct(payloads)
    medications = medication_index(resources)
    own = f"Patient/{(patient_id or '').removeprefix('Patient/')}"
    excluded: list[Excluded] = []
    conditions: list[ConditionRecord] = []
    observations: list[ObservationRecord] = []
    preliminary: list[ObservationRecord] = []
    medication_records: list[MedicationRecord] = []
    activities: list[ActivityRecord] = []
    allergies: list[AllergyRecord] = []
    patient: PatientRecord | None = None
    specimen_dates: dict[str, date] = {}
    unmatched: list[Mapping[str, Any]] = []  # of no drug the rules know: named if of none
    for raw in resources:
        rtype = raw["resourceType"]
        # Most of a large chart is screened out: the screen first, the withdrawn test after.
        if not screen.relevant(raw, medications, unmatched) or entered_in_error(raw):
            continue
        rid = str(raw.get("id") or "")
        if out := _left_out(raw, rtype, rid, checker, patient_id, own, screen, medications):
            excluded.append(out)
            continue
        if rtype == "Observation":  # most common first: a chart is mostly Observations
            record = observation_record(rid, raw)
            (observations if record.status in FINAL_OBSERVATION else preliminary).append(record)
        elif rtype == "Condition":
            conditions.append(condition_record(rid, raw))
        elif rtype in MEDICATION_TYPES:
            medication_records.append(medication_record(rid, raw, medications))
        elif rtype == "Patient":
            patient = patient_record(rid, raw)
        elif rtype == "Specimen":
            if (d := specimen_date(raw)) is not None:
                specimen_dates[f"Specimen/{rid}"] = d
        elif rtype == "AllergyIntolerance":
            allergies.append(allergy_record(rid, raw))
        else:
            activities.append(activity_record(rid, raw))
    return Records(
        patient=patient,
        conditions=tuple(conditions),
        observations=tuple(observations),
        medications=tuple(medication_records),
        activities=tuple(activities),
        allergies=tuple(allergies),
        specimen_dates=specimen_dates,
        excluded=(*excluded, *_unnamed(unmatched, terminology, medications, patient_id)),
        preliminary=tuple(preliminary),
        received=received,
    )


def _left_out(
    raw: dict[str, Any],
    rtype: str,
    rid: str,
    checker: Checker,
    patient_id: str | None,
    own: str,
    screen: Screening,
    medications: Mapping[str, Mapping[str, Any]],
) -> Excluded | None:
    """Why a resource the rules would read is left out: another patient's, failing its check,
    carrying a modifier, or a diagnosis not yet confirmed; None when it is read."""
    subject = raw.get("subject")
    if (
        patient_id is not None
        # The common case, a subject that is the patient's own reference, decided here.
        and not (type(subject) is dict and subject.get("reference") == own)
        and of_another_patient(raw, rtype, patient_id)
    ):
        log.warning("excluded %s of another patient", rtype)
        # Its code is not carried: what another patient's record says is nothing to go by.
        ref = resource_ref(rtype, rid)
        return Excluded(rtype, "subject", say("another-patient"), ref, Concept())
    verdict = checker.verdict(raw)
    if verdict is None:
        modified = modifier_of(raw, orders_not_to_give_read=True, medications=medications)
        if modified is None:
            # Most resources are not Conditions with a verification status: no call for them.
            if rtype != "Condition" or "verificationStatus" not in raw:
                return None
            return _unconfirmed(raw, rtype, rid, screen)
        where, said = modified
        log.warning("excluded %s carrying a modifier at %s", rtype, where)
        return Excluded(rtype, where, said, resource_ref(rtype, rid), concept(raw.get("code")))
    where, reason = verdict
    log.warning("excluded invalid %s at %s", rtype, where)
    return Excluded(rtype, where, reason, resource_ref(rtype, rid), concept(raw.get("code")))


def _unconfirmed(raw: dict[str, Any], rtype: str, rid: str, screen: Screening) -> Excluded | None:
    """A breast cancer or metastasis Condition recorded as unconfirmed, provisional or a
    differential: a suspected diagnosis starts no treatment card (a suspected metastasis
    written out is not read either: 'suspected' is excluded from the sets' text)."""
    if (status := unconfirmed_status(raw)) is None:
        return None
    code = concept(raw.get("code"))
    if not screen.needs_confirmation(code):
        return None
    log.warning("excluded Condition recorded as %s", status)
    said = say("condition-unconfirmed", status=status)
    return Excluded(rtype, "verificationStatus", said, resource_ref(rtype, rid), code)


def _unnamed(
    records: list[Mapping[str, Any]],
    terminology: Terminology,
    medications: dict[str, dict[str, Any]],
    patient_id: str | None,
) -> list[Excluded]:
    """The medication records that name no medicine the service can read: a reference to a
    Medication not sent, with no display; codes of another system only, with no text. Each
    may be a bone agent or a HER2 antibody, so it is named (R0b), never taken for another
    drug."""
    out = []
    for raw in records:
        medicine = medication_concept(raw, medications)
        why = why_unnamed(medicine, terminology.rxnorm, referenced="medicationReference" in raw)
        rtype = raw["resourceType"]
        if why is None or entered_in_error(raw):
            continue
        if patient_id is not None and of_another_patient(raw, rtype, patient_id):
            continue  # another patient's record: nothing to go by
        log.warning("excluded %s naming no readable medication", rtype)
        rid = str(raw.get("id") or "")
        out.append(Excluded(rtype, "medication[x]", why, resource_ref(rtype, rid), Concept()))
    return out


def of_another_patient(raw: Mapping[str, Any], rtype: str, patient_id: str) -> bool:
    """A resource whose subject (AllergyIntolerance: patient) is plainly another Patient, or a
    Patient with another id. A server that ignores the `patient` search parameter answers with
    every patient's results; another patient's creatinine once set this one's renal dose. A
    reference that cannot be read as Patient/id (urn:uuid, contained, none) is kept."""
    own = patient_id.removeprefix("Patient/")
    if rtype == "Patient":
        return isinstance(raw.get("id"), str) and raw["id"] != own
    subject = raw.get("patient" if rtype == "AllergyIntolerance" else "subject")
    reference = subject.get("reference") if isinstance(subject, dict) else None
    if not isinstance(reference, str):
        return False
    parts = reference.split("/_history/")[0].split("/")
    return len(parts) >= 2 and parts[-2] == "Patient" and parts[-1] != own


def medication_index(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The Medication resources sent, by the reference a medication statement or order uses
    (a prefetch's, or a draftOrders Bundle's own entries)."""
    return {
        f"Medication/{r['id']}": r
        for r in resources
        if r["resourceType"] == "Medication" and isinstance(r.get("id"), str)
    }


def _distinct(payloads: Iterable[object]) -> tuple[list[dict[str, Any]], frozenset[str]]:
    """The resources of the types the rules read, each once (the same resource sent under two
    prefetch keys counts once), and every resource type received."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    anonymous: list[dict[str, Any]] = []
    received: set[str] = set()
    for payload in payloads:
        for raw in _resources(payload):
            rtype = raw["resourceType"]
            received.add(rtype)
            if rtype not in RELEVANT_TYPES:
                continue
            rid = raw.get("id")
            if isinstance(rid, str):
                seen.setdefault((rtype, rid), raw)
            else:
                anonymous.append(raw)
    return list(seen.values()) + anonymous, frozenset(received)


def _resources(payload: object) -> list[dict[str, Any]]:
    """`flatten`, with a Bundle's plain entries taken in one loop: they are most of a call."""
    if not (isinstance(payload, dict) and payload.get("resourceType") == "Bundle"):
        return flatten(payload)
    out: list[dict[str, Any]] = []
    for entry in json_list(payload.get("entry")):
        if isinstance(entry, dict):
            resource = entry.get("resource")
            if (
                isinstance(resource, dict)
                and isinstance(rtype := resource.get("resourceType"), str)
                and rtype != "Bundle"
            ):
                out.append(resource)
            else:
                out.extend(flatten(resource))  # a Bundle in a Bundle, a list, or nothing
    return out
