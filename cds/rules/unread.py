"""What the service could not read is never passed over in silence: a draft order it was asked
to check (R0), a resource of the chart a rule would have read (R0b)."""

from __future__ import annotations

from cds.facts import PatientFacts
from cds.facts.medications import Exposure, as_charted
from cds.facts.orders import DraftOrders
from cds.fhir.records import Excluded
from cds.parameters import Parameters
from cds.rules import ALL_HOOKS, ORDER_HOOKS, Decision, rule
from cds.said import Said, say


@rule("R0", hooks=ORDER_HOOKS, variants=("unreadable", "another-patient"), bindings=("count",))
def r0_unreadable_order(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """A draft order whose medication cannot be identified → say it was not checked; one whose
    subject is another patient → say so and ask to confirm the patient (a card of its own).

    CDS Hooks order-select/order-sign: the service is asked to check the draft orders; one it
    cannot read must not pass as checked (clinical-logic §3b, issue: real clients send slightly
    wrong FHIR). The draft orders of a call are the patient in context's; checked against her
    chart, another patient's order would get cards about the wrong patient. The card names each
    order and why.
    """
    chosen = [u for u in drafts.unreadable if u.selected] or list(drafts.unreadable)
    out = []
    for variant, group in (
        ("unreadable", [u for u in chosen if not u.another_patient]),
        ("another-patient", [u for u in chosen if u.another_patient]),
    ):
        if group:
            out.append(
                Decision(
                    variant=variant,
                    indicator="warning",
                    bindings={"count": str(len(group))},
                    data=tuple(say("draft-unreadable", ref=u.ref, reason=u.reason) for u in group),
                    refs=tuple(u.ref for u in group if "(" not in u.ref),
                )
            )
    return out


@rule(
    "R0b",
    hooks=ALL_HOOKS,
    variants=("left-out", "diagnosis-left-out", "dates-after-today", "status-set-aside"),
    bindings=("count",),
    # F1's, and the labs whose unusable values (impossible, a bound) are left out.
    valuesets=(
        "breast-cancer",
        "breast-cancer-history",
        "secondary-neoplasm",
        "creatinine",
        "body-weight",
        "calcium",
        "albumin",
        "creatinine-clearance",
        "egfr",
        "lvef",
    ),
    # A lab value outside its read range is left out, named; an active status contradicted by
    # the doses charted is set aside, named.
    parameters=("lab_read_ranges", "new_treatment_gap_days", "dose_charted_ingredients"),
    after_f1=False,
)
def r0b_left_out(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """Resources a rule would read that failed their check, or hold a value the checks cannot
    use (one no patient can have, a bound such as "< 0.5", an LVEF of 1 or less), and
    medication records that name no medicine the service can read → name each one, with where
    it is wrong, on a card of its own.

    FHIR R4 datatypes and cardinalities decide what is read (`cds.fhir.conformance`). Missing
    data is never a negative finding: a resource left out is missing data, and a card it would
    have raised is missing with it. Each card that fires says so in a note; this card says it
    when none fires too, and when the breast cancer diagnosis itself was left out, so that no
    other rule could run (a warning then: clinical-logic §0 indicator policy, a check missing).

    A Condition date after today (an onset typed a year ahead), or the start of a medicine a
    statement says is or was taken, is read as no date, the resource kept: the cards' dates
    are then not the chart's, so the dates set aside are named on an information card of
    their own (clinical-logic §3c D14: when dates conflict, the card says which dates it used).
    """
    out = []
    if f.excluded:
        diagnosis = not f.disease.breast_cancer.present
        out.append(
            Decision(
                variant="diagnosis-left-out" if diagnosis else "left-out",
                indicator="warning" if diagnosis else "info",
                bindings={"count": str(len(f.excluded))},
                data=tuple(_named(e) for e in f.excluded),
                refs=tuple(e.ref for e in f.excluded if "(" not in e.ref),
            )
        )
    if f.dates_set_aside:
        out.append(
            Decision(
                variant="dates-after-today",
                indicator="info",
                bindings={"count": str(len({e.ref for e in f.dates_set_aside}))},
                data=tuple(_named(e) for e in f.dates_set_aside),
                refs=tuple(dict.fromkeys(e.ref for e in f.dates_set_aside)),
            )
        )
    if stale := f.meds.set_aside():
        out.append(
            Decision(
                variant="status-set-aside",
                indicator="info",
                bindings={"count": str(len({e.ref for e in stale}))},
                data=tuple(
                    _status_set_aside(e, dose, p.new_treatment_gap_days)
                    for e in stale
                    if (dose := e.last_dose) is not None
                ),
                refs=tuple(dict.fromkeys(e.ref for e in stale)),
            )
        )
    return out


def _status_set_aside(e: Exposure, dose: Exposure, gap_days: int) -> Said:
    """One record whose active status was set aside, with the dose that ended its course."""
    span = e.start_span
    return say(
        "status-set-aside",
        ref=e.ref,
        drug=e.ingredient,
        start=as_charted(*span) if span else e.start,
        on=dose.last_shown,
        dose=dose.ref,
        days=str(gap_days),
    )


def _named(e: Excluded) -> Said:
    """Where a resource failed FHIR R4 (the check's own wording differs between validation
    modes and is for `cds validate` to give); what was impossible about a value, as said."""
    if isinstance(e.reason, Said):
        return say("resource-left-out-value", ref=e.ref, why=e.reason)
    return say("resource-left-out-invalid", ref=e.ref, where=e.location)
