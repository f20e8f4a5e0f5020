"""R4a-R4e: dental review before and during bone-modifying agents, recent invasive dental
work, MRONJ, and a bone agent ordered against what the chart records."""

from __future__ import annotations

from cds.facts import PatientFacts
from cds.facts.orders import DraftOrders
from cds.parameters import Parameters
from cds.rules import (
    ORDER_HOOKS,
    PATIENT_VIEW,
    Decision,
    Order,
    Proposal,
    rule,
)
from cds.rules.bone import (
    BMA_PARAMETERS,
    BONE_VALUESETS,
    bma_indicated,
    bma_intolerance,
    bma_treatment_going_on,
    dental_lines,
    needs_dental_referral,
    not_tolerated_lines,
    r1_offers_dental_referral,
    recent_invasive_dental,
    recently_started,
)
from cds.rules.in_use import held, in_use_lines, none_known_in_use, unknown_status_line
from cds.said import say


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
    if not needs_dental_referral(f, p) or r1_offers_dental_referral(f, p):
        return []
    needs_bma = bma_indicated(f)
    recent = recently_started(f, p)
    if not needs_bma and not recent:
        return []
    data = list(dental_lines(f, p))
    data += [say("drug-started", drug=e.ingredient, when=when, ref=e.ref) for e, when in recent]
    if needs_bma:
        data.append(say("bma-indicated"))
    return [
        Decision(
            variant="dental-review",
            indicator="warning",
            data=tuple(data),
            refs=tuple(e.ref for e, _ in recent),
            proposals=(Proposal(key="dental-referral", actions=(Order(key="dental-referral"),)),),
        )
    ]


@rule(
    "R4b",
    hooks=ORDER_HOOKS,
    variants=("dental-before-bma", "socket-healing"),
    valuesets=("dental-evaluation", "invasive-dental"),
    ingredients=("denosumab", "zoledronic acid", "pamidronate"),
    parameters=("dental_lookback_days", "dental_healing_days", "new_treatment_gap_days"),
    orders=("dental-referral",),
    suggestions=("dental-referral",),
)
def r4b_dental_before_order(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """An oncologic BMA treatment begins with no dental evaluation in 6 months → refer; never
    blocks. It begins unless an oncologic-dose bone agent was given within
    `new_treatment_gap_days` (or on no known day): an osteoporosis dose (Prolia) or adjuvant
    zoledronic acid that ended long before is not the treatment now begun - read as one, any
    bone agent ever given silenced the card.
    After an extraction or other invasive dental procedure in the last 21 days → wait for the
    socket to heal if the clinical situation allows (AAOMS 2022; §3c D6).

    ASCO-BMA-2017; Xgeva label; MRONJ-2019 (the oncologist may start without delay when needed).
    """
    orders = drafts.with_class("BMA")
    if not orders or bma_treatment_going_on(f, p):
        return []
    healing = recent_invasive_dental(f, p)
    if healing:
        return [
            Decision(
                variant="socket-healing",
                indicator="warning",
                data=(
                    *(say("invasive-dental", when=d.when, ref=d.ref) for d in healing),
                    *(say("draft-order-ref", ref=o.ref) for o in orders),
                ),
                refs=(*(d.ref for d in healing), *(o.ref for o in orders)),
            )
        ]
    # The referral ordered, before or with the bone agent: the card's own suggestion (D20).
    if not needs_dental_referral(f, p) or any(
        "dental-evaluation" in s.kinds for s in drafts.services
    ):
        return []
    return [
        Decision(
            variant="dental-before-bma",
            indicator="warning",
            data=(*dental_lines(f, p), *(say("draft-order-ref", ref=o.ref) for o in orders)),
            refs=tuple(o.ref for o in orders),
            proposals=(Proposal(key="dental-referral", actions=(Order(key="dental-referral"),)),),
        )
    ]


@rule(
    "R4c",
    hooks=ORDER_HOOKS,
    variants=("invasive-dental", "invasive-dental-status-unknown"),
    valuesets=("invasive-dental",),
    ingredients=("denosumab", "zoledronic acid", "pamidronate"),
    parameters=BMA_PARAMETERS,
)
def r4c_invasive_dental(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """On a BMA and an extraction or implant is being ordered → MRONJ risk; coordinate.

    Xgeva label: avoid invasive dental procedures during treatment. MRONJ-2019. The procedure
    code set is UNVERIFIED, so the draft is recognised by dental words (value set
    invasive-dental): a cataract extraction or a breast implant never matches (C9). A bone
    agent recorded with status 'unknown' may still be given: the card names it.
    """
    on_bma = f.meds.possibly_in_use("BMA")
    if not on_bma:
        return []
    hits = [s for s in drafts.services if s.invasive_dental]
    if not hits:
        return []
    unknown = [e for e in on_bma if e.status_unknown]
    return [
        Decision(
            variant="invasive-dental-status-unknown"
            if none_known_in_use(on_bma)
            else "invasive-dental",
            indicator="warning",
            data=(
                *(say("draft-order-ref", ref=s.ref) for s in hits),
                *(unknown_status_line(e) for e in unknown),
            ),
            refs=(*(s.ref for s in hits), *(e.ref for e in unknown)),
        )
    ]


@rule(
    "R4d",
    hooks=PATIENT_VIEW,
    variants=("mronj", "mronj-held"),
    bindings=("drugs",),
    valuesets=("mronj",),
    ingredients=("denosumab", "zoledronic acid", "pamidronate"),
    parameters=BMA_PARAMETERS,
)
def r4d_mronj(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """Osteonecrosis of the jaw recorded on a bone-modifying agent → review its continuation
    with dental/oral surgery (warning). Xgeva label: temporary interruption should be considered
    on individual risk/benefit.

    The agent already on hold since the osteonecrosis (`in_use.held`), that decision is on the
    chart (C9): information that a restart is decided with dental/oral surgery. No agent in use
    (or of unknown status), there is no continuation to review: with bone metastases R1 says
    why it pre-fills none and refers to oral surgery (§3c D5) - one card for the concern.
    MRONJ codes are UNVERIFIED: recognised by text.
    """
    mronj = f.disease.mronj
    on_bma = f.meds.possibly_in_use("BMA")  # of unknown status too: named as such
    if not mronj.present or not on_bma:
        return []
    agents = dict.fromkeys(e.ingredient for e in on_bma)
    on_hold = all(held(f.meds, agent, mronj.since) for agent in agents)
    return [
        Decision(
            variant="mronj-held" if on_hold else "mronj",
            indicator="info" if on_hold else "warning",
            bindings={"drugs": " and ".join(agents)},
            data=(say("mronj", when=mronj.since), *in_use_lines(f.meds, on_bma)),
            refs=mronj.refs + tuple(e.ref for e in on_bma),
        )
    ]


@rule(
    "R4e",
    hooks=ORDER_HOOKS,
    variants=("mronj-order", "not-tolerated-order"),
    valuesets=("mronj", "stop-toxicity"),
    ingredients=("denosumab", "zoledronic acid", "pamidronate"),
)
def r4e_bma_order_against_the_record(
    f: PatientFacts, drafts: DraftOrders, p: Parameters
) -> list[Decision]:
    """A bone-modifying agent ordered while osteonecrosis of the jaw is active, or the same
    agent ordered again after it was stopped as not tolerated → warning; never blocks.

    Clinical-logic §3c D5: with active MRONJ or an agent not tolerated no agent is pre-filled,
    and the decision belongs with the oral surgery/dental team and the patient (Xgeva label:
    temporary interruption considered on individual risk/benefit; MASCC/ISOO/ASCO 2019). The
    order is where that decision is made. A different agent after intolerance is a switch,
    which the start card leaves open: no card.
    """
    orders = drafts.with_class("BMA")
    if not orders:
        return []
    if f.disease.mronj.present:
        return [
            Decision(
                variant="mronj-order",
                indicator="warning",
                data=(
                    say("mronj", when=f.disease.mronj.since),
                    *(say("draft-order-ref", ref=o.ref) for o in orders),
                ),
                refs=(*f.disease.mronj.refs, *(o.ref for o in orders)),
            )
        ]
    stopped = bma_intolerance(f)
    again = [o for o in orders if o.has(*(e.ingredient for e in stopped))]
    if not again:
        return []
    earlier = [e for e in stopped if any(o.has(e.ingredient) for o in again)]
    return [
        Decision(
            variant="not-tolerated-order",
            indicator="warning",
            data=(
                *not_tolerated_lines(earlier),
                *(say("draft-order-ref", ref=o.ref) for o in again),
            ),
            refs=(*(e.ref for e in earlier), *(o.ref for o in again)),
        )
    ]
