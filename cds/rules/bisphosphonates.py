"""R2 and R5: zoledronic acid and pamidronate orders (renal dosing, creatinine rise, infusion
time) and the zoledronic acid interval."""

from __future__ import annotations

from datetime import timedelta

from cds.facts import PatientFacts
from cds.facts.orders import DraftOrders
from cds.parameters import Parameters
from cds.rules import (
    ORDER_HOOKS,
    PATIENT_VIEW,
    Decision,
    DeleteDraft,
    Order,
    Proposal,
    RegimenOrder,
    on,
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
    renal_words,
    severe_renal,
    support_actions,
)


def _creatinine_rise(f: PatientFacts, p: Parameters, drug: str) -> tuple[str, ...] | None:
    """Zometa label renal deterioration on treatment: a rise of ≥0.5 mg/dL from a normal
    baseline, or ≥1.0 mg/dL from an abnormal one. The baseline is the creatinine before the
    first dose of the course. Returns the data lines when it applies."""
    latest = f.renal.creatinine
    if latest is None:
        return None
    starts = [e.start for e in f.meds.ever("BMA") if e.ingredient == drug and e.start]
    baseline = f.renal.baseline_before(min(starts) if starts else None)
    if baseline is None or baseline.ref == latest.ref:
        return None
    limit = (
        p.creatinine_rise_abnormal
        if baseline.value > p.creatinine_abnormal_baseline
        else p.creatinine_rise_normal
    )
    if latest.value - baseline.value < limit:
        return None
    return (
        f"Creatinine {latest.value:.2f} mg/dL on {on(latest.when)}; "
        f"baseline {baseline.value:.2f} mg/dL on {on(baseline.when)}",
        baseline.ref,
    )


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
        drug = "zoledronic acid" if draft.has("zoledronic acid") else "pamidronate"
        base = {
            "drug": drug,
            "dose": f"{draft.dose_mg:g} mg" if draft.dose_mg else "as ordered",
            "minimum": "",
        }
        data = [f"Draft order: {drug} ({draft.ref})", f"Renal function: {renal_words(f)}"]
        if draft.dose_note:
            data.append(f"Draft dose unknown: {draft.dose_note}")
        # D2: hypercalcaemia of malignancy - zoledronic acid 4 mg, no renal reduction.
        hcm = drug == "zoledronic acid" and hcm_dosing(f, p)
        if severe_renal(f, p) and not hcm:
            out.append(
                Decision(
                    variant="renal-contraindicated",
                    indicator="critical",
                    bindings=base,
                    data=tuple(data),
                    refs=(draft.ref, *f.renal.refs),
                    notes=("Dialysis is recorded.",) if f.on_dialysis else (),
                    proposals=(
                        Proposal(
                            key="replace-with-denosumab",
                            # Create before delete: a client that applies actions in order
                            # (the CDS Hooks Sandbox applies only the first) never ends with
                            # an empty order (§3c D19).
                            actions=(
                                RegimenOrder(key="denosumab"),
                                *support_actions(f, p),
                                DeleteDraft(draft_ref=draft.ref),
                            ),
                        ),
                    ),
                )
            )
            continue
        rise = _creatinine_rise(f, p, drug)
        crcl = f.renal.crcl
        if rise is not None:
            # Renal deterioration on treatment: withhold, and resume at the same dose - never
            # a dose reduction in the same answer (C2).
            out.append(
                Decision(
                    variant="creatinine-rise",
                    indicator="warning",
                    bindings=base,
                    data=(*data, rise[0]),
                    refs=(draft.ref, *f.renal.refs, rise[1]),
                )
            )
        elif (dose := renal_band_dose(f, p, drug)) is not None:
            if draft.dose_mg is None:
                out.append(
                    Decision(
                        variant="dose-unknown",
                        indicator="warning",
                        bindings={**base, "dose": f"{dose:g} mg"},
                        data=tuple(data),
                        refs=(draft.ref, *f.renal.refs),
                    )
                )
            elif draft.dose_mg > dose and not unit_error(draft, dose, p):
                # A unit error (4 g) is R2b's critical card, not a band reduction.
                out.append(
                    Decision(
                        variant="dose-adjust",
                        indicator="warning",
                        bindings={**base, "dose": f"{dose:g} mg"},
                        data=tuple(data),
                        refs=(draft.ref, *f.renal.refs),
                        proposals=(
                            Proposal(
                                key="adjust-dose",
                                actions=(dose_update(draft, drug, dose, p),),
                                label_bindings={"dose": f"{dose:g} mg"},
                            ),
                        ),
                    )
                )
        if hcm:
            out.append(
                Decision(
                    variant="hypercalcaemia",
                    indicator="info",
                    bindings={**base, "dose": "4 mg"},
                    data=(
                        *data,
                        f"Calcium {f.calcium.corrected:g} mg/dL on {on(f.calcium.when)}",
                    ),
                    refs=(draft.ref, *f.calcium.refs),
                )
            )
        elif f.renal.creatinine is not None and crcl is None and drug == "zoledronic acid":
            # Missing data is never a pass: a creatinine without the rest of Cockcroft-Gault
            # leaves the renal dose unchecked, and the card says what is missing (no band).
            out.append(
                Decision(
                    variant="crcl-unknown",
                    indicator="warning",
                    bindings=base,
                    data=tuple(data),
                    missing=f.renal.missing,
                    refs=(draft.ref, *f.renal.refs),
                )
            )
        if f.renal.creatinine is None:
            out.append(
                Decision(
                    variant="no-creatinine",
                    indicator="warning",
                    bindings=base,
                    data=tuple(data),
                    missing=(f"serum creatinine within {p.lab_freshness_days} days",),
                    refs=(draft.ref,),
                    proposals=(
                        Proposal(key="order-creatinine", actions=(Order(key="lab-creatinine"),)),
                    ),
                )
            )
        minimum = (
            p.zoledronic_min_infusion_minutes
            if drug == "zoledronic acid"
            else p.pamidronate_min_infusion_minutes
        )
        if draft.infusion_minutes is not None and draft.infusion_minutes < minimum:
            out.append(
                Decision(
                    variant="infusion-time",
                    indicator="warning",
                    bindings={**base, "minimum": f"{minimum:g}"},
                    data=(*data, f"Infusion time on the order: {draft.infusion_minutes:g} minutes"),
                    refs=(draft.ref,),
                )
            )
    return out


@rule(
    "R5",
    hooks=PATIENT_VIEW,
    variants=("interval",),
    valuesets=("disease-status", "status-not-progressed", "status-worsened"),
    ingredients=("zoledronic acid",),
    parameters=("zoledronic_window_days", "active_window_days", "request_active_max_days"),
)
def r5_zoledronic_interval(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """Zoledronic acid every 3-4 weeks for ≥3 months with stable disease → 12-weekly is an option.

    ASCO-BMA-2017 lists zoledronic acid every 12 weeks or every 3-4 weeks. Information only; no
    rule ever stops a BMA, and denosumab every 12 weeks is never suggested.
    """
    zol = [e for e in f.meds.active_bma() if e.ingredient == "zoledronic acid"]
    monthly = [e for e in zol if any(d.every_weeks and d.every_weeks <= 5 for d in e.record.doses)]
    starts = [e.start for e in f.meds.ever("BMA") if e.ingredient == "zoledronic acid" and e.start]
    if not monthly or not starts or f.as_of - min(starts) < timedelta(days=90):
        return []
    if f.latest_disease_status != "stable":
        return []
    return [
        Decision(
            variant="interval",
            indicator="info",
            data=(f"Zoledronic acid since {on(min(starts))}, every 3-4 weeks",),
            refs=tuple(e.ref for e in monthly),
        )
    ]
