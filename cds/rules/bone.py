"""R1-R5: bone-modifying agents, renal and calcium safety, dental review (all subtypes)."""

from __future__ import annotations

from datetime import timedelta

from cds.facts import Dated, PatientFacts
from cds.facts.medications import Exposure
from cds.facts.orders import DraftOrders
from cds.parameters import Parameters
from cds.rules import (
    ORDER_HOOKS,
    PATIENT_VIEW,
    Action,
    Decision,
    DeleteDraft,
    Indicator,
    NoteKey,
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

BISPHOSPHONATES = ("zoledronic acid", "pamidronate")
# Serum calcium with albumin, for the corrected value (F8); several rules suggest it.
ORDER_CALCIUM = Proposal(
    key="order-calcium", actions=(Order(key="lab-calcium"), Order(key="lab-albumin"))
)
# What the renal and calcium facts behind the bone rules read.
RENAL_VALUESETS = ("creatinine", "body-weight", "creatinine-clearance", "egfr", "dialysis")
CALCIUM_VALUESETS = ("calcium", "albumin")
BONE_VALUESETS = (
    "breast-cancer",
    "secondary-neoplasm",
    "regional-nodes",
    "bone-metastasis",
    "vertebral-metastasis",
    "vertebral-body-site",
    "bone-marrow-metastasis",
)
LAB_PARAMETERS = ("lab_freshness_days", "weight_freshness_days")
CALCIUM_PARAMETERS = ("hypocalcaemia_mg_dl", "hypercalcaemia_mg_dl", "lab_freshness_days")
BMA_PARAMETERS = ("active_window_days", "zoledronic_window_days", "request_active_max_days")
HCM_PARAMETERS = ("hypercalcaemia_of_malignancy_mg_dl", "hcm_creatinine_below_mg_dl")
# What every bone-modifying-agent suggestion may carry (R1; C2 for "replace with denosumab").
SUPPORT_ORDERS = ("dental-referral", "lab-creatinine", "lab-calcium", "lab-albumin")
SUPPORT_REGIMENS = ("calcium-vitamin-d",)


def has_bone_metastases(f: PatientFacts) -> bool:
    """F3 bone (including vertebral) or bone-marrow-only involvement, in metastatic disease."""
    return f.disease.bone.present or f.disease.bone_marrow_only.present


def renal_words(f: PatientFacts) -> str:
    r = f.renal
    if r.crcl is None:
        words = "Cockcroft-Gault creatinine clearance cannot be calculated"
        if r.missing:
            words += f" (missing: {'; '.join(r.missing)})"
        if r.egfr is not None:
            # eGFR is not creatinine clearance (C2): context only, labelled as such.
            words += (
                f"; eGFR {r.egfr.value:g} mL/min/1.73 m² on {on(r.egfr.when)} "
                "(context only: the dose table is by Cockcroft-Gault CrCl)"
            )
        return words
    if r.method == "cockcroft-gault":
        return f"CrCl {r.crcl:.1f} mL/min (Cockcroft-Gault: {r.basis})"
    return f"CrCl {r.crcl:.1f} mL/min (Cockcroft-Gault, as reported)"


def severe_renal(f: PatientFacts, p: Parameters) -> bool:
    """CrCl below the zoledronic-acid threshold, or dialysis (Zometa and Xgeva labels)."""
    return f.on_dialysis or (f.renal.crcl is not None and f.renal.crcl < p.crcl_not_recommended)


def no_recent_dental(f: PatientFacts, p: Parameters) -> bool:
    last = f.last_dental_evaluation()
    return last is None or f.as_of - last.when > timedelta(days=p.dental_lookback_days)


def dental_words(f: PatientFacts) -> str:
    last = f.last_dental_evaluation()
    return f"last dental evaluation {on(last.when)}" if last else "no dental evaluation on record"


def support_actions(f: PatientFacts, p: Parameters) -> tuple[Action, ...]:
    """Actions every BMA suggestion carries: calcium/vitamin D, dental referral, stale labs."""
    actions: list[Action] = []
    if not f.calcium.high:
        actions.append(RegimenOrder(key="calcium-vitamin-d"))
    if no_recent_dental(f, p):
        actions.append(Order(key="dental-referral"))
    if f.renal.creatinine is None:
        actions.append(Order(key="lab-creatinine"))
    if f.calcium.corrected is None:
        actions += [Order(key="lab-calcium"), Order(key="lab-albumin")]
    return tuple(actions)


def bma_options(f: PatientFacts, p: Parameters) -> tuple[tuple[Proposal, ...], tuple[NoteKey, ...]]:
    """R1 S1-S3 filtered by renal function, calcium and allergy; options never ranked (§0.3).

    A bisphosphonate dose is chosen from Cockcroft-Gault CrCl only; without it no dose band is
    pre-filled and the card says what is missing (C2). Zoledronic acid's two schedules are two
    choices, each orderable as written (C1).
    """
    support = support_actions(f, p)
    proposals: list[Proposal] = []
    notes: list[NoteKey] = []
    if prefill_withheld(f) is not None:
        return (), ()
    if "denosumab" in f.allergies:
        notes.append(NoteKey("denosumab-allergy"))
    else:
        if severe_renal(f, p):
            notes.append(NoteKey("denosumab-renal"))
        elif f.renal.crcl is None and f.renal.egfr and f.renal.egfr.value < p.crcl_not_recommended:
            notes.append(NoteKey("denosumab-renal-egfr"))
        proposals.append(
            Proposal(key="denosumab", actions=(RegimenOrder(key="denosumab"), *support))
        )
    hcm = hcm_dosing(f, p)
    if hcm:
        notes.append(NoteKey("hypercalcaemia-of-malignancy"))
    for drug, key in (("zoledronic acid", "zoledronic-acid"), ("pamidronate", "pamidronate")):
        # D2: in hypercalcaemia of malignancy zoledronic acid is 4 mg with no renal reduction
        # while creatinine is below 4.5 mg/dL: the MBC renal table does not apply.
        zol_hcm = hcm and drug == "zoledronic acid"
        if drug in f.allergies:
            notes.append(NoteKey(f"{key}-allergy"))
        elif severe_renal(f, p) and not zol_hcm:
            notes.append(NoteKey(f"{key}-renal-contraindicated"))
        elif f.renal.crcl is None and not zol_hcm:
            notes.append(NoteKey(f"{key}-renal-unknown"))
        elif drug == "pamidronate":
            proposals.append(
                Proposal(key="pamidronate", actions=(RegimenOrder(key="pamidronate"), *support))
            )
        else:
            full = p.zoledronic_dose_by_crcl[0].dose_mg
            dose = full if zol_hcm or f.renal.crcl is None else p.zoledronic_dose(f.renal.crcl)
            dose_text = f"{dose:g} mg" if dose is not None else None
            if dose is not None and dose < full:
                notes.append(NoteKey("zoledronic-acid-dose-reduced"))
            for schedule in ("zoledronic-acid-12-weekly", "zoledronic-acid-4-weekly"):
                proposals.append(
                    Proposal(
                        key=schedule,
                        actions=(RegimenOrder(key=schedule, dose=dose_text), *support),
                    )
                )
    return tuple(proposals), tuple(dict.fromkeys(notes))


def bma_intolerance(f: PatientFacts) -> tuple[Exposure, ...]:
    """Bone-modifying agents stopped because they were not tolerated (D5)."""
    return tuple(
        e for e in f.meds.exposures if e.med_class == "BMA" and e.stop_reason == "toxicity"
    )


def prefill_withheld(f: PatientFacts) -> str | None:
    """Why no bone-modifying agent may be pre-filled, or None (clinical-logic §3c D4, D5).

    Active medication-related osteonecrosis of the jaw, or an agent stopped as not tolerated:
    the decision belongs with the oral surgery/dental team and the patient (Xgeva label;
    MASCC/ISOO/ASCO 2019). Hypocalcaemia: every agent can lower calcium further, so calcium
    and vitamin D are corrected first (Xgeva and Zometa labels).
    """
    if f.disease.mronj.present:
        return "held-mronj"
    if bma_intolerance(f):
        return "held-intolerance"
    if f.calcium.low:
        return "held-hypocalcaemia"
    return None


def recent_invasive_dental(f: PatientFacts, p: Parameters) -> tuple[Dated, ...]:
    """Extractions and other invasive dental procedures in the socket-healing window (D6)."""
    return tuple(
        d
        for d in f.invasive_dental
        if timedelta(0) <= f.as_of - d.when <= timedelta(days=p.dental_healing_days)
    )


# The agent each R1 proposal offers, for a headline that names only what is offered (D22).
_AGENT_OF = {
    "denosumab": "denosumab",
    "zoledronic-acid-12-weekly": "zoledronic acid",
    "zoledronic-acid-4-weekly": "zoledronic acid",
    "pamidronate": "pamidronate",
}


def agents_offered(proposals: tuple[Proposal, ...]) -> str:
    """'denosumab, zoledronic acid or pamidronate', 'denosumab', ... in the proposals' order."""
    names = list(dict.fromkeys(_AGENT_OF[p.key] for p in proposals if p.key in _AGENT_OF))
    if not names:
        return "a bone-modifying agent (none can be pre-filled: see Notes)"
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def bma_indicated(f: PatientFacts) -> bool:
    """R1 population: metastatic bone (or marrow) disease, no oncologic BMA, no recorded decision
    not to treat, and at least one agent the patient is not allergic to."""
    if not f.disease.metastatic.present or not has_bone_metastases(f):
        return False
    if f.meds.active_bma() or f.meds.declined_bma():
        return False
    return not all(b in f.allergies for b in ("denosumab", "zoledronic acid", "pamidronate"))


def r1_offers_dental_referral(f: PatientFacts, p: Parameters) -> bool:
    """R1 fires and its suggestions already carry the dental referral (C9: not said twice);
    with active MRONJ the referral is R1's only suggestion (D5)."""
    if not bma_indicated(f) or not no_recent_dental(f, p):
        return False
    return bool(bma_options(f, p)[0]) or prefill_withheld(f) == "held-mronj"


def bone_data(f: PatientFacts) -> tuple[str, ...]:
    d = f.disease
    lines = []
    if d.bone.present:
        lines.append(f"Bone metastasis recorded {on(d.bone.since)}")
    if d.vertebral.present:
        lines.append(f"Vertebral involvement recorded {on(d.vertebral.since)}")
    if d.bone_marrow_only.present:
        lines.append(f"Bone-marrow metastasis (C79.52) recorded {on(d.bone_marrow_only.since)}")
    lines.append(f"Renal function: {renal_words(f)}")
    if f.calcium.corrected is not None:
        kind = "corrected" if f.calcium.albumin_corrected else "measured, not albumin-corrected"
        lines.append(f"Calcium {f.calcium.corrected:g} mg/dL ({kind}) on {on(f.calcium.when)}")
    lines.append(dental_words(f).capitalize())
    return tuple(lines)


def _missing(f: PatientFacts) -> tuple[str, ...]:
    out = list(f.renal.missing) if f.renal.crcl is None else []
    if f.calcium.corrected is None:
        out.append("serum calcium (and albumin) within the freshness window")
    return tuple(out)


@rule(
    "R1",
    hooks=PATIENT_VIEW,
    bindings=("agents",),
    variants=(
        "start",
        "marrow-only",
        "osteoporosis-dose",
        "held-mronj",
        "held-intolerance",
        "held-hypocalcaemia",
    ),
    valuesets=(
        *BONE_VALUESETS,
        *RENAL_VALUESETS,
        *CALCIUM_VALUESETS,
        "dental-evaluation",
        "mronj",
        "invasive-dental",
        "stop-toxicity",
    ),
    ingredients=("denosumab", "zoledronic acid", "pamidronate", "calcium", "vitamin d"),
    parameters=(
        *LAB_PARAMETERS,
        *CALCIUM_PARAMETERS,
        *BMA_PARAMETERS,
        "dental_lookback_days",
        "crcl_not_recommended",
        "zoledronic_dose_by_crcl",
        "creatinine_rise_normal",
        "creatinine_rise_abnormal",
        "dental_healing_days",
        *HCM_PARAMETERS,
    ),
    orders=SUPPORT_ORDERS,
    suggestions=("dental-referral",),
    regimens=(
        "denosumab",
        "zoledronic-acid-12-weekly",
        "zoledronic-acid-4-weekly",
        "pamidronate",
        *SUPPORT_REGIMENS,
    ),
    notes=(
        "denosumab-allergy",
        "denosumab-renal",
        "denosumab-renal-egfr",
        "zoledronic-acid-allergy",
        "pamidronate-allergy",
        "zoledronic-acid-renal-contraindicated",
        "pamidronate-renal-contraindicated",
        "zoledronic-acid-dose-reduced",
        "zoledronic-acid-renal-unknown",
        "pamidronate-renal-unknown",
        "hypercalcaemia-of-malignancy",
        "dental-healing",
    ),
)
def r1_start_bone_agent(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """Bone metastases without an oncologic bone-modifying agent → start one.

    ASCO-BMA-2017: patients with breast cancer and evidence of bone metastases should be treated
    with a BMA (Strong); denosumab 120 mg SC q4w, zoledronic acid 4 mg IV q12w or q3-4w, or
    pamidronate 90 mg IV q3-4w; one BMA is not recommended over another. Zometa label renal table
    (dose by Cockcroft-Gault CrCl; not recommended below 30 mL/min; no band without CG, C2);
    Xgeva label (correct hypocalcaemia first). Bone-marrow-only involvement (C79.52) is
    'consider' (info). An osteoporosis-dose agent (denosumab 60 mg, zoledronic acid 5 mg) does
    not count (clinical-logic §0.7).
    """
    if not bma_indicated(f):
        return []
    proposals, notes = bma_options(f, p)
    osteo = f.meds.active_osteo_bma()
    withheld = prefill_withheld(f)
    indicator: Indicator
    if withheld is not None:
        variant, indicator = withheld, "warning"
    elif osteo:
        variant, indicator = "osteoporosis-dose", "warning"
    elif f.disease.bone.present:
        variant, indicator = "start", "warning"
    else:
        variant, indicator = "marrow-only", "info"
    data = list(bone_data(f))
    data += [f"Osteoporosis-dose agent: {e.ingredient} ({e.ref})" for e in osteo]
    refs = f.disease.bone.refs + f.disease.bone_marrow_only.refs + tuple(e.ref for e in osteo)
    if withheld == "held-mronj":
        data.append(f"Osteonecrosis of the jaw recorded {on(f.disease.mronj.since)}")
        refs += f.disease.mronj.refs
        # The oral surgery/dental team decides with the oncologist (MASCC/ISOO/ASCO 2019).
        proposals = (Proposal(key="dental-referral", actions=(Order(key="dental-referral"),)),)
    stopped = bma_intolerance(f)
    data += [f"{e.ingredient} stopped as not tolerated {on(e.last)} ({e.ref})" for e in stopped]
    refs += tuple(e.ref for e in stopped)
    healing = recent_invasive_dental(f, p)
    if healing and proposals:
        # D6: the socket heals first (AAOMS 2022), if the clinical situation allows.
        notes = (*notes, NoteKey("dental-healing"))
        data += [f"Invasive dental procedure {on(d.when)} ({d.ref})" for d in healing]
        refs += tuple(d.ref for d in healing)
    return [
        Decision(
            variant=variant,
            indicator=indicator,
            bindings={"agents": agents_offered(proposals)},
            data=tuple(data),
            missing=_missing(f),
            note_keys=notes,
            refs=refs,
            proposals=proposals,
        )
    ]


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
    "R3a",
    hooks=ORDER_HOOKS,
    variants=("hypocalcaemia", "calcium-unknown", "renal-monitor"),
    valuesets=(*RENAL_VALUESETS, *CALCIUM_VALUESETS),
    ingredients=("denosumab",),
    parameters=(*LAB_PARAMETERS, *CALCIUM_PARAMETERS, "crcl_not_recommended"),
    orders=("lab-calcium", "lab-albumin"),
    suggestions=("order-calcium",),
    notes=("calcium-uncorrected",),
)
def r3a_denosumab_calcium(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """Denosumab order with low corrected calcium → correct it first; severe renal → monitor.

    Xgeva safety labelling change (FDA, 2013): pre-existing hypocalcaemia must be corrected before
    starting Xgeva. Label (June 2014): hypocalcaemia risk is highest with CrCl <30 mL/min or
    dialysis; monitor calcium.
    """
    out: list[Decision] = []
    for draft in drafts.with_ingredient("denosumab"):
        data = [f"Draft order: denosumab ({draft.ref})"]
        if f.calcium.low:
            data.append(f"Calcium {f.calcium.corrected:g} mg/dL on {on(f.calcium.when)}")
            out.append(
                Decision(
                    variant="hypocalcaemia",
                    indicator="critical",
                    data=tuple(data),
                    refs=(draft.ref, *f.calcium.refs),
                    note_keys=()
                    if f.calcium.albumin_corrected
                    else (NoteKey("calcium-uncorrected"),),
                )
            )
        elif f.calcium.corrected is None:
            out.append(
                Decision(
                    variant="calcium-unknown",
                    indicator="warning",
                    data=tuple(data),
                    missing=(f"serum calcium within {p.lab_freshness_days} days",),
                    refs=(draft.ref,),
                    proposals=(ORDER_CALCIUM,),
                )
            )
        elif severe_renal(f, p):
            data.append(f"Renal function: {renal_words(f)}")
            out.append(
                Decision(
                    variant="renal-monitor",
                    indicator="warning",
                    data=tuple(data),
                    refs=(draft.ref, *f.renal.refs),
                    proposals=(ORDER_CALCIUM,),
                )
            )
    return out


@rule(
    "R3b",
    hooks=PATIENT_VIEW,
    variants=("supplement",),
    valuesets=CALCIUM_VALUESETS,
    ingredients=("denosumab", "zoledronic acid", "pamidronate", "calcium", "vitamin d"),
    parameters=(*CALCIUM_PARAMETERS, *BMA_PARAMETERS, "bma_recent_start_days"),
    regimens=SUPPORT_REGIMENS,
)
def r3b_calcium_vitamin_d(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """A BMA started in the last 30 days (or calcium low) without calcium or vitamin D →
    supplement, unless hypercalcaemic; not at every chart open (clinical-logic §3c D10).

    Zometa label: oral calcium 500 mg and a multivitamin with 400 IU vitamin D daily. Xgeva label:
    calcium and vitamin D as necessary, unless hypercalcaemia is present. Seed 001.
    RxNorm codes for calcium carbonate and cholecalciferol are UNVERIFIED: sent as text only.
    """
    bma = f.meds.active_bma()
    if not bma or f.meds.active("CALCIUM", "VITD") or f.calcium.high:
        return []
    # D10: over-the-counter supplements are rarely recorded, so this is not a card at every
    # chart open: only around the start of an agent, or when calcium is low.
    started = [
        e
        for e in bma
        if e.start is not None and f.as_of - e.start <= timedelta(days=p.bma_recent_start_days)
    ]
    if not started and not f.calcium.low:
        return []
    return [
        Decision(
            variant="supplement",
            indicator="info",
            data=tuple(f"On {e.ingredient} ({e.ref})" for e in bma),
            missing=()
            if f.calcium.corrected is not None
            else ("a recent serum calcium: check it is not high before supplementing",),
            refs=tuple(e.ref for e in bma),
            proposals=(
                Proposal(key="calcium-vitamin-d", actions=(RegimenOrder(key="calcium-vitamin-d"),)),
            ),
        )
    ]


@rule(
    "R3c",
    hooks=PATIENT_VIEW,
    variants=("check-calcium",),
    valuesets=CALCIUM_VALUESETS,
    ingredients=("denosumab",),
    parameters=("calcium_check_days", *BMA_PARAMETERS),
    orders=("lab-calcium", "lab-albumin"),
    suggestions=("order-calcium",),
)
def r3c_denosumab_calcium_check(
    f: PatientFacts, drafts: DraftOrders, p: Parameters
) -> list[Decision]:
    """On denosumab with no calcium result in 35 days → check serum calcium (Xgeva label)."""
    on_denosumab = [e for e in f.meds.active_bma() if e.ingredient == "denosumab"]
    last = f.calcium.last_result
    if not on_denosumab or (
        last is not None and f.as_of - last <= timedelta(days=p.calcium_check_days)
    ):
        return []
    return [
        Decision(
            variant="check-calcium",
            indicator="info",
            data=tuple(f"On denosumab ({e.ref})" for e in on_denosumab),
            missing=(f"serum calcium within {p.calcium_check_days} days",),
            refs=tuple(e.ref for e in on_denosumab),
            proposals=(ORDER_CALCIUM,),
        )
    ]


@rule(
    "R4a",
    hooks=PATIENT_VIEW,
    variants=("dental-review",),
    valuesets=(*BONE_VALUESETS, "dental-evaluation"),
    ingredients=("denosumab", "zoledronic acid", "pamidronate"),
    parameters=("dental_lookback_days", "bma_recent_start_days", *BMA_PARAMETERS),
    orders=("dental-referral",),
    suggestions=("dental-referral",),
)
def r4a_dental_review(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """A BMA is indicated or just started, and no dental evaluation in 6 months → refer.

    ASCO-BMA-2017/2011: all patients should have a dental examination and preventive dentistry
    before using a BMA. Xgeva label: dental examination before treatment; avoid invasive dental
    procedures during it. MRONJ-2019. The 6-month look-back is a configurable default. When the
    bone-modifying agent card already carries the dental referral, it is not repeated (C9).
    """
    if not no_recent_dental(f, p) or r1_offers_dental_referral(f, p):
        return []
    needs_bma = bma_indicated(f)
    recent = [
        e
        for e in f.meds.active_bma()
        if e.start is not None and f.as_of - e.start <= timedelta(days=p.bma_recent_start_days)
    ]
    if not needs_bma and not recent:
        return []
    data = [dental_words(f).capitalize()]
    data += [f"{e.ingredient} started {on(e.start)} ({e.ref})" for e in recent]
    if needs_bma:
        data.append("A bone-modifying agent is indicated (see the bone-modifying agent card)")
    return [
        Decision(
            variant="dental-review",
            indicator="warning",
            data=tuple(data),
            refs=tuple(e.ref for e in recent),
            proposals=(Proposal(key="dental-referral", actions=(Order(key="dental-referral"),)),),
        )
    ]


@rule(
    "R4b",
    hooks=ORDER_HOOKS,
    variants=("dental-before-bma", "socket-healing"),
    valuesets=("dental-evaluation", "invasive-dental"),
    ingredients=("denosumab", "zoledronic acid", "pamidronate"),
    parameters=("dental_lookback_days", "dental_healing_days"),
    orders=("dental-referral",),
    suggestions=("dental-referral",),
)
def r4b_dental_before_order(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """A first BMA is being ordered with no dental evaluation in 6 months → refer; never blocks.
    After an extraction or other invasive dental procedure in the last 21 days → wait for the
    socket to heal if the clinical situation allows (AAOMS 2022; §3c D6).

    ASCO-BMA-2017; Xgeva label; MRONJ-2019 (the oncologist may start without delay when needed).
    """
    orders = drafts.with_class("BMA")
    if not orders or f.meds.ever("BMA"):
        return []
    healing = recent_invasive_dental(f, p)
    if healing:
        return [
            Decision(
                variant="socket-healing",
                indicator="warning",
                data=(
                    *(f"Invasive dental procedure {on(d.when)} ({d.ref})" for d in healing),
                    *(f"Draft order: {o.ref}" for o in orders),
                ),
                refs=(*(d.ref for d in healing), *(o.ref for o in orders)),
            )
        ]
    if not no_recent_dental(f, p):
        return []
    return [
        Decision(
            variant="dental-before-bma",
            indicator="warning",
            data=(dental_words(f).capitalize(), *(f"Draft order: {o.ref}" for o in orders)),
            refs=tuple(o.ref for o in orders),
            proposals=(Proposal(key="dental-referral", actions=(Order(key="dental-referral"),)),),
        )
    ]


@rule(
    "R4c",
    hooks=ORDER_HOOKS,
    variants=("invasive-dental",),
    valuesets=("invasive-dental",),
    ingredients=("denosumab", "zoledronic acid", "pamidronate"),
    parameters=BMA_PARAMETERS,
)
def r4c_invasive_dental(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """On a BMA and an extraction or implant is being ordered → MRONJ risk; coordinate.

    Xgeva label: avoid invasive dental procedures during treatment. MRONJ-2019. The procedure
    code set is UNVERIFIED, so the draft is recognised by dental words (value set
    invasive-dental): a cataract extraction or a breast implant never matches (C9).
    """
    if not f.meds.active("BMA"):
        return []
    hits = [s for s in drafts.services if s.invasive_dental]
    if not hits:
        return []
    return [
        Decision(
            variant="invasive-dental",
            indicator="warning",
            data=tuple(f"Draft order: {s.ref}" for s in hits),
            refs=tuple(s.ref for s in hits),
        )
    ]


@rule(
    "R4d",
    hooks=PATIENT_VIEW,
    variants=("mronj",),
    valuesets=("mronj",),
    ingredients=("denosumab", "zoledronic acid", "pamidronate"),
    parameters=BMA_PARAMETERS,
)
def r4d_mronj(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """Osteonecrosis of the jaw recorded → review BMA continuation with dental/oral surgery.

    Xgeva label: temporary interruption should be considered on individual risk/benefit.
    MRONJ codes are UNVERIFIED: recognised by text.
    """
    if not f.disease.mronj.present:
        return []
    on_bma = f.meds.active("BMA")
    return [
        Decision(
            variant="mronj",
            indicator="warning",
            data=(
                f"Osteonecrosis of the jaw recorded {on(f.disease.mronj.since)}",
                *(f"On {e.ingredient} ({e.ref})" for e in on_bma),
            ),
            refs=f.disease.mronj.refs + tuple(e.ref for e in on_bma),
        )
    ]


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
