"""R0: a draft order the service was asked to check but could not read is never skipped."""

from __future__ import annotations

from cds.facts import PatientFacts
from cds.facts.orders import DraftOrders
from cds.parameters import Parameters
from cds.rules import ORDER_HOOKS, Decision, rule
from cds.said import say


@rule("R0", hooks=ORDER_HOOKS, variants=("unreadable",), bindings=("count",))
def r0_unreadable_order(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """A draft order whose medication cannot be identified → say it was not checked.

    CDS Hooks order-select/order-sign: the service is asked to check the draft orders; one it
    cannot read must not pass as checked (clinical-logic §3b, issue: real clients send slightly
    wrong FHIR). The card names each order and why.
    """
    chosen = [u for u in drafts.unreadable if u.selected] or list(drafts.unreadable)
    if not chosen:
        return []
    return [
        Decision(
            variant="unreadable",
            indicator="warning",
            bindings={"count": str(len(chosen))},
            data=tuple(say("draft-unreadable", ref=u.ref, reason=u.reason) for u in chosen),
            refs=tuple(u.ref for u in chosen if "(" not in u.ref),
        )
    ]
