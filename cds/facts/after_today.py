"""Dates after today, read as what they are: record errors (a year typed wrong), never events
to come. A dose given, a result reported or a procedure done after today is left out of the
checks; a Condition's date, or the start of a medicine said taken, is set aside and the
resource read without it. Each is named on R0b (left out, or dates set aside), so that no
card works from a date it does not say. "Today" allows the clock lead (clock_lead_days): a
clinic a day ahead of the server is read right."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import NamedTuple

from cds.facts.progression import status_word
from cds.facts.receptors import marker_kind, marker_name
from cds.fhir.records import Excluded, MedicationRecord, Records, resource_ref
from cds.said import Said, say
from cds.terminology import Concept, Terminology


class AsOfToday(NamedTuple):
    records: Records  # the chart as the checks read it
    dates_set_aside: tuple[Excluded, ...]  # resources read without a date: R0b dates-after-today
    left_out: tuple[Excluded, ...]  # resources left out of the checks: R0b left-out


def read_as_of(records: Records, t: Terminology, *, as_of: date, today: date) -> AsOfToday:
    """The chart with every date after `today` read as a record error, and what was done so."""
    records, conditions = _conditions_undated(records, today)
    records, courses = _courses_undated(records, today)
    records, doses = _doses_left_out(records, today)
    records = _doses_given_by(records, as_of)
    records, results = _results_left_out(records, t, today)
    records, procedures = _procedures_left_out(records, today)
    return AsOfToday(records, conditions + courses, doses + results + procedures)


def _results_left_out(
    records: Records, t: Terminology, today: date
) -> tuple[Records, tuple[Excluded, ...]]:
    """The chart without the disease status and tumour marker results dated after today, each
    named: a result in the future is a record error (a year typed wrong), as a lab result so
    dated is (those are named with the labs). Read, a 'worsened' typed a year ahead was
    progression on the line in use - a card to change a line that works (clinical-logic §3b
    C6) - and a primary's HER2-positive result typed years ahead the latest, metastatic one:
    first-line HER2-targeted therapy offered for disease re-tested HER2-negative."""
    late = [o for o in records.observations if o.effective is not None and o.effective > today]
    if not late:
        return records, ()  # the common case: the chart as read
    statuses = t["disease-status"]
    named: list[Excluded] = []
    left_out: set[int] = set()
    for o in late:
        if statuses.matches_code(o.code):
            said = say("status-dated-after-today", status=status_word(o, t), on=o.effective)
        elif marker_kind(o, t) is not None:
            said = say("marker-dated-after-today", what=marker_name(o, t), on=o.effective)
        else:
            continue  # a lab result: named with the labs (unusable_values)
        left_out.add(id(o))
        named.append(
            Excluded("Observation", "effective[x]", said, resource_ref("Observation", o.id), o.code)
        )
    if not named:
        return records, ()
    kept = tuple(o for o in records.observations if id(o) not in left_out)
    return replace(records, observations=kept), tuple(named)


def _conditions_undated(records: Records, today: date) -> tuple[Records, tuple[Excluded, ...]]:
    """The chart with each Condition date after today read as no date, and each date so set
    aside named: an onset or a record date in the future is a record error (a year typed
    wrong), not a metastasis yet to come - the condition is present, dated by its other date
    when that one is not in the future, as a Condition with no onset is. An abatement after
    today: not abated yet. Read so, a metastasis typed a year ahead made the therapies since it
    adjuvant and its tissue results older than it; set aside unsaid, the cards gave no hint
    that the dates they show are not the chart's."""

    def after(d: date | None) -> bool:
        return d is not None and d > today

    if not any(after(c.onset) or after(c.recorded) or after(c.abated) for c in records.conditions):
        return records, ()  # the common case: the chart as read
    conditions = tuple(
        replace(
            c,
            onset=None if after(c.onset) else c.onset,
            recorded=None if after(c.recorded) else c.recorded,
            abated=None if after(c.abated) else c.abated,
        )
        for c in records.conditions
    )
    named = []
    for c in records.conditions:
        if said := _dates_set_aside(c.onset, c.recorded, after):
            named.append(
                Excluded("Condition", "onset[x]", said, resource_ref("Condition", c.id), c.code)
            )
        if after(c.abated):
            said = say("condition-abated-after-today", on=c.abated)
            named.append(
                Excluded("Condition", "abatement[x]", said, resource_ref("Condition", c.id), c.code)
            )
    return replace(records, conditions=conditions), tuple(named)


def _dates_set_aside(
    onset: date | None, recorded: date | None, after: Callable[[date | None], bool]
) -> Said | None:
    """What a Condition's onset and recorded date after today leave it dated by, said once."""
    if after(onset) and after(recorded):
        return say("condition-dated-after-today", on=onset, recorded=recorded)
    if after(onset):
        if recorded is None:
            return say("condition-onset-after-today-undated", on=onset)
        return say("condition-onset-after-today", on=onset, recorded=recorded)
    if after(recorded):
        if onset is None:
            return say("condition-recorded-after-today-undated", on=recorded)
        return say("condition-recorded-after-today", on=recorded, onset=onset)
    return None


# A record that the patient takes, took or paused a medicine: its course began before today.
# (A statement "intended" is a course to come, one "not-taken" never begun: read as is.)
_TAKEN = frozenset({"active", "completed", "stopped", "on-hold", "unknown"})


def _started_after_today(m: MedicationRecord, today: date) -> bool:
    """A course said taken that starts after today: a statement so dated, or an order whose
    start and writing date are both after today (an order's start alone may lie ahead: a
    course planned to begin next week)."""
    if m.status not in _TAKEN or m.do_not_perform or m.start is None or m.start <= today:
        return False  # (an order not to give is no course: R0c reads its dates as they are)
    if m.resource_type == "MedicationStatement":
        return True
    return m.resource_type == "MedicationRequest" and m.authored is not None and m.authored > today


def _courses_undated(records: Records, today: date) -> tuple[Records, tuple[Excluded, ...]]:
    """The chart with each medicine said taken from a date after today - a statement so dated,
    an order written after today - read as taken since a date not known, and each named: the
    date is a record error (a year typed wrong). Read as a course yet to come, T-DXd typed a
    year ahead made the pneumonitis on it one before it (a warning for a critical card), and a
    pneumonitis on T-DM1 or trastuzumab gave no card at all."""
    late = [
        m
        for m in records.medications
        # the date first: a call per record would cost a large chart's hundreds of records
        if m.start is not None and m.start > today and _started_after_today(m, today)
    ]
    if not late:
        return records, ()  # the common case: the chart as read
    undated = {id(m) for m in late}
    medications = tuple(
        replace(m, start=None) if id(m) in undated else m for m in records.medications
    )
    named = tuple(
        Excluded(
            m.resource_type,
            "effective[x]" if m.resource_type == "MedicationStatement" else "authoredOn",
            say("statement-started-after-today", on=m.start)
            if m.resource_type == "MedicationStatement"
            else say("order-written-after-today", on=m.authored),
            resource_ref(m.resource_type, m.id),
            m.medication,
        )
        for m in late
    )
    return replace(records, medications=medications), named


def _procedures_left_out(records: Records, today: date) -> tuple[Records, tuple[Excluded, ...]]:
    """The chart without the Procedures said done or begun on a date after today, each named:
    the date is a record error (a year typed wrong), as a dose given then is. Read, radiotherapy
    typed a year ahead was the treatment that follows a cord compression (no critical card),
    and a dental exam so typed a recent one. One in preparation is planned: read as is."""
    late = [
        a
        for a in records.activities
        if a.resource_type == "Procedure"
        and a.status != "preparation"
        and a.when is not None
        and a.when > today
    ]
    if not late:
        return records, ()  # the common case: the chart as read
    left_out = {id(a) for a in late}
    named = tuple(
        Excluded(
            "Procedure",
            "performed[x]",
            say("procedure-dated-after-today", what=_as_named(a.code), on=a.when),
            resource_ref("Procedure", a.id),
            a.code,
        )
        for a in late
    )
    kept = tuple(a for a in records.activities if id(a) not in left_out)
    return replace(records, activities=kept), named


def _as_named(code: Concept) -> str:
    """A code as the record names it: its text, else a coding's display, else its code."""
    return code.named() or next((c.code for c in code.codings if c.code), "")


def _doses_given_by(records: Records, as_of: date) -> Records:
    """The chart with each dose dated by a span that runs past as_of (the current month)
    read as given by as_of: its last day, the latest it may have been, is not yet (a dose
    charted '2026-12' on 7 December was given by the 7th)."""
    late = [
        m
        for m in records.medications
        if m.resource_type == "MedicationAdministration" and m.end is not None and m.end > as_of
    ]
    if not late:
        return records  # the common case: the chart as read
    given_by = {id(m) for m in late}
    medications = tuple(
        replace(m, end=max(as_of, m.start or as_of)) if id(m) in given_by else m
        for m in records.medications
    )
    return replace(records, medications=medications)


def _doses_left_out(records: Records, today: date) -> tuple[Records, tuple[Excluded, ...]]:
    """The chart without the doses charted as given after today, and each named: a dose given
    in the future is a record error (a year typed wrong), as a result dated so is. Read, it
    was the last dose ('given 0 days ago', too soon for the next), and its course's dates."""
    late = [
        m
        for m in records.medications
        if m.resource_type == "MedicationAdministration" and m.start is not None and m.start > today
    ]
    if not late:
        return records, ()  # the common case: the chart as read
    left_out = {id(m) for m in late}
    kept = tuple(m for m in records.medications if id(m) not in left_out)
    named = tuple(
        Excluded(
            m.resource_type,
            "effective[x]",
            say("dose-given-after-today", on=m.start),
            resource_ref(m.resource_type, m.id),
            m.medication,
        )
        for m in late
    )
    return replace(records, medications=kept), named
