"""R2 and R5: zoledronic acid and pamidronate orders (renal dosing, creatinine rise, infusion
time) and the zoledronic acid interval."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from itertools import pairwise

from cds.facts import PatientFacts
from cds.facts.labs import said_missing
from cds.facts.orders import DraftMedication, DraftOrders
from cds.parameters import Parameters
from cds.rules import (
    ORDER_HOOKS,
    PATIENT_VIEW,
    Decision,
    DeleteDraft,
    Order,
    Proposal,
    RegimenOrder,
    rule,
)
from cds.rules.bma_orders import (
    ZOLEDRONIC_REDUCED,
    dose_update,
    hcm_dosing,
    renal_band_dose,
    unit_error,
)
from cds.rules.bone import (
    BISPHOSPHONATES,
    CALCIUM_PARAMETERS,
    CALCIUM_VALUESETS,
    HCM_PARAMETERS,
    LAB_PARAMETERS,
    RENAL_VALUESETS,
    SUPPORT_ORDERS,
    SUPPORT_REGIMENS,
    renal_line,
    severe_renal,
    support_actions,
)
from cds.rules.lab_orders import lab_lines
from cds.said import Said, say


def _creatinine_rise(f: PatientFacts, p: Parameters, drug: str) -> tuple[Said, str] | None:
    """Zometa label renal deterioration on treatment: a rise of ≥0.5 mg/dL from a normal
    baseline, or ≥1.0 mg/dL from an abnormal one. The baseline is the creatinine before the
    first dose of the treatment the order continues (`Medications.treatment_start`: adjuvant
    zoledronic acid years before is another treatment; counted from the creatinine before it,
    a stable 1.1 mg/dL read as a rise). Returns the data line and the baseline's reference when
    it applies."""
    latest = f.renal.creatinine
    if latest is None:
        return None
    gap = p.new_treatment_gap_days
    if f.meds.begins_treatment(drug, gap, on=f.as_of):
        # Before a treatment's first dose there is none to withhold: the dose table applies to
        # the CrCl of now, the baseline (C2). A rise between two pre-treatment results read as
        # "withhold" kept a first dose that the table reduces.
        return None
    span = f.meds.treatment_start(drug, gap)  # None: given on no known day - the earliest
    baseline = f.renal.baseline_before(span[1] if span is not None else None)
    # The same result, not merely the same reference: a result sent without an id has the
    # reference 'Observation/', and any two such were taken for one (no rise, ever).
    if baseline is None or baseline == latest:
        return None
    limit = (
        p.creatinine_rise_abnormal
        if baseline.value > p.creatinine_abnormal_baseline
        else p.creatinine_rise_normal
    )
    if latest.value - baseline.value < limit:
        return None
    line = say(
        "creatinine-rise",
        latest=latest.value,
        latest_on=latest.when,
        baseline=baseline.value,
        baseline_on=baseline.when,
    )
    return line, baseline.ref


@rule(
    "R2",
    hooks=ORDER_HOOKS,
    variants=(
        "renal-contraindicated",
        "dose-adjust",
        "dose-unknown",
        "no-creatinine",
        "crcl-unknown",
        "creatinine-rise",
        "infusion-time",
        "hypercalcaemia",
    ),
    bindings=("drug", "dose", "minimum"),
    valuesets=(*RENAL_VALUESETS, *CALCIUM_VALUESETS, "dental-evaluation"),
    ingredients=BISPHOSPHONATES,
    parameters=(
        *LAB_PARAMETERS,
        *CALCIUM_PARAMETERS,
        "dental_lookback_days",
        "crcl_not_recommended",
        "crcl_dose_adjust_upto",
        "zoledronic_dose_by_crcl",
        "creatinine_rise_normal",
        "creatinine_rise_abnormal",
        "creatinine_abnormal_baseline",
        "new_treatment_gap_days",
        "zoledronic_min_infusion_minutes",
        "pamidronate_min_infusion_minutes",
        "dose_limits",
        "unit_error_factor",
        *HCM_PARAMETERS,
    ),
    orders=SUPPORT_ORDERS,
    medications=(ZOLEDRONIC_REDUCED,),
    regimens=("denosumab", *SUPPORT_REGIMENS),
    suggestions=("replace-with-denosumab", "adjust-dose", "order-creatinine"),
)
def r2_bisphosphonate_order(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """Zoledronic acid / pamidronate order safety: renal dosing, creatinine, infusion time.

    Zometa US label: dose by Cockcroft-Gault CrCl before the first dose (>60 4.0 mg; 50-60 3.5;
    40-49 3.3; 30-39 3.0); not recommended below 30 mL/min; on treatment, withhold after a
    creatinine rise of ≥0.5 mg/dL (normal baseline) or ≥1.0 mg/dL (abnormal baseline) and resume
    at the same dose when it is back within 10% of baseline - one answer never says both withhold
    and reduce (C2). A dose change keeps route, infusion time and interval. ASCO-BMA-2011/2017:
    monitor creatinine before each dose; zoledronic acid over no less than 15 minutes.
    Pamidronate label: over at least 2 hours.
    """
    out: list[Decision] = []
    for draft in drafts.with_ingredient(*BISPHOSPHONATES):
        order = _BisphosphonateOrder.of(draft, f, p, drafts)
        if severe_renal(f, p) and not order.hcm:
            out.append(_renal_contraindicated(order, f, p, drafts))
            continue
        for check in (_renal_dose, _hypercalcaemia_or_crcl_unknown, _no_creatinine, _too_fast):
            decision = check(order, f, p)
            if decision is not None:
                out.append(decision)
    return out


@dataclass(frozen=True, slots=True)
class _BisphosphonateOrder:
    """One zoledronic acid or pamidronate draft as R2's checks read it."""

    draft: DraftMedication
    drug: str
    base: dict[str, str | Said]  # the card bindings every variant starts from
    data: tuple[Said, ...]  # the patient data every variant shows
    hcm: bool  # D2: zoledronic acid in hypercalcaemia of malignancy (4 mg, no reduction)
    # A creatinine ordered and not yet resulted, or being ordered with it (§3c D20).
    creatinine_ordered: tuple[Said, ...] = ()

    @classmethod
    def of(
        cls, draft: DraftMedication, f: PatientFacts, p: Parameters, drafts: DraftOrders
    ) -> _BisphosphonateOrder:
        drug = "zoledronic acid" if draft.has("zoledronic acid") else "pamidronate"
        data = [say("draft-order", drug=drug, ref=draft.ref), renal_line(f)]
        if draft.dose_note:
            data.append(say("draft-dose-unknown", why=draft.dose_note))
        return cls(
            draft=draft,
            drug=drug,
            base={
                "drug": drug,
                "dose": f"{draft.dose_mg:g} mg" if draft.dose_mg else say("dose-as-ordered"),
                "minimum": "",
            },
            data=tuple(data),
            hcm=drug == "zoledronic acid" and hcm_dosing(f, p),
            creatinine_ordered=lab_lines(f, ("lab-creatinine",), p.lab_freshness_days, drafts),
        )


def _renal_contraindicated(
    o: _BisphosphonateOrder, f: PatientFacts, p: Parameters, drafts: DraftOrders
) -> Decision:
    """Zometa label: not recommended below CrCl 30 mL/min (or on dialysis): replace the draft
    with denosumab, created before the draft is deleted (§3c D19: a client that applies only
    the first action never ends with no order)."""
    return Decision(
        variant="renal-contraindicated",
        indicator="critical",
        bindings=o.base,
        data=o.data,
        refs=(o.draft.ref, *f.renal.refs),
        notes=(say("dialysis-recorded"),) if f.on_dialysis else (),
        proposals=(
            Proposal(
                key="replace-with-denosumab",
                actions=(
                    RegimenOrder(key="denosumab"),
                    *support_actions(f, p, drafts),
                    DeleteDraft(draft_ref=o.draft.ref),
                ),
            ),
        ),
    )


def _renal_dose(o: _BisphosphonateOrder, f: PatientFacts, p: Parameters) -> Decision | None:
    """On treatment, a creatinine rise (≥0.5 mg/dL from a normal baseline, ≥1.0 from an
    abnormal one) withholds the dose, to resume at the same dose - never a reduction in the
    same answer (C2). Otherwise the label's CrCl band: a draft above it is reduced (a 10x unit
    error is R2b's critical card instead), a draft without a readable dose is named."""
    rise = _creatinine_rise(f, p, o.drug)
    if rise is not None:
        return Decision(
            variant="creatinine-rise",
            indicator="warning",
            bindings=o.base,
            data=(*o.data, rise[0]),
            refs=(o.draft.ref, *f.renal.refs, rise[1]),
        )
    dose = renal_band_dose(f, p, o.drug)
    if dose is None:
        return None
    if o.draft.dose_mg is None:
        return Decision(
            variant="dose-unknown",
            indicator="warning",
            bindings={**o.base, "dose": f"{dose:g} mg"},
            data=o.data,
            refs=(o.draft.ref, *f.renal.refs),
        )
    if o.draft.dose_mg > dose and not unit_error(o.draft, dose, p):
        return Decision(
            variant="dose-adjust",
            indicator="warning",
            bindings={**o.base, "dose": f"{dose:g} mg"},
            data=o.data,
            refs=(o.draft.ref, *f.renal.refs),
            proposals=(
                Proposal(
                    key="adjust-dose",
                    actions=(dose_update(o.draft, o.drug, dose, p),),
                    label_bindings={"dose": f"{dose:g} mg"},
                ),
            ),
        )
    return None


def _hypercalcaemia_or_crcl_unknown(
    o: _BisphosphonateOrder, f: PatientFacts, p: Parameters
) -> Decision | None:
    """D2: in hypercalcaemia of malignancy zoledronic acid is 4 mg whatever the CrCl band (the
    card says so). Otherwise a creatinine without the rest of Cockcroft-Gault leaves the renal
    dose unchecked: missing data is never a pass, the card names what is missing."""
    if o.hcm:
        return Decision(
            variant="hypercalcaemia",
            indicator="info",
            bindings={**o.base, "dose": "4 mg"},
            data=(*o.data, say("calcium", value=f.calcium.corrected, when=f.calcium.when)),
            refs=(o.draft.ref, *f.calcium.refs),
        )
    if f.renal.creatinine is not None and f.renal.crcl is None and o.drug == "zoledronic acid":
        return Decision(
            variant="crcl-unknown",
            indicator="warning",
            bindings=o.base,
            data=o.data,
            missing=f.renal.missing,
            refs=(o.draft.ref, *f.renal.refs),
        )
    return None


def _no_creatinine(o: _BisphosphonateOrder, f: PatientFacts, p: Parameters) -> Decision | None:
    """ASCO-BMA-2011/2017: serum creatinine before each dose; without a recent one, order it."""
    if f.renal.creatinine is not None:
        return None
    ordered = o.creatinine_ordered
    return Decision(
        variant="no-creatinine",
        indicator="warning",
        bindings=o.base,
        data=o.data + ordered,
        missing=(
            said_missing(
                say("missing-creatinine", days=p.lab_freshness_days),
                f.renal.creatinine_unread,
                f.as_of - timedelta(days=p.lab_freshness_days),
            ),
        ),
        refs=(o.draft.ref,),
        # A creatinine already ordered is named, not ordered twice (§3c D20).
        proposals=()
        if ordered
        else (Proposal(key="order-creatinine", actions=(Order(key="lab-creatinine"),)),),
    )


def _too_fast(o: _BisphosphonateOrder, f: PatientFacts, p: Parameters) -> Decision | None:
    """Zoledronic acid over no less than 15 minutes (Zometa label); pamidronate over at least
    2 hours (Aredia label): a shorter infusion on the draft is named."""
    minimum = (
        p.zoledronic_min_infusion_minutes
        if o.drug == "zoledronic acid"
        else p.pamidronate_min_infusion_minutes
    )
    minutes = o.draft.infusion_minutes
    if minutes is None or minutes >= minimum:
        return None
    return Decision(
        variant="infusion-time",
        indicator="warning",
        bindings={**o.base, "minimum": f"{minimum:g}"},
        data=(*o.data, say("infusion-time", minutes=minutes)),
        refs=(o.draft.ref,),
    )


def _given_monthly(f: PatientFacts) -> bool:
    """Doses recorded one by one (MedicationAdministration, no schedule): the last three of
    zoledronic acid given no more than 5 weeks apart."""
    days = sorted(
        e.start
        for e in f.meds.ever("BMA")
        if e.ingredient == "zoledronic acid"
        and e.record.resource_type == "MedicationAdministration"
        and e.start is not None
    )[-3:]
    return len(days) == 3 and all((b - a).days <= 35 for a, b in pairwise(days))


@rule(
    "R5",
    hooks=PATIENT_VIEW,
    variants=("interval",),
    valuesets=("disease-status", "status-not-progressed", "status-worsened"),
    ingredients=("zoledronic acid",),
    parameters=("zoledronic_window_days", "active_window_days", "new_treatment_gap_days"),
)
def r5_zoledronic_interval(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """Zoledronic acid every 3-4 weeks for ≥3 months with stable disease → 12-weekly is an option.

    ASCO-BMA-2017 lists zoledronic acid every 12 weeks or every 3-4 weeks. Information only; no
    rule ever stops a BMA, and denosumab every 12 weeks is never suggested.
    """
    zol = [e for e in f.meds.active_bma() if e.ingredient == "zoledronic acid"]
    monthly = [e for e in zol if any(d.every_weeks and d.every_weeks <= 5 for d in e.record.doses)]
    if not monthly and _given_monthly(f):
        monthly = zol
    # Counted from this treatment's start: adjuvant zoledronic acid years before is another.
    span = f.meds.treatment_start("zoledronic acid", p.new_treatment_gap_days)
    if not monthly or span is None or f.as_of - span[0] < timedelta(days=90):
        return []
    if f.latest_disease_status != "stable":
        return []
    return [
        Decision(
            variant="interval",
            indicator="info",
            data=(say("zoledronic-monthly-since", when=span[0]),),
            refs=tuple(e.ref for e in monthly),
        )
    ]
