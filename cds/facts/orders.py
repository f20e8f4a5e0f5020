"""Draft orders of order-select / order-sign (context.draftOrders and selections) as facts.

A draft order is never skipped silently. Drafts are read field by field, tolerant of the
slightly wrong FHIR real clients send (the CDS Hooks Sandbox sends `MedicationRequest.category`
as an object): a draft invalid only in a field no rule reads is still checked. A draft whose
medication cannot be identified at all is kept as `unreadable`, and a card says so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from cds import medication_references
from cds.facts import units
from cds.fhir.elements import finite, flatten, json_list
from cds.fhir.medication_names import why_unnamed
from cds.fhir.modifiers import modifier_of
from cds.fhir.reading import medication_index, of_another_patient
from cds.fhir.records import MedicationRecord, activity_record, medication_record
from cds.said import Said, say
from cds.terminology import Concept, DrugMatch, Terminology

log = logging.getLogger(__name__)

_CHECKED = frozenset({"MedicationRequest", "ServiceRequest", "Procedure"})
# What a drafted service or test is read as: a dental procedure R4c checks, and what R2-R4 and
# R11 would suggest, so that one drafted is not suggested again.
SERVICE_KINDS = (
    "invasive-dental",
    "dental-evaluation",
    "echocardiogram",
    "creatinine",
    "calcium",
    "albumin",
)  # the drafts read
SUBCUTANEOUS_TRASTUZUMAB = "trastuzumab-subcutaneous"  # the value set of Herceptin Hylecta
PHESGO_MAINTENANCE = "phesgo-maintenance-dose"  # Phesgo's maintenance-dose package, by code
PHESGO_INITIAL = "phesgo-initial-dose"  # and its initial-dose package


@dataclass(frozen=True, slots=True, kw_only=True)
class DraftMedication:
    ref: str  # "MedicationRequest/id"
    drugs: tuple[DrugMatch, ...]
    dose_mg: float | None  # a mass dose in mg; None when absent, per weight, or in an unknown unit
    dose_note: Said | None  # why the dose is unknown, for the card (a unit that is not a mass)
    dose_mg_per_kg: float | None  # a dose by body weight (mg/kg), as structured or written
    dose_mg_per_m2: float | None  # a dose by body surface area (mg/m²), as structured or written
    infusion_minutes: float | None
    every_weeks: float | None  # the dosing interval (timing.repeat first, then free text)
    # When it starts: the dosing's bounds, else the validity period, else the day it was written.
    start: date | None
    selected: bool
    raw: dict[str, Any]  # the draft as sent, for update suggestions
    # A product whose dosing its ingredient does not tell (Herceptin Hylecta: trastuzumab 600
    # mg SC, no loading dose, none by weight), named by its value set's title; None for others.
    form: str | None = None
    # Coded as one of Phesgo's packages - its initial dose (1,200 mg/600 mg/30,000 units in 15
    # mL) or its maintenance dose (600 mg/600 mg/20,000 units in 10 mL): the one way to tell
    # them apart, as 600 mg is the trastuzumab of both.
    phesgo_dose: Literal["initial", "maintenance"] | None = None
    # A day's total by body surface area, written so ("2,000 mg/m2/day in two doses") where the
    # draft gives no dose per m².
    day_mg_per_m2: float | None = None
    # How the dose in mg was read when it was not written in mg (a count of tablets).
    dose_basis: Said | None = None

    def has(self, *ingredients: str) -> bool:
        return any(d.ingredient in ingredients for d in self.drugs)

    def has_class(self, *classes: str) -> bool:
        return any(d.med_class in classes for d in self.drugs)


@dataclass(frozen=True, slots=True, kw_only=True)
class DraftService:
    ref: str
    text: str
    # The value sets of SERVICE_KINDS it is in: an extraction or implant ("invasive-dental", by
    # code or dental words), or one of the services and tests the cards suggest (§3c D20).
    kinds: frozenset[str]
    selected: bool

    @property
    def invasive_dental(self) -> bool:
        return "invasive-dental" in self.kinds


@dataclass(frozen=True, slots=True, kw_only=True)
class UnreadableDraft:
    ref: str
    reason: Said
    selected: bool
    # Its subject is another patient: checked against this chart, its cards would be about the
    # wrong patient's order (R0's own variant asks to confirm the patient).
    another_patient: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class DraftOrders:
    medications: tuple[DraftMedication, ...] = ()
    services: tuple[DraftService, ...] = ()
    unreadable: tuple[UnreadableDraft, ...] = ()
    # An order hook's drafts (none chosen yet, D21, included): a rule that serves both kinds
    # of hook checks the orders then, and the chart only when the chart is opened.
    ordering: bool = False

    def focus(self) -> tuple[DraftMedication, ...]:
        """The orders being selected (order-select), or all drafts when no selection is given."""
        chosen = tuple(m for m in self.medications if m.selected)
        return chosen or self.medications

    def with_ingredient(self, *ingredients: str) -> tuple[DraftMedication, ...]:
        return tuple(m for m in self.focus() if m.has(*ingredients))

    def with_class(self, *classes: str) -> tuple[DraftMedication, ...]:
        return tuple(m for m in self.focus() if m.has_class(*classes))

    def any_with_class(self, *classes: str) -> tuple[DraftMedication, ...]:
        return tuple(m for m in self.medications if m.has_class(*classes))


NO_DRAFTS = DraftOrders()


@dataclass(frozen=True, slots=True)
class _DraftDose:
    mg: float | None = None
    note: Said | None = None
    infusion_minutes: float | None = None
    every_weeks: float | None = None
    mg_per_kg: float | None = None
    mg_per_m2: float | None = None
    day_mg_per_m2: float | None = None
    basis: Said | None = None


def _dose(record: MedicationRecord, tablet_mg: float | None) -> _DraftDose:
    """The dose in mg (or why it is unknown), infusion minutes and interval of a draft; a
    count of tablets is read as mg with `tablet_mg`, the strength of the product its code
    names, and the card says so."""
    dose_mg: float | None = None
    note: Said | None = None
    basis: Said | None = None
    infusion: float | None = None
    every: float | None = None
    per_kg: float | None = None
    per_m2: float | None = None
    for d in record.doses:
        if d.dose_range is not None and dose_mg is None and note is None:
            note = say("dose-range", range=d.dose_range)  # a range is no dose to check
        if d.quantity is not None and per_kg is None:
            per_kg = units.to_mg_per_kg(d.quantity)
        if d.quantity is not None and per_m2 is None:
            per_m2 = units.to_mg_per_m2(d.quantity)
        if d.quantity is not None and dose_mg is None and note is None:
            dose_mg = units.to_mg(d.quantity)
            count = None if dose_mg is not None or tablet_mg is None else units.tablets(d.quantity)
            if count is not None and tablet_mg is not None:
                dose_mg, basis = _from_tablets(count, tablet_mg)
            if dose_mg is None:
                unit = d.quantity.code or d.quantity.unit
                value = d.quantity.value
                note = (
                    say("dose-not-mass", value=value, unit=unit)
                    if unit
                    else say("dose-not-mass-no-unit", value=value)
                )
        if infusion is None:
            infusion = units.minutes(d.duration, d.duration_unit)
        if every is None:
            every = d.every_weeks
    for d in record.doses:  # free text last, and only for what the structure did not say
        text = d.text or ""
        if dose_mg is None and note is None and text:
            dose_mg = units.mg_from_text(text)
            # "Tykerb 250 mg tablets, take 6 daily": a mass that is one tablet's is not the dose.
            one_tablet = tablet_mg is not None and dose_mg in (None, tablet_mg)
            count = units.tablets_from_text(text) if one_tablet else None
            if count is not None and tablet_mg is not None:
                dose_mg, basis = _from_tablets(count, tablet_mg)
        if per_kg is None and text:
            per_kg = units.mg_per_kg_from_text(text)
        if per_m2 is None and text:
            per_m2 = units.mg_per_m2_from_text(text)
        if infusion is None and text:
            infusion = units.minutes_from_text(text)
        if every is None and d.timing_text:
            every = units.weeks_from_text(d.timing_text)  # "Every 4 weeks" as timing.code
        if every is None and text:
            every = units.weeks_from_text(text)
    day_per_m2 = None
    if per_m2 is None:
        texts = (d.text for d in record.doses if d.text)
        day_per_m2 = next(filter(None, map(units.mg_per_m2_a_day_from_text, texts)), None)
    return _DraftDose(dose_mg, note, infusion, every, per_kg, per_m2, day_per_m2, basis)


def _from_tablets(count: float, tablet_mg: float) -> tuple[float | None, Said]:
    return finite(count * tablet_mg), say("dose-from-tablets", count=count, strength=tablet_mg)


def _nothing_chosen(medication: Concept, raw: Mapping[str, Any]) -> bool:
    """An empty draft: no medication chosen yet (the CDS Hooks Sandbox sends one when Rx View
    opens). Nothing has been ordered, so nothing to warn about (clinical-logic §3c D21)."""
    return not medication.codings and not medication.all_text() and "medicationReference" not in raw


def _form(medication: Concept, drugs: tuple[DrugMatch, ...], t: Terminology) -> str | None:
    """Herceptin Hylecta, by its codes; by its names only when the drug itself was named by
    text (codes decide, §3c D11, as the medication table reads names). Phesgo is not it."""
    if [d.ingredient for d in drugs] != ["trastuzumab"]:
        return None
    hylecta = t[SUBCUTANEOUS_TRASTUZUMAB]
    if hylecta.matches_code(medication) or (drugs[0].by_text and hylecta.matches_text(medication)):
        return hylecta.title
    return None


def _phesgo_dose(medication: Concept, t: Terminology) -> Literal["initial", "maintenance"] | None:
    if t[PHESGO_MAINTENANCE].matches_code(medication):
        return "maintenance"
    return "initial" if t[PHESGO_INITIAL].matches_code(medication) else None


def _medication_draft(
    raw: dict[str, Any],
    ref: str,
    medications: Mapping[str, Mapping[str, Any]],
    t: Terminology,
    *,
    selected: bool,
) -> DraftMedication | Said | None:
    """A draft medication order as the checks read it; why it cannot be checked (its medicine
    unnamed); or None when no medicine was chosen yet."""
    rid = raw.get("id")
    record = medication_record(rid if isinstance(rid, str) else "", raw, medications)
    if _nothing_chosen(record.medication, raw):
        return None
    why = why_unnamed(record.medication, t.rxnorm, referenced=True)
    if why is not None:
        return why
    dose = _dose(record, t.medications.tablet_strength(record.medication, t.rxnorm))
    drugs = t.medications.match(record.medication, t.rxnorm)
    return DraftMedication(
        ref=ref,
        drugs=drugs,
        dose_mg=dose.mg,
        dose_note=dose.note,
        dose_mg_per_kg=dose.mg_per_kg,
        dose_mg_per_m2=dose.mg_per_m2,
        infusion_minutes=dose.infusion_minutes,
        every_weeks=dose.every_weeks,
        start=record.start,
        selected=selected,
        raw=raw,
        form=_form(record.medication, drugs, t),
        phesgo_dose=_phesgo_dose(record.medication, t),
        day_mg_per_m2=dose.day_mg_per_m2,
        dose_basis=dose.basis,
    )


def _not_checked(
    raw: Mapping[str, Any],
    ref: str,
    medications: Mapping[str, Mapping[str, Any]],
    patient_id: str | None,
    *,
    selected: bool,
) -> UnreadableDraft | None:
    """A draft the checks must not read: one whose subject is another patient, an order not to
    give, or one whose meaning an extension may turn; None for every other."""
    rtype = raw["resourceType"]
    if rtype not in _CHECKED:
        return None
    if patient_id and of_another_patient(raw, rtype, patient_id):
        subject = raw["subject"]["reference"]  # of_another_patient read it as a reference
        reason = say("draft-of-another-patient", subject=subject)
        return UnreadableDraft(ref=ref, reason=reason, selected=selected, another_patient=True)
    modified = modifier_of(raw, medications=medications)
    return (
        None
        if modified is None
        else UnreadableDraft(ref=ref, reason=modified[1], selected=selected)
    )


def _by_full_url(bundle: object) -> dict[str, dict[str, Any]]:
    """The Medications of a draftOrders Bundle by their entry's fullUrl: entries of one Bundle
    may name each other so (`urn:uuid:...`; FHIR R4 Bundle, resolving references in
    Bundles). An absolute fullUrl needs no entry here: the reference is read as its Type/id."""
    if not isinstance(bundle, dict):
        return {}
    found: dict[str, dict[str, Any]] = {}
    for entry in json_list(bundle.get("entry")):
        if not isinstance(entry, dict) or not isinstance(url := entry.get("fullUrl"), str):
            continue
        resource = entry.get("resource")
        if isinstance(resource, dict) and resource.get("resourceType") == "Medication":
            found[url] = resource
    return found


def read_draft_orders(
    draft_orders: object,
    selections: Iterable[str] | None,
    t: Terminology,
    resolved: Mapping[str, Any] | None = None,
    patient_id: str | None = None,
) -> DraftOrders:
    """The drafts, each read as the chart is; `resolved` is the call's data, where the
    Medications fetched for records and drafts that name one not sent are kept. A draft whose
    subject is plainly another patient than `patient_id` (the context's) is not checked."""
    selected = set(selections or ())
    meds: list[DraftMedication] = []
    services: list[DraftService] = []
    unreadable: list[UnreadableDraft] = []
    entries = flatten(draft_orders)
    # A draft may name its drug by a Medication sent beside it in the same Bundle, or one the
    # service fetched from the FHIR server for it: read as the prefetch reads it (it used to
    # be 'could not be checked').
    fetched = flatten((resolved or {}).get(medication_references.KEY))
    medications = medication_index(fetched) | medication_index(entries) | _by_full_url(draft_orders)
    for i, raw in enumerate(entries):
        rtype = raw["resourceType"]
        rid = raw.get("id") if isinstance(raw.get("id"), str) else None
        ref = f"{rtype}/{rid}" if rid else f"{rtype} (draft entry {i + 1}, no id)"
        left_out = _not_checked(raw, ref, medications, patient_id, selected=ref in selected)
        if left_out is not None:
            unreadable.append(left_out)
            continue
        if rtype == "MedicationRequest":
            drafted = _medication_draft(raw, ref, medications, t, selected=ref in selected)
            if isinstance(drafted, DraftMedication):
                meds.append(drafted)
            elif drafted is not None:  # why it cannot be checked
                unreadable.append(
                    UnreadableDraft(ref=ref, reason=drafted, selected=ref in selected)
                )
        elif rtype in ("ServiceRequest", "Procedure"):
            a = activity_record(rid or "", raw)
            services.append(
                DraftService(
                    ref=ref,
                    text=a.code.all_text(),
                    kinds=frozenset(k for k in SERVICE_KINDS if t[k].matches(a.code)),
                    selected=ref in selected,
                )
            )
    if unreadable:
        log.warning("draft orders that could not be checked: %d", len(unreadable))
    return DraftOrders(
        medications=tuple(meds),
        services=tuple(services),
        unreadable=tuple(unreadable),
        ordering=True,
    )
