"""R0c: a medicine ordered while the chart holds an order not to give it."""

from __future__ import annotations

from cds.facts import PatientFacts
from cds.facts.orders import DraftOrders
from cds.parameters import Parameters
from cds.rules import ORDER_HOOKS, Decision, rule
from cds.said import say


@rule("R0c", hooks=ORDER_HOOKS, variants=("order-not-to-give",), bindings=("drugs",))
def r0c_order_not_to_give(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """A draft for a medicine that an order not to give (FHIR R4 MedicationRequest.doNotPerform,
    a modifier) still in force names → warning, the prohibition shown; never blocks.

    The order not to give is a clinician's recorded decision (a dental extraction planned, a
    reaction): the start cards already leave the agent out (R1, R6). Signing an order for it
    without a word would contradict the chart; which order stands is the clinician's call.
    """
    forbidden = f.meds.prohibitions()
    if not forbidden:
        return []
    out = []
    for draft in drafts.focus():
        against = [e for e in forbidden if draft.has(e.ingredient)]
        if against:
            out.append((draft, against))
    if not out:
        return []
    drugs = sorted({e.ingredient for _, against in out for e in against})
    return [
        Decision(
            variant="order-not-to-give",
            indicator="warning",
            bindings={"drugs": " and ".join(drugs)},
            data=tuple(
                line
                for draft, against in out
                for line in (
                    say("draft-order-ref", ref=draft.ref),
                    *(
                        say("order-not-to-give", drug=e.ingredient, when=e.start, ref=e.ref)
                        for e in against
                    ),
                )
            ),
            refs=tuple(r for draft, against in out for r in (draft.ref, *(e.ref for e in against))),
        )
    ]
