"""When an echocardiogram is due, and when one is already ordered: one definition for the cards
that order one (R6, R8b, R11, R15)."""

from __future__ import annotations

from cds.facts import Dated, PatientFacts, latest_within
from cds.facts.orders import DraftOrders
from cds.parameters import Parameters
from cds.rules import Order, Proposal
from cds.said import Said, say

ORDER_ECHO = Proposal(key="echocardiogram", actions=(Order(key="echocardiogram"),))


def echo_due(f: PatientFacts, p: Parameters) -> bool:
    """No LVEF read within the labels' 3-month interval (`lvef_interval_days`)."""
    return not f.lvef.measured_within(f.as_of, p.lvef_interval_days)


def echo_ordered(f: PatientFacts, p: Parameters) -> Dated | None:
    """An echocardiogram ordered after the latest LVEF, within the 3-month interval, and not
    yet done (an active ServiceRequest): the one the cards would order is on record, so none
    suggests another (§3c D20). One ordered on or before the latest LVEF's day is the echo
    that gave it, its request left open."""
    latest = f.lvef.latest
    since = latest.when if latest is not None else None
    return latest_within(f.echo_orders, f.as_of, p.lvef_interval_days, after=since)


def echo_actions(f: PatientFacts, p: Parameters) -> tuple[Order, ...]:
    """The echocardiogram a treatment proposal carries: when one is due and none is ordered."""
    return (Order(key="echocardiogram"),) if echo_due(f, p) and echo_ordered(f, p) is None else ()


def echo_on_record(
    f: PatientFacts, p: Parameters, drafts: DraftOrders | None = None
) -> tuple[Said, ...]:
    """The echocardiogram ordered and not yet done, and one being ordered with the drafts."""
    drafted = drafts.services if drafts is not None else ()
    lines = [say("echo-drafted", ref=s.ref) for s in drafted if "echocardiogram" in s.kinds]
    if (ordered := echo_ordered(f, p)) is not None:
        lines.append(say("echo-ordered", when=ordered.when, ref=ordered.ref))
    return tuple(lines)


def echo_lines(
    f: PatientFacts, p: Parameters, drafts: DraftOrders | None = None
) -> tuple[Said, ...]:
    """`echo_on_record` while an echocardiogram is due (R6, R8b and R15 name it then)."""
    return echo_on_record(f, p, drafts) if echo_due(f, p) else ()


def echo_proposal(
    f: PatientFacts, p: Parameters, drafts: DraftOrders | None = None
) -> tuple[Proposal, ...]:
    """The echocardiogram a card suggests, unless one is ordered or being ordered (D20)."""
    return () if echo_on_record(f, p, drafts) else (ORDER_ECHO,)
