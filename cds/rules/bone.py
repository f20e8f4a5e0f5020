"""R1: start a bone-modifying agent; and what the bone rules share (R2-R5 in bisphosphonates,
bone_calcium and dental): bone metastases, renal and dental lines, dental timing, the agents
offered."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from cds.facts import Dated, PatientFacts, latest_within
from cds.facts.days import within
from cds.facts.labs import said_missing
from cds.facts.medications import Exposure
from cds.facts.orders import DraftOrders
from cds.parameters import Parameters
from cds.rules import (
    PATIENT_VIEW,
    Action,
    Decision,
    Indicator,
    NoteKey,
    Order,
    Proposal,
    RegimenOrder,
    rule,
)
from cds.rules.bma_orders import (
    hcm_dosing,
)
from cds.rules.in_use import unknown_status_line
from cds.rules.lab_orders import CALCIUM_TESTS, lab_actions, lab_lines
from cds.said import Said, say

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
LAB_PARAMETERS = (
    "lab_freshness_days",
    "weight_freshness_days",
    "lab_read_ranges",
    "clock_lead_days",
)
CALCIUM_PARAMETERS = (
    "hypocalcaemia_mg_dl",
    "hypercalcaemia_mg_dl",
    "lab_freshness_days",
    "clock_lead_days",
)
BMA_PARAMETERS = (
    "active_window_days",
    "zoledronic_window_days",
    "clock_lead_days",
)
HCM_PARAMETERS = ("hypercalcaemia_of_malignancy_mg_dl", "hcm_creatinine_below_mg_dl")
# What every bone-modifying-agent suggestion may carry (R1; C2 for "replace with denosumab").
SUPPORT_ORDERS = ("dental-referral", "lab-creatinine", "lab-calcium", "lab-albumin")
SUPPORT_REGIMENS = ("calcium-vitamin-d",)


def has_bone_metastases(f: PatientFacts) -> bool:
    """F3 bone (including vertebral) or bone-marrow-only involvement, in metastatic disease."""
    return f.disease.bone.present or f.disease.bone_marrow_only.present


def renal_line(f: PatientFacts) -> Said:
    """The renal function a bone or capecitabine card shows: the Cockcroft-Gault CrCl and what
    it was calculated from, or why it cannot be, with the eGFR as context only."""
    r = f.renal
    if r.crcl is None:
        # eGFR is not creatinine clearance (C2): context only, labelled as such.
        egfr = say("egfr-context", value=r.egfr.value, when=r.egfr.when) if r.egfr else ""
        missing = say("crcl-missing", missing=r.missing) if r.missing else ""
        renal = say("crcl-not-calculable", missing=missing, egfr=egfr)
    elif r.method == "cockcroft-gault":
        renal = say("crcl-calculated", crcl=r.crcl, basis=r.basis)
    else:
        renal = say("crcl-reported", crcl=r.crcl)
    return say("renal-function", renal=renal)


def renal_below(f: PatientFacts, crcl: float) -> bool:
    """Cockcroft-Gault CrCl below `crcl`, or dialysis; an unknown CrCl is never taken for it."""
    return f.on_dialysis or (f.renal.crcl is not None and f.renal.crcl < crcl)


def severe_renal(f: PatientFacts, p: Parameters) -> bool:
    """CrCl below the zoledronic-acid threshold, or dialysis (Zometa and Xgeva labels)."""
    return renal_below(f, p.crcl_not_recommended)


def no_recent_dental(f: PatientFacts, p: Parameters) -> bool:
    last = f.last_dental_evaluation()
    return last is None or f.as_of - last.when > timedelta(days=p.dental_lookback_days)


def dental_referral_pending(f: PatientFacts, p: Parameters) -> Dated | None:
    """A dental referral ordered within the look-back and not yet done: the referral the cards
    suggest is on record, so it is not suggested again (§3c D20: the card stops once the
    record shows it; suggested at every chart open, each bone agent option carried one more)."""
    return latest_within(f.dental_referrals, f.as_of, p.dental_lookback_days)


def needs_dental_referral(f: PatientFacts, p: Parameters) -> bool:
    """No dental evaluation in the look-back, and none ordered in it either (R1, R4a, R4b)."""
    return no_recent_dental(f, p) and dental_referral_pending(f, p) is None


def dental_lines(f: PatientFacts, p: Parameters) -> tuple[Said, ...]:
    last = f.last_dental_evaluation()
    lines = [say("dental-last", when=last.when) if last else say("dental-none")]
    if no_recent_dental(f, p) and (ordered := dental_referral_pending(f, p)) is not None:
        lines.append(say("dental-referral-ordered", when=ordered.when, ref=ordered.ref))
    return tuple(lines)


def support_actions(
    f: PatientFacts, p: Parameters, drafts: DraftOrders | None = None
) -> tuple[Action, ...]:
    """Actions every BMA suggestion carries: calcium/vitamin D (unless hypercalcaemic, or
    already taken or being ordered: accepted once, never suggested again), dental referral,
    stale labs."""
    actions: list[Action] = []
    supplied = f.meds.active("CALCIUM", "VITD") or (
        drafts is not None and drafts.any_with_class("CALCIUM", "VITD")
    )
    if not f.calcium.high and not supplied:
        actions.append(RegimenOrder(key="calcium-vitamin-d"))
    if needs_dental_referral(f, p):
        actions.append(Order(key="dental-referral"))
    actions += lab_actions(f, _missing_labs(f), p.lab_freshness_days, drafts)
    return tuple(actions)


def _missing_labs(f: PatientFacts) -> tuple[str, ...]:
    """The lab tests a bone agent needs that have no current result (orders.yaml keys)."""
    return (("lab-creatinine",) if f.renal.creatinine is None else ()) + (
        CALCIUM_TESTS if f.calcium.corrected is None else ()
    )


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
    prohibited = prohibited_agents(f)
    if "denosumab" in f.allergies:
        notes.append(NoteKey("denosumab-allergy"))
    elif "denosumab" in prohibited:
        notes.append(NoteKey("denosumab-prohibited"))
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
        elif drug in prohibited:
            notes.append(NoteKey(f"{key}-prohibited"))
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


def not_tolerated_lines(stopped: Iterable[Exposure]) -> list[Said]:
    """Each bone agent stopped as not tolerated, with its last date and record (D5)."""
    return [
        say("bma-not-tolerated", drug=e.ingredient, when=e.last_shown, ref=e.ref) for e in stopped
    ]


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
        if within(d.when, f.as_of, p.dental_healing_days, p.clock_lead_days)
    )


# The agent each R1 proposal offers, for a headline that names only what is offered (D22).
_AGENT_OF = {
    "denosumab": "denosumab",
    "zoledronic-acid-12-weekly": "zoledronic acid",
    "zoledronic-acid-4-weekly": "zoledronic acid",
    "pamidronate": "pamidronate",
}


def bma_treatment_going_on(f: PatientFacts, p: Parameters, *, osteo: bool = False) -> bool:
    """A bone agent at an oncologic (or unknown) dose in use, given within
    `new_treatment_gap_days`, or given on no known day: a bone agent ordered now continues that
    treatment rather than beginning one (adjuvant zoledronic acid ended long before is not it;
    nor, unless `osteo`, an osteoporosis dose) - R3b, R4b."""
    return any(
        (osteo or e.bma_dose != "osteo")
        and (e.active or e.last is None or (f.as_of - e.last).days <= p.new_treatment_gap_days)
        for e in f.meds.ever("BMA")
    )


def recently_started(f: PatientFacts, p: Parameters) -> list[tuple[Exposure, date]]:
    """Active bone agents whose course began in the last `bma_recent_start_days` (R3b, R4a),
    each with the day its course began (its first dose, not its latest infusion)."""
    out = []
    for e in f.meds.active_bma():
        began = f.meds.course_start(e)
        if began is not None and f.as_of - began <= timedelta(days=p.bma_recent_start_days):
            out.append((e, began))
    return out


def agents_offered(proposals: tuple[Proposal, ...]) -> str | Said:
    """'denosumab, zoledronic acid or pamidronate', 'denosumab', ... in the proposals' order."""
    names = list(dict.fromkeys(_AGENT_OF[p.key] for p in proposals if p.key in _AGENT_OF))
    if not names:
        return say("no-agent-prefilled")
    if len(names) == 1:
        return names[0]
    return say("agents-either", agents=", ".join(names[:-1]), last=names[-1])


def prohibited_agents(f: PatientFacts) -> frozenset[str]:
    """Bone agents under an order not to give them (doNotPerform), still in force: the
    clinician's decision about that agent, respected as an allergy is."""
    return frozenset(e.ingredient for e in f.meds.prohibitions() if e.med_class == "BMA")


def bma_indicated(f: PatientFacts) -> bool:
    """R1 population: metastatic bone (or marrow) disease, no oncologic BMA, no recorded decision
    not to treat, and at least one agent the patient is neither allergic to nor under an order
    not to give."""
    if not f.disease.metastatic.present or not has_bone_metastases(f):
        return False
    if f.meds.active_bma() or f.meds.declined_bma():
        return False
    blocked = f.allergies | prohibited_agents(f)
    return not all(b in blocked for b in ("denosumab", "zoledronic acid", "pamidronate"))


def r1_offers_dental_referral(f: PatientFacts, p: Parameters) -> bool:
    """R1 fires and its suggestions already carry the dental referral (C9: not said twice);
    with active MRONJ the referral is R1's only suggestion (D5)."""
    if not bma_indicated(f) or not needs_dental_referral(f, p):
        return False
    return bool(bma_options(f, p)[0]) or prefill_withheld(f) == "held-mronj"


def bone_data(f: PatientFacts, p: Parameters) -> tuple[Said, ...]:
    d = f.disease
    lines = []
    if d.bone.present:
        lines.append(say("bone-metastasis", when=d.bone.since))
    if d.vertebral.present:
        lines.append(say("vertebral-involvement", when=d.vertebral.since))
    if d.bone_marrow_only.present:
        lines.append(say("bone-marrow-metastasis", when=d.bone_marrow_only.since))
    lines.append(renal_line(f))
    if f.calcium.corrected is not None:
        value, when = f.calcium.corrected, f.calcium.when
        if f.calcium.albumin_corrected:
            lines.append(say("calcium-corrected", value=value, when=when))
        else:
            lines.append(say("calcium-measured", value=value, when=when))
    lines += dental_lines(f, p)
    lines += lab_lines(f, _missing_labs(f), p.lab_freshness_days)
    return tuple(lines)


def _missing(f: PatientFacts, p: Parameters) -> tuple[Said, ...]:
    out = list(f.renal.missing) if f.renal.crcl is None else []
    if f.calcium.corrected is None:
        since = f.as_of - timedelta(days=p.lab_freshness_days)
        out.append(said_missing(say("missing-calcium-fresh"), f.calcium.unread, since))
    return tuple(out)


def _other_bma_records(
    f: PatientFacts, named: tuple[str, ...]
) -> tuple[list[Said], tuple[str, ...]]:
    """R1's lines for orders not to give a bone agent, its records of unknown status (so the card
    never says 'without' in silence) and its last course, unless `named`: why it stopped."""
    forbidden = [e for e in f.meds.prohibitions() if e.med_class == "BMA"]
    others = list(f.meds.of_unknown_status("BMA"))
    said = [say("order-not-to-give", drug=e.ingredient, when=e.start, ref=e.ref) for e in forbidden]
    said += [unknown_status_line(e) for e in others]
    last = f.meds.last_recorded("BMA")
    if last is not None and last.ref not in {*named, *(e.ref for e in others)}:
        said.append(
            say("bma-last-recorded", drug=last.ingredient, when=last.last_shown, ref=last.ref)
        )
        others.append(last)
    return said, tuple(e.ref for e in (*forbidden, *others))


def _held_for_mronj(f: PatientFacts, p: Parameters) -> tuple[tuple[Proposal, ...], list[Said]]:
    """R1 held for active MRONJ: what it proposes and says. The oral surgery/dental team decides
    with the oncologist (MASCC/ISOO/ASCO 2019); a referral already ordered is named instead of
    proposed (D20)."""
    data = [say("mronj", when=f.disease.mronj.since)]
    referred = dental_referral_pending(f, p)
    if referred is None:
        return (Proposal(key="dental-referral", actions=(Order(key="dental-referral"),)),), data
    if not no_recent_dental(f, p):  # else R1's dental lines have named it
        data.append(say("dental-referral-ordered", when=referred.when, ref=referred.ref))
    return (), data


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
        "patient-refusal",
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
        "denosumab-prohibited",
        "zoledronic-acid-prohibited",
        "pamidronate-prohibited",
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
    data = list(bone_data(f, p))
    data += [say("osteoporosis-dose-agent", drug=e.ingredient, ref=e.ref) for e in osteo]
    refs = f.disease.bone.refs + f.disease.bone_marrow_only.refs + tuple(e.ref for e in osteo)
    if withheld == "held-mronj":
        proposals, held = _held_for_mronj(f, p)
        data += held
        refs += f.disease.mronj.refs
    stopped = bma_intolerance(f)
    data += not_tolerated_lines(stopped)
    refs += tuple(e.ref for e in stopped)
    said, named = _other_bma_records(f, refs)
    data += said
    refs += named
    healing = recent_invasive_dental(f, p)
    if healing and proposals:
        # D6: the socket heals first (AAOMS 2022), if the clinical situation allows.
        notes = (*notes, NoteKey("dental-healing"))
        data += [say("invasive-dental", when=d.when, ref=d.ref) for d in healing]
        refs += tuple(d.ref for d in healing)
    return [
        Decision(
            variant=variant,
            indicator=indicator,
            bindings={"agents": agents_offered(proposals)},
            data=tuple(data),
            missing=_missing(f, p),
            note_keys=notes,
            refs=refs,
            proposals=proposals,
        )
    ]
