"""Patient facts F1-F9: FHIR data in, one frozen PatientFacts out. Time is the `as_of` input."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from cds.facts.after_today import read_as_of
from cds.facts.days import last_day
from cds.facts.disease import Disease, breast_cancer_left_out, extract_disease
from cds.facts.lab_results import unusable_values
from cds.facts.labs import (
    Calcium,
    Lvef,
    Measurement,
    Renal,
    age_on,
    extract_calcium,
    extract_lvef,
    extract_renal,
    extract_weight,
)
from cds.facts.lines import LineHistory, extract_lines, metastatic_setting
from cds.facts.medications import HER2_ANTIBODY_CLASSES, Medications, extract_medications
from cds.facts.progression import status_word
from cds.facts.receptors import (
    Receptors,
    extract_receptors,
    pending_named,
)
from cds.facts.systemic_lines import SystemicLines, extract_systemic_lines
from cds.fhir.reading import read_records
from cds.fhir.records import (
    ActivityRecord,
    Excluded,
    PatientRecord,
    Records,
    allergens,
)
from cds.fhir.screening import (
    CONDITION_SETS,
    OBSERVATION_SETS,
    ORDERED_LAB_SETS,
    RESULT_SETS,
    SERVICE_SETS,
)
from cds.parameters import Parameters
from cds.terminology import Terminology

# What an activity's status must be to count, by resource type (FHIR R4 status value sets).
_Counts = dict[str, frozenset[str | None]]
# Done: the dental examination made, the extraction done.
_DONE: _Counts = {
    "Procedure": frozenset({None, "completed"}),
    "ServiceRequest": frozenset({"completed"}),
    "Encounter": frozenset({"finished"}),
}
# Done, begun, or ordered and in force: the radiotherapy, surgery or biopsy that followed a
# diagnosis. Not a request nobody has signed (draft) or one suspended (on-hold), a procedure
# only in preparation, or one whose status is unknown: read as the radiotherapy that followed
# a cord compression, a draft request silenced the emergency card.
_UNDER_WAY: _Counts = {
    "Procedure": frozenset({None, "in-progress", "on-hold", "stopped", "completed"}),
    "ServiceRequest": frozenset({"active", "completed"}),
    "Encounter": frozenset({"planned", "arrived", "triaged", "in-progress", "onleave", "finished"}),
}
# Ordered and not yet done: a request still active (not a draft, which nobody has signed; not
# on hold, revoked or completed) - what a card would suggest, already on record (§3c D20).
_ORDERED: _Counts = {"ServiceRequest": frozenset({"active"})}
_WITHDRAWN = frozenset({"revoked", "entered-in-error", "not-done", "cancelled"})
# Every value set the fact extractors read, checked when knowledge loads: a missing file stops
# the service at start-up (and fails `cds check`) instead of failing a call.
FACT_VALUESETS: frozenset[str] = frozenset(
    {
        *CONDITION_SETS,
        *OBSERVATION_SETS,
        *SERVICE_SETS,
        "regional-nodes",
        "bone-metastasis",
        "vertebral-metastasis",
        "vertebral-body-site",
        "bone-marrow-metastasis",
        "brain-metastasis",
        "leptomeningeal-metastasis",
        "visceral-metastasis",
        "status-worsened",
        "status-not-progressed",
        "stop-progression",
        "stop-toxicity",
        "stop-other",
        "patient-refusal",
        "treatment-intent-curative",
        *RESULT_SETS,
        "er-negative-ichom",
        "her2-diagnosis-positive",
        "her2-diagnosis-negative",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Dated:
    when: date
    ref: str


def latest_within(
    dated: Iterable[Dated], as_of: date, days: int, *, after: date | None = None
) -> Dated | None:
    """The latest of these (sorted by date) no more than `days` before as_of, and after
    `after` when given: an order still active that stands for what a card would order."""
    within = [
        d for d in dated if (as_of - d.when).days <= days and (after is None or d.when > after)
    ]
    return within[-1] if within else None


@dataclass(frozen=True, slots=True, kw_only=True)
class PatientFacts:
    as_of: date
    age: int | None
    sex: str | None
    disease: Disease
    receptors: Receptors
    meds: Medications
    lines: LineHistory
    systemic: SystemicLines  # chemotherapy and endocrine lines (HER2-negative disease, R15)
    renal: Renal
    calcium: Calcium
    lvef: Lvef
    dental_evaluations: tuple[Dated, ...]
    # Dental referrals ordered and not yet done (an active ServiceRequest): what R1 and R4
    # suggest, on record (§3c D20: the card stops once the record shows it).
    dental_referrals: tuple[Dated, ...]
    invasive_dental: tuple[Dated, ...]  # extractions, implants: done (D6)
    echo_orders: tuple[Dated, ...]  # echocardiograms ordered and not yet done (R6, R11, R15)
    # Creatinine, calcium, albumin and HER2 tests ordered and not yet resulted, by value set.
    lab_orders: Mapping[str, tuple[Dated, ...]]
    radiation_or_neurosurgery: tuple[Dated, ...]
    spine_surgeries: tuple[Dated, ...]
    biopsies: tuple[Dated, ...]
    dialysis_procedures: tuple[Dated, ...]
    allergies: frozenset[str]  # ingredients the patient is allergic or intolerant to
    excluded: tuple[Excluded, ...]
    # Of those, the Conditions coded as breast cancer: F1 unmet for want of readable evidence.
    breast_cancer_left_out: tuple[str, ...]
    received: frozenset[str]  # resource types that arrived: absent data is unknown
    # The latest CancerDiseaseStatus: worsened, stable (stable/improved/remission), undetermined.
    latest_disease_status: str | None = None
    deceased: bool = False  # the Patient resource records her death (on or before today)
    # The latest body weight within the weight freshness window: doses by weight are read by it.
    weight: Measurement | None = None
    # Dates after today the facts were worked out without (a Condition's onset, a statement's
    # start typed a year ahead): the resource is read, its date is not; named on R0b.
    dates_set_aside: tuple[Excluded, ...] = ()

    @property
    def on_dialysis(self) -> bool:
        return self.disease.dialysis.present or bool(self.dialysis_procedures)

    def last_dental_evaluation(self) -> Dated | None:
        return max(self.dental_evaluations, key=lambda d: d.when, default=None)


def _dated(
    activities: Iterable[ActivityRecord], t: Terminology, vs_id: str, counts: _Counts | None
) -> tuple[Dated, ...]:
    """The dated activities of a value set whose status `counts` (by resource type); with
    None, any that is not withdrawn."""
    vs = t[vs_id]
    out = []
    for a in activities:
        if a.when is None or not vs.matches(a.code) or a.status in _WITHDRAWN:
            continue
        if counts is not None and a.status not in counts.get(a.resource_type, ()):
            continue
        out.append(Dated(when=a.when, ref=f"{a.resource_type}/{a.id}"))
    return tuple(sorted(out, key=lambda d: d.when))


def _latest_disease_status(records: Records, t: Terminology) -> str | None:
    statuses = records.observations_coded_in(t["disease-status"])
    if not statuses:
        return None
    return status_word(max(statuses, key=lambda o: o.effective or date.min), t)


def _deceased(patient: PatientRecord | None, as_of: date, lead_days: int) -> bool:
    """Recorded as deceased: deceasedBoolean true, or a deceasedDateTime on or before today
    (a clock ahead allowed). A date of death after today is a record error: not read."""
    if patient is None or not patient.deceased:
        return False
    return patient.deceased_on is None or patient.deceased_on <= last_day(as_of, lead_days)


def _her2_treatment_start(meds: Medications, gap_days: int) -> date | None:
    """The last day the HER2 antibody treatment now given may have begun: the LVEF baseline is
    the last one by then (an adjuvant course years before is another treatment; R11c's
    LvefDrug)."""
    starts = [
        span[1]
        for drug in dict.fromkeys(e.ingredient for e in meds.active(*HER2_ANTIBODY_CLASSES))
        if (span := meds.treatment_start(drug, gap_days)) is not None
    ]
    return min(starts) if starts else None


def facts_from_records(
    records: Records, t: Terminology, params: Parameters, *, as_of: date
) -> PatientFacts:
    records, dates_set_aside, left_out = read_as_of(
        records, t, as_of=as_of, today=last_day(as_of, params.clock_lead_days)
    )
    disease = extract_disease(records.conditions, t, records.observations)
    meds, lines, systemic = _therapy(records, t, params, disease, as_of)
    allergies = frozenset(i for a in records.allergies if a.at_risk for i in allergens(a.code, t))
    lead = params.clock_lead_days
    excluded = (
        records.excluded
        + left_out
        + unusable_values(records, t, as_of=as_of, lead_days=lead, ranges=params.lab_read_ranges)
    )
    if records.preliminary:
        excluded += pending_named(records, t)
    renal, weight, calcium = _labs(records, t, params, as_of)
    return PatientFacts(
        as_of=as_of,
        deceased=_deceased(records.patient, as_of, lead),
        age=age_on(records.patient, as_of),
        sex=records.patient.gender if records.patient else None,
        disease=disease,
        receptors=extract_receptors(
            records,
            t,
            metastatic=disease.metastatic.present,
            metastatic_since=disease.metastatic_date,
            event_days=params.her2_event_days,
        ),
        meds=meds,
        lines=lines,
        systemic=systemic,
        renal=renal,
        weight=weight,
        calcium=calcium,
        lvef=extract_lvef(
            records,
            t,
            her2_start=_her2_treatment_start(meds, params.new_treatment_gap_days),
            as_of=as_of,
            lead_days=lead,
            ranges=params.lab_read_ranges,
        ),
        **_activities(records, t),
        allergies=allergies,
        excluded=excluded,
        dates_set_aside=dates_set_aside,
        breast_cancer_left_out=breast_cancer_left_out(
            excluded, records.conditions, t, metastatic=disease.metastatic.present
        ),
        received=records.received,
        latest_disease_status=_latest_disease_status(records, t),
    )


def _labs(
    records: Records, t: Terminology, params: Parameters, as_of: date
) -> tuple[Renal, Measurement | None, Calcium]:
    """F8: renal function (Cockcroft-Gault), the latest fresh body weight, and calcium."""
    lead = params.clock_lead_days
    renal = extract_renal(
        records,
        t,
        as_of=as_of,
        lab_days=params.lab_freshness_days,
        weight_days=params.weight_freshness_days,
        lead_days=lead,
        ranges=params.lab_read_ranges,
    )
    weight = extract_weight(
        records,
        t,
        as_of=as_of,
        weight_days=params.weight_freshness_days,
        lead_days=lead,
        ranges=params.lab_read_ranges,
    )
    calcium = extract_calcium(
        records,
        t,
        as_of=as_of,
        lab_days=params.lab_freshness_days,
        lead_days=lead,
        low_fallback=params.hypocalcaemia_mg_dl,
        high_fallback=params.hypercalcaemia_mg_dl,
        ranges=params.lab_read_ranges,
    )
    return renal, weight, calcium


def _therapy(
    records: Records, t: Terminology, params: Parameters, disease: Disease, as_of: date
) -> tuple[Medications, LineHistory, SystemicLines]:
    """Medications (F5), the metastatic HER2 lines (F6, F7) and all systemic lines (D15)."""
    meds = extract_medications(
        records,
        t,
        as_of=as_of,
        active_window_days=params.active_window_days,
        zoledronic_window_days=params.zoledronic_window_days,
        lead_days=params.clock_lead_days,
        gap_days=params.new_treatment_gap_days,
        dose_charted=params.dose_charted_ingredients,
    )
    setting = metastatic_setting(
        meds,
        disease,
        t,
        agents=params.metastatic_setting_agents,
        paired=params.metastatic_setting_pairs,
        group_days=params.regimen_group_days,
    )
    lines = extract_lines(
        meds,
        disease,
        records,
        t,
        setting=setting,
        as_of=as_of,
        group_days=params.regimen_group_days,
        adjuvant_cutoff_days=params.adjuvant_cutoff_days,
        adjuvant_window_days=params.adjuvant_window_days,
        adjuvant_label_days=params.adjuvant_tdxd_label_days,
        brain_window_days=params.brain_status_window_days,
    )
    systemic = extract_systemic_lines(
        meds,
        disease,
        records,
        setting=setting,
        t=t,
        group_days=params.regimen_group_days,
        adjuvant_cutoff_days=params.adjuvant_cutoff_days,
        adjuvant_chemo_days=params.adjuvant_chemo_window_days,
        brain_window_days=params.brain_status_window_days,
    )
    return meds, lines, systemic


def _activities(records: Records, t: Terminology) -> dict[str, Any]:
    """Dental, echocardiogram, radiation, spine, biopsy and dialysis activities, each sorted by
    date."""
    acts = records.activities
    return {
        "dental_evaluations": _dated(acts, t, "dental-evaluation", _DONE),
        "dental_referrals": _dated(acts, t, "dental-evaluation", _ORDERED),
        "echo_orders": _dated(acts, t, "echocardiogram", _ORDERED),
        "lab_orders": {vs: _dated(acts, t, vs, _ORDERED) for vs in ORDERED_LAB_SETS},
        "invasive_dental": _dated(acts, t, "invasive-dental", _DONE),
        "radiation_or_neurosurgery": _dated(acts, t, "radiation-oncology", _UNDER_WAY),
        "spine_surgeries": _dated(acts, t, "spine-surgery", _UNDER_WAY),
        "biopsies": _dated(acts, t, "biopsy", _UNDER_WAY),
        # Any dialysis on record, even one only planned: read as on dialysis, the renal checks
        # err on the safe side (no zoledronic acid, the highest hypocalcaemia risk named).
        "dialysis_procedures": _dated(acts, t, "dialysis", None),
    }


def extract_facts(
    payloads: Iterable[object], t: Terminology, params: Parameters, *, as_of: date
) -> PatientFacts:
    """FHIR resources and Bundles (any mix) → PatientFacts as of the given date."""
    return facts_from_records(read_records(payloads, t), t, params, as_of=as_of)
