"""Drugs as the safety checks take them: in use by F5, or recorded with status 'unknown' and
no end date, which may still be given (`Exposure.status_unknown`); and how a card names each.

A safety check is never dropped for want of a status, and never says 'on' a drug whose status
is unknown: the card names the record and asks whether the drug is still given."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from cds.facts.medications import Exposure, Medications
from cds.said import Said, say

# What "possibly in use" (F5) depends on: a rule that asks it declares these parameters.
ACTIVE_PARAMETERS = ("active_window_days", "clock_lead_days")


def unknown_status_line(e: Exposure) -> Said:
    """'<drug> recorded with status 'unknown' from <start> (<ref>): confirm ...'"""
    return say("status-unknown", drug=e.ingredient, when=e.start, ref=e.ref)


def in_use_lines(meds: Medications, exposures: Iterable[Exposure]) -> tuple[Said, ...]:
    """'On trastuzumab since <date> (ref)', or the record's unknown status and the question it
    leaves."""
    return tuple(
        unknown_status_line(e) if e.status_unknown else on_drug_line(meds, e) for e in exposures
    )


def on_drug_line(meds: Medications, e: Exposure) -> Said:
    """'On <drug> since <the course's first dose> (ref)': the date a clinician judges a record
    by (an anthracycline order 'active' since years ago is an order never closed); ', on hold'
    for an order or statement on hold, which counts as in use but is not being given."""
    since = meds.course_start_shown(e)
    if since is None:
        if on_hold(e):
            return say("on-drug-on-hold", drug=e.ingredient, ref=e.ref)
        return say("on-drug", drug=e.ingredient, ref=e.ref)
    if on_hold(e):
        return say("on-drug-since-on-hold", drug=e.ingredient, when=since, ref=e.ref)
    return say("on-drug-since", drug=e.ingredient, when=since, ref=e.ref)


def none_known_in_use(exposures: Iterable[Exposure]) -> bool:
    """Every record a card relies on is of unknown status: its headline cannot say 'on' the
    drug (the '-status-unknown' variants)."""
    return all(e.status_unknown for e in exposures)


def on_hold(e: Exposure) -> bool:
    """An order or statement on hold: in use by F5 (it may resume), not being given. An
    administration 'on-hold' is one infusion paused, not the treatment held."""
    return e.record.status == "on-hold" and e.record.resource_type != "MedicationAdministration"


def held_line(meds: Medications, ingredient: str, drug: str) -> Said:
    """'<drug> on hold (<the records that hold it>)', the drug named as its card names it."""
    refs = tuple(
        e.ref for e in meds.exposures if e.ingredient == ingredient and e.active and on_hold(e)
    )
    return say("drug-on-hold", drug=drug, refs=refs)


def held(meds: Medications, ingredient: str, since: date | None) -> bool:
    """The drug is on hold: an order or statement for it has status 'on-hold', and every other
    record that keeps it in use (F5) is a dose given before `since` (the result the hold
    answers). A dose charted on or after it, a record still active or of unknown status: the
    drug is not known to be held."""
    in_use = [
        e for e in meds.exposures if e.ingredient == ingredient and (e.active or e.status_unknown)
    ]
    holding = [e for e in in_use if on_hold(e)]
    dosed_before = [
        e
        for e in in_use
        if e.record.resource_type == "MedicationAdministration"
        and since is not None
        and e.last is not None
        and e.last < since
    ]
    return bool(holding) and len(holding) + len(dosed_before) == len(in_use)
