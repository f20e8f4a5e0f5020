"""Patient facts F1-F9: FHIR data in, one frozen PatientFacts out. Time is the `as_of` input."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date

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
from cds.facts.receptors import (
    Receptors,
    extract_receptors,
    marker_kind,
    marker_name,
    pending_named,
)
from cds.facts.systemic_lines import SystemicLines, extract_systemic_lines
from cds.fhir.reading import read_records
from cds.fhir.records import (
    ActivityRecord,
    Excluded,
    MedicationRecord,
    ObservationRecord,
    PatientRecord,
    Records,
    allergens,
    resource_ref,
)
from cds.fhir.screening import CONDITION_SETS, OBSERVATION_SETS, RESULT_SETS, SERVICE_SETS
from cds.parameters import Parameters
from cds.said import Said, say
from cds.terminology import Concept, Terminology

_DONE = frozenset({"completed", "finished"})
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
    invasive_dental: tuple[Dated, ...]  # extractions, implants: done (D6)
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
    activities: Iterable[ActivityRecord], t: Terminology, vs_id: str, *, done_only: bool
) -> tuple[Dated, ...]:
    vs = t[vs_id]
    out = []
    for a in activities:
        if a.when is None or not vs.matches(a.code):
            continue
        if a.status in {"revoked", "entered-in-error", "not-done", "cancelled"}:
            continue
        if done_only and a.resource_type != "Procedure" and a.status not in _DONE:
            continue
        if done_only and a.resource_type == "Procedure" and a.status not in (None, "completed"):
            continue
        out.append(Dated(when=a.when, ref=f"{a.resource_type}/{a.id}"))
    return tuple(sorted(out, key=lambda d: d.when))


def _latest_disease_status(records: Records, t: Terminology) -> str | None:
    statuses = records.observations_coded_in(t["disease-status"])
    if not statuses:
        return None
    return _status_word(max(statuses, key=lambda o: o.effective or date.min), t)


def _status_word(o: ObservationRecord, t: Terminology) -> str:
    """A CancerDiseaseStatus result as the rules read it: worsened, stable or undetermined."""
    value = o.value.concept
    if value is None:
        return "undetermined"
    if t["status-worsened"].matches_code(value):
        return "worsened"
    if t["status-not-progressed"].matches_code(value):
        return "stable"
    return "undetermined"


def _results_after_today(
    records: Records, t: Terminology, today: date
) -> tuple[Records, tuple[Excluded, ...]]:
    """The chart without the disease status and tumour marker results dated after today, each
    named: a result in the future is a record error (a year typed wrong), as a lab result so
    dated is (those are named with the labs). Read, a 'worsened' typed a year ahead was
    progression on the line in use - a card to change a line that works (clinical-logic §3b
    C6) - and a primary's HER2-positive result typed years ahead the latest, metastatic one:
    first-line HER2-targeted therapy offered for disease re-tested HER2-negative."""
    late = [o for o in records.observations if o.effective is not None and o.effective > today]
    if not late:
        return records, ()  # the common case: the chart as read
    statuses = t["disease-status"]
    named: list[Excluded] = []
    left_out: set[int] = set()
    for o in late:
        if statuses.matches_code(o.code):
            said = say("status-dated-after-today", status=_status_word(o, t), on=o.effective)
        elif marker_kind(o, t) is not None:
            said = say("marker-dated-after-today", what=marker_name(o, t), on=o.effective)
        else:
            continue  # a lab result: named with the labs (unusable_values)
        left_out.add(id(o))
        named.append(
            Excluded("Observation", "effective[x]", said, resource_ref("Observation", o.id), o.code)
        )
    if not named:
        return records, ()
    # A new Records: what the old one worked out by value set counted the results left out.
    kept = Records(
        patient=records.patient,
        conditions=records.conditions,
        observations=tuple(o for o in records.observations if id(o) not in left_out),
        medications=records.medications,
        activities=records.activities,
        allergies=records.allergies,
        specimen_dates=records.specimen_dates,
        excluded=records.excluded,
        preliminary=records.preliminary,
        received=records.received,
    )
    return kept, tuple(named)


def _deceased(patient: PatientRecord | None, as_of: date, lead_days: int) -> bool:
    """Recorded as deceased: deceasedBoolean true, or a deceasedDateTime on or before today
    (a clock ahead allowed). A date of death after today is a record error: not read."""
    if patient is None or not patient.deceased:
        return False
    return patient.deceased_on is None or patient.deceased_on <= last_day(as_of, lead_days)


def _undated_after_today(records: Records, today: date) -> tuple[Records, tuple[Excluded, ...]]:
    """The chart with each Condition date after today read as no date, and each date so set
    aside named: an onset or a record date in the future is a record error (a year typed
    wrong), not a metastasis yet to come - the condition is present, dated by its other date
    when that one is not in the future, as a Condition with no onset is. An abatement after
    today: not abated yet. Read so, a metastasis typed a year ahead made the therapies since it
    adjuvant and its tissue results older than it; set aside unsaid, the cards gave no hint
    that the dates they show are not the chart's."""

    def after(d: date | None) -> bool:
        return d is not None and d > today

    if not any(after(c.onset) or after(c.recorded) or after(c.abated) for c in records.conditions):
        return records, ()  # the common case: the chart as read
    conditions = tuple(
        replace(
            c,
            onset=None if after(c.onset) else c.onset,
            recorded=None if after(c.recorded) else c.recorded,
            abated=None if after(c.abated) else c.abated,
        )
        for c in records.conditions
    )
    named = []
    for c in records.conditions:
        if said := _dates_set_aside(c.onset, c.recorded, after):
            named.append(
                Excluded("Condition", "onset[x]", said, resource_ref("Condition", c.id), c.code)
            )
        if after(c.abated):
            said = say("condition-abated-after-today", on=c.abated)
            named.append(
                Excluded("Condition", "abatement[x]", said, resource_ref("Condition", c.id), c.code)
            )
    return replace(records, conditions=conditions), tuple(named)


def _dates_set_aside(
    onset: date | None, recorded: date | None, after: Callable[[date | None], bool]
) -> Said | None:
    """What a Condition's onset and recorded date after today leave it dated by, said once."""
    if after(onset) and after(recorded):
        return say("condition-dated-after-today", on=onset, recorded=recorded)
    if after(onset):
        if recorded is None:
            return say("condition-onset-after-today-undated", on=onset)
        return say("condition-onset-after-today", on=onset, recorded=recorded)
    if after(recorded):
        if onset is None:
            return say("condition-recorded-after-today-undated", on=recorded)
        return say("condition-recorded-after-today", on=recorded, onset=onset)
    return None


# A record that the patient takes, took or paused a medicine: its course began before today.
# (A statement "intended" is a course to come, one "not-taken" never begun: read as is.)
_TAKEN = frozenset({"active", "completed", "stopped", "on-hold", "unknown"})


def _started_after_today(m: MedicationRecord, today: date) -> bool:
    """A course said taken that starts after today: a statement so dated, or an order whose
    start and writing date are both after today (an order's start alone may lie ahead: a
    course planned to begin next week)."""
    if m.status not in _TAKEN or m.do_not_perform or m.start is None or m.start <= today:
        return False  # (an order not to give is no course: R0c reads its dates as they are)
    if m.resource_type == "MedicationStatement":
        return True
    return m.resource_type == "MedicationRequest" and m.authored is not None and m.authored > today


def _courses_started_after_today(
    records: Records, today: date
) -> tuple[Records, tuple[Excluded, ...]]:
    """The chart with each medicine said taken from a date after today - a statement so dated,
    an order written after today - read as taken since a date not known, and each named: the
    date is a record error (a year typed wrong). Read as a course yet to come, T-DXd typed a
    year ahead made the pneumonitis on it one before it (a warning for a critical card), and a
    pneumonitis on T-DM1 or trastuzumab gave no card at all."""
    late = [m for m in records.medications if _started_after_today(m, today)]
    if not late:
        return records, ()  # the common case: the chart as read
    undated = {id(m) for m in late}
    medications = tuple(
        replace(m, start=None) if id(m) in undated else m for m in records.medications
    )
    named = tuple(
        Excluded(
            m.resource_type,
            "effective[x]" if m.resource_type == "MedicationStatement" else "authoredOn",
            say("statement-started-after-today", on=m.start)
            if m.resource_type == "MedicationStatement"
            else say("order-written-after-today", on=m.authored),
            resource_ref(m.resource_type, m.id),
            m.medication,
        )
        for m in late
    )
    return replace(records, medications=medications), named


def _procedures_after_today(records: Records, today: date) -> tuple[Records, tuple[Excluded, ...]]:
    """The chart without the Procedures said done or begun on a date after today, each named:
    the date is a record error (a year typed wrong), as a dose given then is. Read, radiotherapy
    typed a year ahead was the treatment that follows a cord compression (no critical card),
    and a dental exam so typed a recent one. One in preparation is planned: read as is."""
    late = [
        a
        for a in records.activities
        if a.resource_type == "Procedure"
        and a.status != "preparation"
        and a.when is not None
        and a.when > today
    ]
    if not late:
        return records, ()  # the common case: the chart as read
    left_out = {id(a) for a in late}
    named = tuple(
        Excluded(
            "Procedure",
            "performed[x]",
            say("procedure-dated-after-today", what=_as_named(a.code), on=a.when),
            resource_ref("Procedure", a.id),
            a.code,
        )
        for a in late
    )
    kept = tuple(a for a in records.activities if id(a) not in left_out)
    return replace(records, activities=kept), named


def _as_named(code: Concept) -> str:
    """A code as the record names it: its text, else a coding's display, else its code."""
    named = code.text or next((c.display for c in code.codings if c.display), None)
    return named or next((c.code for c in code.codings if c.code), "")


def _given_after_today(records: Records, today: date) -> tuple[Records, tuple[Excluded, ...]]:
    """The chart without the doses charted as given after today, and each named: a dose given
    in the future is a record error (a year typed wrong), as a result dated so is. Read, it
    was the last dose ('given 0 days ago', too soon for the next), and its course's dates."""
    late = [
        m
        for m in records.medications
        if m.resource_type == "MedicationAdministration" and m.start is not None and m.start > today
    ]
    if not late:
        return records, ()  # the common case: the chart as read
    left_out = {id(m) for m in late}
    kept = tuple(m for m in records.medications if id(m) not in left_out)
    named = tuple(
        Excluded(
            m.resource_type,
            "effective[x]",
            say("dose-given-after-today", on=m.start),
            resource_ref(m.resource_type, m.id),
            m.medication,
        )
        for m in late
    )
    return replace(records, medications=kept), named


def facts_from_records(
    records: Records, t: Terminology, params: Parameters, *, as_of: date
) -> PatientFacts:
    today = last_day(as_of, params.clock_lead_days)
    records, conditions_set_aside = _undated_after_today(records, today)
    records, statements_set_aside = _courses_started_after_today(records, today)
    dates_set_aside = conditions_set_aside + statements_set_aside
    records, given_later = _given_after_today(records, today)
    records, results_later = _results_after_today(records, t, today)
    records, done_later = _procedures_after_today(records, today)
    disease = extract_disease(records.conditions, t, records.observations)
    meds, lines, systemic = _therapy(records, t, params, disease, as_of)
    her2_starts = [e.start for e in meds.active(*HER2_ANTIBODY_CLASSES) if e.start is not None]
    allergies = frozenset(i for a in records.allergies if a.at_risk for i in allergens(a.code, t))
    lead = params.clock_lead_days
    excluded = (
        records.excluded
        + given_later
        + results_later
        + done_later
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
            her2_start=min(her2_starts) if her2_starts else None,
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
        setting=setting,
        t=t,
        group_days=params.regimen_group_days,
        adjuvant_cutoff_days=params.adjuvant_cutoff_days,
        adjuvant_chemo_days=params.adjuvant_chemo_window_days,
    )
    return meds, lines, systemic


def _activities(records: Records, t: Terminology) -> dict[str, tuple[Dated, ...]]:
    """Dental, radiation, spine, biopsy and dialysis activities, each sorted by date."""
    acts = records.activities
    return {
        "dental_evaluations": _dated(acts, t, "dental-evaluation", done_only=True),
        "invasive_dental": _dated(acts, t, "invasive-dental", done_only=True),
        "radiation_or_neurosurgery": _dated(acts, t, "radiation-oncology", done_only=False),
        "spine_surgeries": _dated(acts, t, "spine-surgery", done_only=False),
        "biopsies": _dated(acts, t, "biopsy", done_only=False),
        "dialysis_procedures": _dated(acts, t, "dialysis", done_only=False),
    }


def extract_facts(
    payloads: Iterable[object], t: Terminology, params: Parameters, *, as_of: date
) -> PatientFacts:
    """FHIR resources and Bundles (any mix) → PatientFacts as of the given date."""
    return facts_from_records(read_records(payloads, t), t, params, as_of=as_of)
