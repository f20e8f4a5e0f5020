"""R10: an anthracycline with trastuzumab-based therapy, at the order and on the chart."""

from __future__ import annotations

from cds.facts import PatientFacts
from cds.facts.medications import course_end
from cds.facts.orders import DraftMedication, DraftOrders
from cds.parameters import Parameters
from cds.rules import ORDER_HOOKS, PATIENT_VIEW, Decision, DeleteDraft, Proposal, rule
from cds.rules.in_use import in_use_lines
from cds.rules.lvef_labels import ANTIBODIES, HER2_AB
from cds.said import say

ANTHRACYCLINES = ("doxorubicin", "epirubicin")


@rule(
    "R10",
    hooks=ORDER_HOOKS,
    variants=("concurrent", "concurrent-status-unknown", "washout", "washout-end-unrecorded"),
    ingredients=(*ANTIBODIES, *ANTHRACYCLINES),
    parameters=("anthracycline_washout_days", "active_window_days"),
    suggestions=("remove-anthracycline",),
)
def r10_anthracycline_order(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """Anthracycline ordered with trastuzumab-based therapy (or the reverse) → avoid (critical).

    Herceptin SmPC: trastuzumab and anthracyclines should not be used concurrently outside a
    monitored trial; avoid anthracyclines for up to 25 weeks after stopping (EU) - the US label's
    7 months is UNVERIFIED; the longer window is the configurable default. Seed 000 (27% cardiac
    dysfunction with AC + trastuzumab). A HER2 antibody of unknown status counts, named; a HER2
    drug ordered while the only anthracycline on record has status 'unknown' (no end date) gets
    a warning that names it and asks whether it has finished: sequential anthracycline then
    trastuzumab is standard, concurrent is not. An anthracycline ordered after trastuzumab
    whose last dose is not recorded (only a start, or the one date a statement is about, beyond
    the washout) gets a warning that asks for it: it may have been given within the washout.
    """
    anthra = drafts.with_class("ANTHRACYCLINE")
    her2_drafts = drafts.any_with_class(*HER2_AB)
    her2_active = f.meds.possibly_in_use(*HER2_AB)  # of unknown status too: named
    out: list[Decision] = []
    if anthra and (her2_active or her2_drafts):
        data = [say("draft-order-anthracycline", ref=a.ref) for a in anthra]
        data += in_use_lines(f.meds, her2_active)
        data += [say("draft-order-her2", ref=h.ref) for h in her2_drafts]
        out.append(
            Decision(
                variant="concurrent",
                indicator="critical",
                data=tuple(data),
                refs=tuple(a.ref for a in anthra) + tuple(e.ref for e in her2_active),
                proposals=tuple(
                    Proposal(key="remove-anthracycline", actions=(DeleteDraft(draft_ref=a.ref),))
                    for a in anthra
                ),
            )
        )
        return out
    reverse = drafts.with_class(*HER2_AB)
    if reverse and (decision := _her2_drafted_on_anthracycline(f, reverse)) is not None:
        return [decision]
    if anthra:
        trastuzumab = [e for e in f.meds.ever("HER2_MAB") if e.ingredient == "trastuzumab"]
        course = course_end(trastuzumab)
        within = course.within(f.as_of, p.anthracycline_washout_days)
        if within is not False and course.last is not None:
            # Within the washout, or not known to be past it: a course whose end is not
            # recorded may have gone on past its last known day (missing data is no all-clear).
            last = (
                say("last-trastuzumab", when=course.last)
                if course.recorded
                else say("last-trastuzumab-end-unrecorded", when=course.last)
            )
            out.append(
                Decision(
                    variant="washout" if within else "washout-end-unrecorded",
                    indicator="warning",
                    data=(last, *(say("draft-order-ref", ref=a.ref) for a in anthra)),
                    refs=tuple(a.ref for a in anthra),
                )
            )
    return out


def _her2_drafted_on_anthracycline(
    f: PatientFacts, drafted: tuple[DraftMedication, ...]
) -> Decision | None:
    """A HER2 drug drafted with an anthracycline that may be in use: critical when one is in
    use, a question (warning) when the only ones have status 'unknown' - a safety check is never
    dropped for want of a status, and every such record is named."""
    anthra = f.meds.possibly_in_use("ANTHRACYCLINE")
    if not anthra:
        return None
    known = any(not e.status_unknown for e in anthra)
    return Decision(
        variant="concurrent" if known else "concurrent-status-unknown",
        indicator="critical" if known else "warning",
        data=tuple(say("draft-order-her2", ref=h.ref) for h in drafted)
        + in_use_lines(f.meds, anthra),
        refs=tuple(h.ref for h in drafted) + tuple(e.ref for e in anthra),
    )


@rule(
    "R10pv",
    hooks=PATIENT_VIEW,
    variants=("both-active",),
    ingredients=(*ANTIBODIES, *ANTHRACYCLINES),
    parameters=("active_window_days",),
)
def r10_both_active(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """An anthracycline and a HER2 antibody/ADC both active → review the regimen (warning).

    R10 patient-view variant. Herceptin SmPC: trastuzumab and anthracyclines should not be used
    concurrently except in a well-controlled trial with cardiac monitoring; seed 000. A HER2
    antibody or ADC recorded with status 'unknown' (open-ended) counts, named.
    """
    anthra, her2 = f.meds.active("ANTHRACYCLINE"), f.meds.possibly_in_use(*HER2_AB)
    if not anthra or not her2:
        return []
    return [
        Decision(
            variant="both-active",
            indicator="warning",
            data=in_use_lines(f.meds, (*anthra, *her2)),
            refs=tuple(e.ref for e in anthra + her2),
        )
    ]
