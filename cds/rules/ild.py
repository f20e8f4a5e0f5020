"""R12: interstitial lung disease / pneumonitis and trastuzumab deruxtecan (Enhertu boxed
warning; clinical-logic §3c C3, D12, D18); R12b and R12c: the same for trastuzumab (its labels'
boxed warning) and T-DM1 (the Kadcyla label)."""

from __future__ import annotations

from datetime import date

from cds.facts import PatientFacts
from cds.facts.disease import GradedCondition
from cds.facts.medications import Exposure
from cds.facts.orders import DraftMedication, DraftOrders
from cds.parameters import Parameters
from cds.rules import ORDER_HOOKS, PATIENT_VIEW, Decision, Indicator, NoteKey, rule
from cds.rules.bone import renal_below, renal_line
from cds.rules.in_use import held, held_line, in_use_lines, unknown_status_line
from cds.said import Said, say
from cds.terminology import MedClass


def _grade_variant(grade: int | None, p: Parameters) -> str:
    if grade is None:
        return "ild-grade-unknown"
    return "ild-discontinue" if grade >= p.ild_grade_discontinue else "ild-interrupt"


@rule(
    "R12",
    hooks=(*PATIENT_VIEW, *ORDER_HOOKS),
    variants=(
        "ild-discontinue",
        "ild-interrupt",
        "ild-grade-unknown",
        "ild-interrupt-held",
        "ild-grade-unknown-held",
        "ild-before-tdxd",
        "ild-order",
        "start-monitoring",
    ),
    bindings=("grade",),
    # ILD/pneumonitis; the renal facts' creatinine, weight and dialysis for the start card.
    valuesets=("interstitial-lung-disease", "creatinine", "body-weight", "dialysis"),
    ingredients=("trastuzumab deruxtecan",),
    # What makes trastuzumab deruxtecan active (F5), besides the grade threshold.
    parameters=(
        "ild_grade_discontinue",
        "active_window_days",
        "tdxd_ild_crcl_below",
        "lab_read_ranges",
    ),
    notes=("renal-impairment",),
)
def r12_tdxd_lung(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """T-DXd and interstitial lung disease/pneumonitis (Enhertu label boxed warning; C3).

    ILD/pneumonitis recorded after T-DXd started, while on it (or while a record of unknown
    status leaves that open: it is named) → critical: grade ≥2 (symptomatic)
    permanently discontinue; grade 1 interrupt until resolved to grade 0; grade unknown interrupt
    and evaluate (high-resolution CT, pulmonology). A grade ≥2 event that has resolved still
    means T-DXd is not resumed. ILD recorded before T-DXd → warning. Ordering T-DXd with any
    ILD history → critical; starting T-DXd → monitor (info). DB-09 ILD rate 12.1%. Grade 1
    (§3c D18): resume at the same dose if it resolved within 28 days of onset, one level lower if
    later. ILD is recognised by code (ICD-10-CM J70.2-J70.4, J84.89, J84.9; SNOMED 233703007,
    205237003), by text only for text-only conditions (§3c D12).
    """
    ordered = drafts.with_ingredient("trastuzumab deruxtecan")
    if ordered:
        decision = _tdxd_ordered(f, ordered, p)
        return [decision] if decision is not None else []
    # A record of unknown status may be in use: a lung check is not dropped for want of one.
    active = list(f.meds.possibly_in_use("HER2_ADC_TDXD"))
    if not active:
        return []
    first = _first_start(f, "trastuzumab deruxtecan")
    history = f.disease.ild_history
    on_it = [g for g in history if first is None or g.onset is None or g.onset >= first]
    current = [
        g for g in on_it if g.active or (g.grade is not None and g.grade >= p.ild_grade_discontinue)
    ]
    tdxd = tuple(
        unknown_status_line(e) if e.status_unknown else say("on-tdxd-since", when=first, ref=e.ref)
        for e in active
    )
    if current:
        return [_ild_on_tdxd(f, current, active, tdxd, p)]
    ild = f.disease.interstitial_lung_disease
    if ild.present:
        return [
            Decision(
                variant="ild-before-tdxd",
                indicator="warning",
                data=(say("ild", when=ild.since), *tdxd),
                refs=ild.refs + tuple(e.ref for e in active),
            )
        ]
    return []


def ild_on_record(f: PatientFacts) -> tuple[Said, ...]:
    """Each ILD/pneumonitis recorded, of any clinical status, as the T-DXd order card names
    them: named wherever T-DXd is offered (R6, R15), so the offer says what its order will
    (a resolved pneumonitis of years before went unmentioned on the offer, and its order was
    critical)."""
    return tuple(say("ild-ref", when=g.onset, ref=g.ref) for g in f.disease.ild_history)


def _tdxd_ordered(
    f: PatientFacts, ordered: tuple[DraftMedication, ...], p: Parameters
) -> Decision | None:
    """Ordering T-DXd with any ILD/pneumonitis history: critical (boxed warning); without one,
    monitor from the start (info) - at the start of a course only: the next cycle's order of a
    course going on (T-DXd in use by F5, or of unknown status) is no start, and an info card at
    every cycle teaches clinicians to ignore cards. A course restarted after a break is a start,
    and the card names the last T-DXd record. With renal impairment (CrCl below 60 mL/min or
    dialysis) the start card says the Enhertu label reports more grade 1-2 ILD/pneumonitis and
    asks for closer monitoring."""
    history = f.disease.ild_history
    ever = f.disease.interstitial_lung_disease.present or bool(history)
    if not ever and f.meds.possibly_in_use("HER2_ADC_TDXD"):
        return None
    last = None if ever else f.meds.last_recorded("HER2_ADC_TDXD")
    # Moderate renal impairment or worse (US label: moderate; EU: moderate or severe).
    renal = not ever and renal_below(f, p.tdxd_ild_crcl_below)
    return Decision(
        variant="ild-order" if ever else "start-monitoring",
        indicator="critical" if ever else "info",
        data=tuple(say("draft-order-ref", ref=o.ref) for o in ordered)
        + ild_on_record(f)
        + (
            (say("drug-last-recorded", drug=last.ingredient, when=last.last_shown, ref=last.ref),)
            if last
            else ()
        )
        + ((renal_line(f),) if renal else ()),
        refs=tuple(o.ref for o in ordered)
        + tuple(g.ref for g in history)
        + ((last.ref,) if last else ())
        + (f.renal.refs if renal else ()),
        note_keys=(NoteKey("renal-impairment"),) if renal else (),
    )


def _ild_on_tdxd(
    f: PatientFacts,
    current: list[GradedCondition],
    active: list[Exposure],
    tdxd: tuple[Said, ...],
    p: Parameters,
) -> Decision:
    """ILD/pneumonitis on T-DXd, by the worst grade recorded (Enhertu label): grade >= 2
    discontinue permanently, grade 1 interrupt, grade unknown interrupt and evaluate - all
    critical. T-DXd already on hold since the event (`in_use.held`), the interruption is done
    (C9): grade 1 is information (resume once resolved, at the dose the 28-day rule gives),
    grade unknown a warning to evaluate and record it; a hold is no discontinuation, so grade
    >= 2 stays critical."""
    grades = [g.grade for g in current]
    grade = None if None in grades else max(g for g in grades if g is not None)
    variant = _grade_variant(grade, p)
    indicator: Indicator = "critical"
    onsets = [g.onset for g in current]
    since = None if None in onsets else min(d for d in onsets if d is not None)
    on_hold = variant != "ild-discontinue" and held(f.meds, "trastuzumab deruxtecan", since)
    if on_hold:
        variant = f"{variant}-held"
        indicator = "info" if grade is not None else "warning"
    holds = (held_line(f.meds, "trastuzumab deruxtecan", "T-DXd"),) if on_hold else ()
    return Decision(
        variant=variant,
        indicator=indicator,
        bindings={"grade": str(grade) if grade is not None else "unknown"},
        data=(*_ild_lines(current), *tdxd, *holds),
        refs=tuple(g.ref for g in current) + tuple(e.ref for e in active),
    )


@rule(
    "R12b",
    hooks=(*PATIENT_VIEW, *ORDER_HOOKS),
    variants=("pneumonitis-on-trastuzumab", "pneumonitis-order"),
    valuesets=("interstitial-lung-disease",),
    ingredients=("trastuzumab",),
    parameters=("active_window_days",),
)
def r12b_trastuzumab_pneumonitis(
    f: PatientFacts, drafts: DraftOrders, p: Parameters
) -> list[Decision]:
    """Interstitial pneumonitis and trastuzumab → warning: evaluate before the next dose.

    The trastuzumab labels' boxed warning (Herceptin, Herceptin Hylecta, the biosimilars;
    Phesgo): discontinue for anaphylaxis, angioedema, interstitial pneumonitis or acute
    respiratory distress syndrome. Active ILD/pneumonitis recorded on or after trastuzumab
    started, while it may be in use (a record of unknown status is named); on the order hooks,
    trastuzumab drafted while ILD/pneumonitis is active. A warning, not critical: whether the
    recorded pneumonitis is the label's (its cause, its severity) is the clinician's evaluation.
    On T-DXd, R12 applies the Enhertu label instead.
    """
    return _pneumonitis_on(
        f, drafts, "trastuzumab", "HER2_MAB", ("pneumonitis-on-trastuzumab", "pneumonitis-order")
    )


@rule(
    "R12c",
    hooks=(*PATIENT_VIEW, *ORDER_HOOKS),
    variants=("pneumonitis-on-tdm1", "pneumonitis-order-tdm1"),
    valuesets=("interstitial-lung-disease",),
    ingredients=("trastuzumab emtansine",),
    parameters=("active_window_days",),
)
def r12c_tdm1_pneumonitis(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """Interstitial lung disease/pneumonitis and T-DM1 → warning: evaluate before the next dose.

    Kadcyla label, warnings and precautions (pulmonary toxicity): cases of ILD, including
    pneumonitis, some fatal; permanently discontinue KADCYLA in patients diagnosed with ILD or
    pneumonitis. Active ILD/pneumonitis recorded on or after T-DM1 started, while it may be in
    use; on the order hooks, T-DM1 drafted while ILD/pneumonitis is active (T-DM1 is the
    alternative after ILD on T-DXd, clinical-logic §0 item 1: once the ILD has resolved, its
    order raises nothing). A warning, as R12b: whether the recorded ILD is the label's (its
    cause, its severity) is the clinician's evaluation.
    """
    return _pneumonitis_on(
        f,
        drafts,
        "trastuzumab emtansine",
        "HER2_ADC_TDM1",
        ("pneumonitis-on-tdm1", "pneumonitis-order-tdm1"),
    )


def _pneumonitis_on(
    f: PatientFacts,
    drafts: DraftOrders,
    ingredient: str,
    group: MedClass,
    variants: tuple[str, str],
) -> list[Decision]:
    """The drug drafted while ILD/pneumonitis is active (order hooks), or active ILD/pneumonitis
    dated on or after the drug started while it may be in use (patient-view): its warning."""
    on_chart, on_order = variants
    active = [g for g in f.disease.ild_history if g.active]
    if not active:
        return []
    if drafts.ordering:
        ordered = drafts.with_ingredient(ingredient)
        if not ordered:
            return []
        return [
            Decision(
                variant=on_order,
                indicator="warning",
                data=(*(say("draft-order-ref", ref=o.ref) for o in ordered), *_ild_lines(active)),
                refs=(*(o.ref for o in ordered), *(g.ref for g in active)),
            )
        ]
    on_it = [e for e in f.meds.possibly_in_use(group) if e.ingredient == ingredient]
    first = _first_start(f, ingredient)
    during = [g for g in active if g.onset is None or first is None or g.onset >= first]
    if not on_it or not during:
        return []
    return [
        Decision(
            variant=on_chart,
            indicator="warning",
            data=(*_ild_lines(during), *in_use_lines(f.meds, on_it)),
            refs=(*(g.ref for g in during), *(e.ref for e in on_it)),
        )
    ]


def _first_start(f: PatientFacts, ingredient: str) -> date | None:
    """When the drug was first started, by any record of it: ILD dated after it is 'on' it."""
    return min(
        (e.start for e in f.meds.exposures if e.given and e.ingredient == ingredient and e.start),
        default=None,
    )


def _ild_lines(conditions: list[GradedCondition]) -> tuple[Said, ...]:
    return tuple(
        say("ild-graded", when=g.onset, grade=g.grade, ref=g.ref)
        if g.grade is not None
        else say("ild-ungraded", when=g.onset, ref=g.ref)
        for g in conditions
    )
