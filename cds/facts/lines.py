"""F6 lines of HER2-targeted therapy and F7 progression, with the confidence of each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from cds.facts.disease import Disease
from cds.facts.medications import (
    HER2_ANTIBODY_CLASSES,
    HER2_CLASSES,
    CourseEnd,
    Exposure,
    Medications,
    StopReason,
    course_end,
)
from cds.facts.progression import CnsProgression, Progression, progression_dates, progression_of
from cds.fhir.records import Records
from cds.said import Said, say
from cds.terminology import MedClass, Terminology

Confidence = Literal["high", "medium", "low"]

PARTNER_CLASSES: frozenset[MedClass] = frozenset(
    {
        "TAXANE",
        "CAPE",
        "VINORELBINE",
        "OTHER_CHEMO",
        "ENDOCRINE_AI",
        "ENDOCRINE_SERD",
        "ENDOCRINE_SERM",
        "CDK46",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Line:
    number: int
    anchor: frozenset[str]  # HER2 agents (ingredients)
    drugs: frozenset[str]
    start: date | None
    end: date | None
    active: bool
    end_reason: StopReason | None
    refs: tuple[str, ...]
    # Its HER2 records of status 'unknown' with no end date, none in use: whether the line goes
    # on is not known (never 'ended' on the day it started). The last such line is taken as
    # current - no next-line card without progression - and its records are named.
    unknown_refs: tuple[str, ...] = ()
    # Ended for progression recorded without a date: `end` is the next line's start, by which
    # it had ended.
    end_by_next: bool = False
    # `end` as the card shows it: as charted, where its record charted it by month ('2026-11').
    end_shown: date | str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LineHistory:
    lines: tuple[Line, ...]
    adjuvant_her2: CourseEnd
    # Trastuzumab-based (or T-DM1) (neo)adjuvant therapy ended ≤12 months before metastasis
    # (ASCO Rec 5.0; C6), and within the Enhertu label's 6 months.
    adjuvant_within_12_months: bool | None
    adjuvant_within_label_window: bool | None
    progression: Progression
    # Evidence of progression on the last line, and, apart from it, other findings about how it
    # ended (stopped for toxicity, stopped with no reason): never shown as progression (C9).
    progression_reasons: tuple[Said, ...]
    progression_refs: tuple[str, ...]
    confidence: Confidence
    findings: tuple[Said, ...] = ()
    cns_progression: CnsProgression | None = None
    # Which dates dated the metastatic setting when the records disagree (D14).
    setting_conflicts: tuple[Said, ...] = ()

    @property
    def metastatic_her2_regimens(self) -> int:
        """Completed anti-HER2 regimens in the metastatic setting, for label criteria (C6, D16).

        A line counts once it has ended (not for toxicity alone), or once progression on it is
        documented; the current line, still working, is not yet a prior regimen (Tukysa label:
        at least one prior anti-HER2 regimen in the metastatic setting).
        """
        ended = sum(1 for line in self._ended() if line.anchor and line.end_reason != "toxicity")
        progressing = self.current is not None and self.progression == "high"
        return ended + int(progressing)

    @property
    def current(self) -> Line | None:
        """The last line while it goes on, or may (its records of unknown status)."""
        if self.lines and (self.lines[-1].active or self.lines[-1].unknown_refs):
            return self.lines[-1]
        return None

    def _ended(self) -> list[Line]:
        """The lines over: not in use, and not the current one."""
        current = self.current
        return [line for line in self.lines if not line.active and line is not current]

    @property
    def last(self) -> Line | None:
        return self.lines[-1] if self.lines else None

    def next_line_number(self) -> int:
        """The metastatic line a new regimen would be: ended lines, plus one for early relapse."""
        ended = sum(1 for line in self._ended() if line.end_reason != "toxicity")
        # A current line with documented progression is over as far as sequencing goes.
        progressing = self.current is not None and self.progression == "high"
        return ended + int(progressing) + 1 + (1 if self.adjuvant_within_12_months else 0)


def by_setting(
    exposures: list[Exposure], tmet: date | None, t: Terminology, cutoff_days: int, group_days: int
) -> tuple[list[Exposure], list[Exposure]]:
    """(neo)adjuvant and metastatic-setting exposures (F6.1, §3c D14).

    Started more than `cutoff_days` before the metastatic setting, or recorded with curative
    intent, is (neo)adjuvant - unless its regimen is still active: a regimen that goes on is
    never an ended adjuvant one (D14), so every drug started with an active one stays with it.
    """
    early: list[Exposure] = []
    metastatic: list[Exposure] = []
    for e in exposures:
        before = (
            tmet is not None
            and e.start is not None
            and e.start < tmet - timedelta(days=cutoff_days)
        )
        (early if before or _curative(e, t) else metastatic).append(e)
    going_on = [e for e in early if e.active and not _curative(e, t)]
    if not going_on:
        return early, metastatic
    window = timedelta(days=group_days)
    moved = [
        e
        for e in early
        if not _curative(e, t)
        and any(
            e.start is not None and a.start is not None and abs(e.start - a.start) <= window
            for a in going_on
        )
    ]
    return [e for e in early if e not in moved], metastatic + moved


def regimens_of(exposures: list[Exposure], group_days: int) -> list[list[Exposure]]:
    """Drugs starting within `group_days` of a regimen's first drug join that regimen (F6.2)."""
    regimens: list[list[Exposure]] = []
    for e in sorted(exposures, key=lambda x: x.start or date.min):
        if regimens:
            first = regimens[-1][0].start
            if e.start is None or first is None or e.start - first <= timedelta(days=group_days):
                regimens[-1].append(e)
                continue
        regimens.append([e])
    return regimens


@dataclass(frozen=True, slots=True, kw_only=True)
class Setting:
    """When the metastatic setting began, from every piece of evidence (clinical-logic §3c D14).

    A metastasis Condition is often entered late. Therapy given only for metastatic disease
    (tucatinib, lapatinib, margetuximab, T-DXd, neratinib with capecitabine) dates the setting no
    later than its start, unless the record states curative intent; and a regimen still active
    is never an ended (neo)adjuvant one. `conflicts` says on the card which dates were used.
    """

    date: date | None
    conflicts: tuple[Said, ...] = ()
    refs: tuple[str, ...] = ()


def _curative(e: Exposure, t: Terminology) -> bool:
    intent = e.record.treatment_intent
    return intent is not None and t["treatment-intent-curative"].matches_code(intent)


def metastatic_setting(
    meds: Medications,
    disease: Disease,
    t: Terminology,
    *,
    agents: tuple[str, ...],
    paired: tuple[tuple[str, str], ...],
    group_days: int,
) -> Setting:
    recorded = disease.metastatic_date
    given = [e for e in meds.given() if e.start is not None and not _curative(e, t)]
    starts = {e.ingredient: e.start for e in sorted(given, key=lambda x: x.start or date.min)}
    evidence: list[Exposure] = [e for e in given if e.ingredient in agents]
    for drug, partner in paired:
        partner_start = starts.get(partner)
        evidence += [
            e
            for e in given
            if e.ingredient == drug
            and partner_start is not None
            and e.start is not None
            and abs(e.start - partner_start) <= timedelta(days=group_days)
        ]
    first = min(evidence, key=lambda e: e.start or date.max, default=None)
    if first is None or first.start is None:
        return Setting(date=recorded)
    if recorded is not None and recorded <= first.start:
        return Setting(date=recorded)
    before = (
        say("before-first-metastasis", when=recorded)
        if recorded is not None
        else say("no-metastasis-date")
    )
    conflict = say(
        "setting-from-therapy",
        when=first.start,
        drug=first.ingredient,
        ref=first.ref,
        before=before,
    )
    return Setting(date=first.start, conflicts=(conflict,), refs=(first.ref,))


def extract_lines(
    meds: Medications,
    disease: Disease,
    records: Records,
    t: Terminology,
    *,
    as_of: date,
    group_days: int,
    adjuvant_cutoff_days: int,
    adjuvant_window_days: int,
    adjuvant_label_days: int,
    brain_window_days: int,
    setting: Setting,
) -> LineHistory:
    tmet = setting.date
    anchors = [e for e in meds.given() if e.med_class in HER2_CLASSES | PARTNER_CLASSES]
    adjuvant, metastatic = by_setting(anchors, tmet, t, adjuvant_cutoff_days, group_days)

    evidence = progression_dates(meds, disease, records, t)
    lines = _lines(_grouped(regimens_of(metastatic, group_days), evidence))
    adjuvant_her2, within, within_label = _adjuvant_windows(
        adjuvant, tmet, bool(meds.received), adjuvant_window_days, adjuvant_label_days
    )
    documented = documented_sites(setting, disease, adjuvant_cutoff_days)
    progression, why, refs, findings, cns = progression_of(
        tuple(lines),
        disease,
        records,
        t,
        brain_window_days=brain_window_days,
        documented=documented,
    )
    confidence: Confidence = "high"
    if tmet is None or setting.conflicts:
        confidence = "low"
    elif any(not line.active and line.end_reason is None for line in lines[:-1]):
        confidence = "medium"  # a line changed with no documented reason (F7 MEDIUM)
    return LineHistory(
        lines=tuple(lines),
        adjuvant_her2=adjuvant_her2,
        adjuvant_within_12_months=within,
        adjuvant_within_label_window=within_label,
        progression=progression,
        progression_reasons=why,
        progression_refs=refs,
        confidence=confidence,
        findings=findings,
        cns_progression=cns,
        setting_conflicts=setting.conflicts,
    )


_Group = tuple[list[Exposure], set[str], date | None, date | None, bool]  # members, HER2 agents,
# closed (ended by documented progression on this date), opened (split off by it on this date),
# closed by the next regimen's start (its progression recorded without a date)


def _grouped(regimens: list[list[Exposure]], evidence: list[date]) -> list[_Group]:
    """F6.3/F6.4: a regimen is a new line only if it brings a HER2 agent the line did not have.
    Dropping the chemotherapy partner, adding endocrine therapy, switching formulation or
    biosimilar (one ingredient), or swapping taxanes all stay within the line - unless
    progression was documented first: then a change of partner or of HER2 drugs is a new line
    even if trastuzumab continues (C6)."""
    grouped: list[list[Exposure]] = []
    anchor_sets: list[set[str]] = []
    closed: list[date | None] = []
    by_next: list[bool] = []  # closed by the next regimen's start (an undated stop)
    opened: list[date | None] = []
    for regimen in regimens:
        her2 = {e.ingredient for e in regimen if e.med_class in HER2_CLASSES}
        if grouped and (not her2 or her2 <= anchor_sets[-1]):
            line_start = min((e.start for e in grouped[-1] if e.start), default=None)
            new_start = min((e.start for e in regimen if e.start), default=None)
            changed = {e.ingredient for e in regimen} - {e.ingredient for e in grouped[-1]}
            seen = [
                d
                for d in evidence
                if line_start is not None
                and new_start is not None
                and line_start + timedelta(days=14) < d <= new_start + timedelta(days=14)
            ]
            undated = not seen and _stopped_undated(grouped[-1], new_start)
            if not ((seen or undated) and changed):
                grouped[-1].extend(regimen)
                continue
            # The HER2 antibodies that continue through the change belong to the new line too
            # (or may: of unknown status).
            carried = [
                e
                for e in grouped[-1]
                if e.ingredient in anchor_sets[-1] and (e.active or e.status_unknown)
            ]
            closed[-1] = min(seen) if seen else new_start
            by_next[-1] = not seen
            regimen = [*regimen, *carried]
            her2 = her2 | {e.ingredient for e in carried}
            opened.append(new_start)
        else:
            opened.append(None)
        grouped.append(list(regimen))
        anchor_sets.append(her2)
        closed.append(None)
        by_next.append(False)
    # D15: chemotherapy alone (before any HER2 agent) is not a line of HER2-targeted therapy:
    # HER2-positive disease treated so far with chemotherapy only still needs its first line.
    return [
        (grouped[i], anchor_sets[i], closed[i], opened[i], by_next[i])
        for i, anchor in enumerate(anchor_sets)
        if anchor
    ]


def _stopped_undated(members: list[Exposure], new_start: date | None) -> bool:
    """A member stopped for documented progression with no recorded end (an order stopped,
    a statement with one date): it stopped some day after it started, so a regimen changing
    the drugs after that start follows the progression (C6), as a dated stop would."""
    return new_start is not None and any(
        e.stop_reason == "progression"
        and not e.end_recorded
        and not e.active
        and e.start is not None
        and e.start < new_start
        for e in members
    )


def _lines(groups: list[_Group]) -> list[Line]:
    """Each group as a numbered line: active while a HER2 member is, ended by documented
    progression or by its members' last doses, with the stop reason they give."""
    lines = []
    for i, (members, anchor, closed_on, opened_on, by_next) in enumerate(groups, start=1):
        her2_members = [e for e in members if e.ingredient in anchor] or members
        active = closed_on is None and any(e.active for e in her2_members)
        unknown = () if active or closed_on else tuple(_unknown_refs(her2_members))
        ends = [e.last for e in her2_members if e.last is not None]
        reasons = [e.stop_reason for e in her2_members if e.stop_reason]
        reason: StopReason | None = "progression" if closed_on is not None else None
        candidates: tuple[StopReason, ...] = ("progression", "toxicity", "other")
        for candidate in candidates:
            if reason is None and candidate in reasons:
                reason = candidate
        starts = [e.start for e in members if e.start is not None]
        end = closed_on if closed_on is not None else (max(ends) if ends else None)
        latest = max((e for e in her2_members if e.last == end), key=_charted, default=None)
        shown = latest.last_shown if latest is not None and closed_on is None else end
        lines.append(
            Line(
                number=i,
                anchor=frozenset(anchor),
                drugs=frozenset(e.ingredient for e in members),
                start=opened_on or (min(starts) if starts else None),
                end=None if active or unknown else end,
                active=active,
                end_reason=None if active else reason,
                refs=tuple(dict.fromkeys(e.ref for e in members)),
                unknown_refs=unknown,
                end_by_next=by_next and not active,
                end_shown=None if active or unknown else shown,
            )
        )
    return lines


def _charted(e: Exposure) -> bool:
    """Of the records ending on the same day, one charted to the day shows it before one
    charted by its month."""
    return e.record.end_charted is None


def _unknown_refs(her2_members: list[Exposure]) -> dict[str, None]:
    """The records of unknown status a line's HER2 drugs may go on under (none in use)."""
    return dict.fromkeys(e.ref for e in her2_members if e.status_unknown)


def _adjuvant_windows(
    adjuvant: list[Exposure],
    tmet: date | None,
    received: bool,
    window_days: int,
    label_days: int,
) -> tuple[CourseEnd, bool | None, bool | None]:
    """Any trastuzumab-based (neo)adjuvant therapy, T-DM1 included (KATHERINE; C6): when it
    ended, and whether the recurrence came within ASCO's 12 months (Rec 5.0) and within the
    Enhertu label's window. Unknown (None) when the dates are: a course whose end is not
    recorded may have gone on past its last known day."""
    course = course_end([e for e in adjuvant if e.med_class in HER2_ANTIBODY_CLASSES])
    if course.last is None and tmet is not None and received:
        return course, False, False
    return (
        course,
        course.within(tmet, window_days),
        course.within(tmet, label_days),
    )


def documented_sites(setting: Setting, disease: Disease, cutoff_days: int) -> frozenset[str]:
    """D14: when therapy dates the setting before the first metastasis record, the sites of
    that record document the disease being treated: they are not new sites on the current
    line."""
    recorded = disease.metastatic_date
    if not setting.conflicts or recorded is None:
        return frozenset()
    return frozenset(
        site
        for site, onset, _ in disease.site_onsets
        if onset is not None and onset <= recorded + timedelta(days=cutoff_days)
    )
