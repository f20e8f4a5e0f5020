"""R3a-R3c: calcium and vitamin D around bone-modifying agents (denosumab above all)."""

from __future__ import annotations

from datetime import timedelta

from cds.facts import PatientFacts
from cds.facts.labs import said_missing
from cds.facts.orders import DraftOrders
from cds.parameters import Parameters
from cds.rules import (
    ORDER_HOOKS,
    PATIENT_VIEW,
    Decision,
    NoteKey,
    Proposal,
    RegimenOrder,
    rule,
)
from cds.rules.bone import (
    BMA_PARAMETERS,
    CALCIUM_PARAMETERS,
    CALCIUM_VALUESETS,
    LAB_PARAMETERS,
    ORDER_CALCIUM,
    RENAL_VALUESETS,
    SUPPORT_REGIMENS,
    bma_treatment_going_on,
    prohibited_agents,
    recently_started,
    renal_line,
    severe_renal,
)
from cds.rules.in_use import held, in_use_lines, none_known_in_use
from cds.rules.lab_orders import CALCIUM_TESTS, lab_lines, lab_pending
from cds.said import Said, say


@rule(
    "R3a",
    hooks=ORDER_HOOKS,
    variants=("hypocalcaemia", "calcium-unknown", "renal-monitor", "hypocalcaemia-bisphosphonate"),
    bindings=("drug",),
    valuesets=(*RENAL_VALUESETS, *CALCIUM_VALUESETS),
    ingredients=("denosumab", "zoledronic acid", "pamidronate"),
    parameters=(*LAB_PARAMETERS, *CALCIUM_PARAMETERS, "crcl_not_recommended"),
    orders=("lab-calcium", "lab-albumin"),
    suggestions=("order-calcium",),
    notes=("calcium-uncorrected",),
)
def r3a_bma_order_calcium(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """Denosumab order with low corrected calcium → correct it first; severe renal → monitor.

    Xgeva safety labelling change (FDA, 2013): pre-existing hypocalcaemia must be corrected before
    starting Xgeva. Label (June 2014): hypocalcaemia risk is highest with CrCl <30 mL/min or
    dialysis; monitor calcium. A zoledronic acid or pamidronate order with low calcium → correct
    it first too (clinical-logic §3c D4: hypocalcaemia blocks every bone agent; zoledronic acid's
    EU product information reports hypocalcaemia, life-threatening in some cases): a warning,
    the bisphosphonate labels being less absolute than Xgeva's.
    """
    out = _bisphosphonate_hypocalcaemia(f, drafts)
    # Calcium already ordered is named, not ordered twice (§3c D20).
    calcium_ordered = lab_lines(f, CALCIUM_TESTS, p.lab_freshness_days, drafts)
    pending = lab_pending(f, "lab-calcium", p.lab_freshness_days, drafts)
    order_calcium = () if pending else (ORDER_CALCIUM,)
    for draft in drafts.with_ingredient("denosumab"):
        data = [say("draft-order", drug="denosumab", ref=draft.ref)]
        if f.calcium.low:
            data.append(say("calcium", value=f.calcium.corrected, when=f.calcium.when))
            out.append(
                Decision(
                    variant="hypocalcaemia",
                    indicator="critical",
                    data=tuple(data),
                    refs=(draft.ref, *f.calcium.refs),
                    note_keys=_uncorrected(f),
                )
            )
        elif f.calcium.corrected is None:
            out.append(
                Decision(
                    variant="calcium-unknown",
                    indicator="warning",
                    data=(*data, *calcium_ordered),
                    missing=(
                        said_missing(
                            say("missing-calcium", days=p.lab_freshness_days),
                            f.calcium.unread,
                            f.as_of - timedelta(days=p.lab_freshness_days),
                        ),
                    ),
                    refs=(draft.ref,),
                    proposals=order_calcium,
                )
            )
        elif severe_renal(f, p):
            data.append(renal_line(f))
            out.append(
                Decision(
                    variant="renal-monitor",
                    indicator="warning",
                    data=(*data, *calcium_ordered),
                    refs=(draft.ref, *f.renal.refs),
                    proposals=order_calcium,
                )
            )
    return out


def _bisphosphonate_hypocalcaemia(f: PatientFacts, drafts: DraftOrders) -> list[Decision]:
    """Zoledronic acid or pamidronate ordered while corrected calcium is low (§3c D4)."""
    if not f.calcium.low:
        return []
    out = []
    for draft in drafts.with_ingredient(*_BISPHOSPHONATES):
        drug = next(d.ingredient for d in draft.drugs if d.ingredient in _BISPHOSPHONATES)
        out.append(
            Decision(
                variant="hypocalcaemia-bisphosphonate",
                indicator="warning",
                bindings={"drug": drug},
                data=(
                    say("draft-order", drug=drug, ref=draft.ref),
                    say("calcium", value=f.calcium.corrected, when=f.calcium.when),
                ),
                refs=(draft.ref, *f.calcium.refs),
                note_keys=_uncorrected(f),
            )
        )
    return out


_BISPHOSPHONATES = ("zoledronic acid", "pamidronate")


def _uncorrected(f: PatientFacts) -> tuple[NoteKey, ...]:
    """The note that calcium is not albumin-corrected, when no albumin was at hand."""
    return () if f.calcium.albumin_corrected else (NoteKey("calcium-uncorrected"),)


_SUPPLEMENT = Proposal(key="calcium-vitamin-d", actions=(RegimenOrder(key="calcium-vitamin-d"),))


@rule(
    "R3b",
    hooks=(*PATIENT_VIEW, *ORDER_HOOKS),
    variants=("supplement", "supplement-with-order"),
    valuesets=CALCIUM_VALUESETS,
    ingredients=("denosumab", "zoledronic acid", "pamidronate", "calcium", "vitamin d"),
    parameters=(
        *CALCIUM_PARAMETERS,
        *BMA_PARAMETERS,
        "bma_recent_start_days",
        "new_treatment_gap_days",
    ),
    regimens=SUPPORT_REGIMENS,
)
def r3b_calcium_vitamin_d(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """A BMA started in the last 30 days (or calcium low), or a bone-agent treatment being
    ordered, without calcium or vitamin D → supplement, unless hypercalcaemic; not at every
    chart open (clinical-logic §3c D10: "it appears with a BMA start or order").

    Zometa label: oral calcium 500 mg and a multivitamin with 400 IU vitamin D daily. Xgeva label:
    calcium and vitamin D as necessary, unless hypercalcaemia is present. Prolia label: calcium
    and vitamin D for every patient. Seed 001.
    RxNorm codes for calcium carbonate and cholecalciferol are UNVERIFIED: sent as text only.
    """
    if f.meds.active("CALCIUM", "VITD") or f.calcium.high:
        return []
    if drafts.ordering:
        return _supplement_with_order(f, drafts, p)
    bma = f.meds.active_bma()
    if not bma:
        return []
    # D10: over-the-counter supplements are rarely recorded, so this is not a card at every
    # chart open: only around the start of an agent, or when calcium is low.
    if not recently_started(f, p) and not f.calcium.low:
        return []
    unknown = f.meds.of_unknown_status("CALCIUM", "VITD")  # may still be taken: named
    return [
        Decision(
            variant="supplement",
            indicator="info",
            data=in_use_lines(f.meds, (*bma, *unknown)),
            missing=_calcium_missing(f),
            refs=tuple(e.ref for e in (*bma, *unknown)),
            proposals=(_SUPPLEMENT,),
        )
    ]


def _calcium_missing(f: PatientFacts) -> tuple[Said, ...]:
    return () if f.calcium.corrected is not None else (say("missing-calcium-before-supplement"),)


def _supplement_with_order(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """A bone agent ordered to begin a treatment (none going on: D10's "start or order"), with
    no calcium or vitamin D on record nor among the orders signed with it. An order continuing
    a treatment already going on (an osteoporosis one too: Prolia's label asks for the same
    supplements) is quiet: supplements bought over the counter are rarely recorded, and the
    card would return at every dose."""
    prohibited = prohibited_agents(f)  # an order not to give it in force: R0c speaks
    orders = tuple(o for o in drafts.with_class("BMA") if not o.has(*prohibited))
    if (
        not orders
        or drafts.any_with_class("CALCIUM", "VITD")
        or bma_treatment_going_on(f, p, osteo=True)
    ):
        return []
    unknown = f.meds.of_unknown_status("CALCIUM", "VITD")
    return [
        Decision(
            variant="supplement-with-order",
            indicator="info",
            data=(
                *(say("draft-order-ref", ref=o.ref) for o in orders),
                *in_use_lines(f.meds, unknown),
            ),
            missing=_calcium_missing(f),
            refs=(*(o.ref for o in orders), *(e.ref for e in unknown)),
            proposals=(_SUPPLEMENT,),
        )
    ]


@rule(
    "R3c",
    hooks=PATIENT_VIEW,
    variants=("check-calcium", "check-calcium-status-unknown"),
    valuesets=CALCIUM_VALUESETS,
    ingredients=("denosumab",),
    parameters=("calcium_check_days", *BMA_PARAMETERS),
    orders=("lab-calcium", "lab-albumin"),
    suggestions=("order-calcium",),
)
def r3c_denosumab_calcium_check(
    f: PatientFacts, drafts: DraftOrders, p: Parameters
) -> list[Decision]:
    """On denosumab with no calcium result in 35 days → check serum calcium (Xgeva label).
    A denosumab record of unknown status may still be given: the card names it. Denosumab on
    hold with no dose in those 35 days (`in_use.held`) has no dose to follow: quiet (C9); an
    order to resume it is checked against calcium before it is given (R3a)."""
    unknown = [e for e in f.meds.of_unknown_status("BMA") if e.bma_dose != "osteo"]
    on_denosumab = [e for e in (*f.meds.active_bma(), *unknown) if e.ingredient == "denosumab"]
    last = f.calcium.last_result
    window = timedelta(days=p.calcium_check_days)
    if (
        not on_denosumab
        or (last is not None and f.as_of - last <= window)
        or held(f.meds, "denosumab", f.as_of - window)
    ):
        return []
    if lab_pending(f, "lab-calcium", p.calcium_check_days):
        return []  # the check this card asks for is ordered (§3c D20)
    return [
        Decision(
            variant="check-calcium-status-unknown"
            if none_known_in_use(on_denosumab)
            else "check-calcium",
            indicator="info",
            data=in_use_lines(f.meds, on_denosumab),
            missing=(
                said_missing(
                    say("missing-calcium", days=p.calcium_check_days),
                    f.calcium.unread,
                    f.as_of - timedelta(days=p.calcium_check_days),
                ),
            ),
            refs=tuple(e.ref for e in on_denosumab),
            proposals=(ORDER_CALCIUM,),
        )
    ]
