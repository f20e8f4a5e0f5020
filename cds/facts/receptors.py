"""F4 receptor status: ER, PR and HER2 (the ASCO/CAP 2018/2023 algorithm of clinical-logic §5).

Results are grouped into test events (one specimen, or one date), each event is interpreted, and
the most recent event from a specimen taken at or after metastasis is preferred to the primary.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

from cds.facts.lab_results import result_name
from cds.facts.marker_results import (
    COPIES_HIGH,
    COPIES_LOW,
    PERCENT_LOW_UPTO,
    PERCENT_POSITIVE,
    RATIO_AMPLIFIED,
    MarkerResult,
    SpecimenSite,
    Status,
    ihc_score,
    ihc_texts,
    interpret_her2,
    ish_group,
    result_number,
    value_status,
)
from cds.fhir.records import Excluded, ObservationRecord, Records, resource_ref
from cds.fhir.screening import MARKER_SETS
from cds.said import Said, say
from cds.terminology import Terminology

_ANY_MARKER = frozenset(MARKER_SETS)

# The HER2-negative categories T-DXd eligibility turns on (DESTINY-Breast04/06): a primary
# tumour HER2-low and a metastasis HER2-0 (or the reverse) is a discordance that matters.
_NEGATIVE_CATEGORIES = frozenset({"low", "ultralow", "0"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Receptors:
    her2: MarkerResult | None
    er: MarkerResult | None
    pr: MarkerResult | None
    her2_primary: MarkerResult | None
    er_primary: MarkerResult | None
    pr_primary: MarkerResult | None
    serum_her2_only: bool
    # Whether any ER/PR/HER2 tissue result comes from a specimen at or after metastasis (R13).
    has_metastatic_specimen: bool
    # The dates of tumour-marker results not known to be final (preliminary, status unknown):
    # never read as results, but a biopsy whose results are on their way is no reason to
    # ask for one (R13).
    pending: tuple[date | None, ...] = ()
    # An ER or PR result positive on any specimen at any time, not only the ones in use: a
    # tumour once hormone receptor-positive is not called negative for endocrine therapy (R17).
    hr_ever_positive: bool = False

    @property
    def her2_positive(self) -> bool | None:
        """True or False when the HER2 result in use says so; None while it is unknown or
        equivocal (IHC 2+ awaiting ISH is neither)."""
        if self.her2 is None or self.her2.status in ("unknown", "equivocal"):
            return None
        return self.her2.status == "positive"

    @property
    def hr_positive(self) -> bool | None:
        """ER+ and/or PR+; None unless both are known or one is positive."""
        statuses = [m.status if m else "unknown" for m in (self.er, self.pr)]
        if "positive" in statuses:
            return True
        if all(s == "negative" for s in statuses):
            return False
        return None

    def discordances(self) -> tuple[Said, ...]:
        """Where the metastatic result differs from the primary's (F4; R13 'discordance'):
        positive against negative, or, both HER2-negative, a different HER2-negative category
        (HER2-low on one, HER2-0 on the other), which decides T-DXd since DESTINY-Breast04 -
        ASCO/CAP 2023: distinguishing IHC 0 from 1+ is now clinically relevant."""
        out = list(self._her2_category_discordance())
        for name, met, primary in (
            ("HER2", self.her2, self.her2_primary),
            ("ER", self.er, self.er_primary),
            ("PR", self.pr, self.pr_primary),
        ):
            if (
                met is not None
                and primary is not None
                and met.specimen_site == "metastatic"
                and {met.status, primary.status} == {"positive", "negative"}
            ):
                out.append(
                    say(
                        "discordance",
                        marker=name,
                        primary=primary.status,
                        primary_on=primary.when,
                        metastatic=met.status,
                        metastatic_on=met.when,
                    )
                )
        return tuple(out)

    def _her2_category_discordance(self) -> tuple[Said, ...]:
        met, primary = self.her2, self.her2_primary
        if met is None or primary is None or met.specimen_site != "metastatic":
            return ()
        categories = (met.her2_category, primary.her2_category)
        if met.status != "negative" or primary.status != "negative":
            return ()
        if not set(categories) <= _NEGATIVE_CATEGORIES or categories[0] == categories[1]:
            return ()
        return (
            say(
                "her2-category-discordance",
                primary=primary.scored_category,
                primary_on=primary.when,
                metastatic=met.scored_category,
                metastatic_on=met.when,
            ),
        )


@dataclass(slots=True)
class _Event:
    when: date | None
    refs: list[str]
    specimen: str | None = None
    kinds: set[str] = field(default_factory=set)  # the marker sets it has a result of
    dates: set[date] = field(default_factory=set)
    final: Status | None = None
    ihc: int | None = None
    ihc_status: Status | None = None  # qualitative IHC result without a score
    ihc_text: str = ""
    ish_status: Status | None = None
    ratio: float | None = None
    copies: float | None = None
    ish_on: date | None = None  # the first ISH result's date (of any ISH kind)
    ish_sent: bool = False
    # What each result of the event says (its kind, date and values): a copy of one, sent
    # again under another id, is the same report and joins it, not a test of its own.
    said: list[tuple[object, ...]] = field(default_factory=list)


def _site(when: date | None, metastatic_since: date | None, metastatic: bool) -> SpecimenSite:
    if when is None or not metastatic:
        return "unknown" if when is None else "primary"
    if metastatic_since is None:
        return "unknown"
    return "metastatic" if when >= metastatic_since - timedelta(days=30) else "primary"


def _her2_event(
    events: list[_Event],
    obs: ObservationRecord,
    kind: str,
    w: date | None,
    window_days: int,
    said: tuple[object, ...],
) -> _Event:
    """The testing event a HER2 result belongs to (clinical-logic §3c D13).

    The same specimen is one event. Without a specimen reference, a result joins an event
    without one reported on the same day, or the nearest within `window_days` that has no result
    of its kind yet: a reflex ISH reported days after the IHC completes it, while a second IHC
    (another biopsy) starts an event of its own. A result saying what one already read says,
    on the same day (`said`: the same report sent twice, by two feeds), joins that one's event.
    """
    for ev in events:
        if said in ev.said and ev.specimen == obs.specimen:
            return ev
    if obs.specimen:
        for ev in events:
            if ev.specimen == obs.specimen:
                return ev
        ev = _Event(when=w, refs=[], specimen=obs.specimen)
    elif w is None:
        ev = _Event(when=None, refs=[])
    else:
        near = [
            e
            for e in events
            if e.specimen is None
            and e.when is not None
            and (e.when == w or (kind not in e.kinds and abs(e.when - w).days <= window_days))
        ]
        if near:
            return min(near, key=lambda e: (e.when != w, abs((e.when or w) - w)))
        ev = _Event(when=w, refs=[])
    events.append(ev)
    return ev


def _what_it_says(obs: ObservationRecord, kind: str, w: date | None) -> tuple[object, ...]:
    return (kind, w, obs.value, obs.interpretation, obs.components, obs.notes)


def _markers_oldest_first(
    records: Records, t: Terminology, when: Callable[[ObservationRecord], date | None]
) -> list[tuple[date | None, str, ObservationRecord]]:
    """The chart's HER2, ER and PR results with their kind and date, oldest first, so that a
    reflex result finds the event it completes already there (a stable sort of the markers
    alone: the order sorting the whole chart gave them)."""
    marked: list[tuple[date | None, str, ObservationRecord]] = []
    for obs in records.observations:
        in_sets = t.codes.sets_of(obs.code)
        if in_sets and _ANY_MARKER.isdisjoint(in_sets):
            continue  # most of a chart (labs, vital signs): passed without a call each
        if (kind := marker_kind(obs, t)) is not None:
            marked.append((when(obs), kind, obs))
    marked.sort(key=lambda m: (m[0] is None, m[0] or date.min))
    return marked


def marker_kind(obs: ObservationRecord, t: Terminology) -> str | None:
    """Which tumour marker a result is (its MARKER_SETS value set), or None: by its codes, or
    for a result under a local code or its name alone (a pathology report), by its words. A
    concept in any value set is coded in a known system, which decides (D11)."""
    in_sets = t.codes.sets_of(obs.code)
    if not _ANY_MARKER.isdisjoint(in_sets):
        return next(k for k in MARKER_SETS if k in in_sets)
    if not in_sets and not t.codes.deciding_codes(obs.code):
        return next((k for k in MARKER_SETS if t[k].matches(obs.code)), None)
    return None  # most of a chart: labs, vital signs


def marker_name(o: ObservationRecord, t: Terminology) -> str:
    return result_name(o, next(t[k] for k in MARKER_SETS if t[k].matches(o.code)))


def extract_receptors(
    records: Records,
    t: Terminology,
    *,
    metastatic: bool,
    metastatic_since: date | None,
    event_days: int,
) -> Receptors:
    def when(obs: ObservationRecord) -> date | None:
        if obs.specimen and obs.specimen in records.specimen_dates:
            return records.specimen_dates[obs.specimen]
        return obs.effective

    her2_events: list[_Event] = []
    marker_events: dict[str, list[MarkerResult]] = defaultdict(list)
    serum = False
    for w, kind, obs in _markers_oldest_first(records, t, when):
        if kind == "her2-serum":
            serum = True
        elif kind.startswith("her2"):
            said = _what_it_says(obs, kind, w)
            event = _her2_event(her2_events, obs, kind, w, event_days, said)
            _add_to_event(event, obs, kind, w, t, said)
        else:
            result = _er_pr_result(obs, kind, w, _site(w, metastatic_since, metastatic), t)
            if result is not None:
                marker_events[result.marker].append(result)
    her2_results = [_her2_result(ev, metastatic_since, metastatic) for ev in her2_events]
    her2, her2_primary = _chosen(her2_results)
    if her2 is None:
        her2 = _her2_diagnosis(records, t)
    er, er_primary = _chosen(marker_events["ER"])
    pr, pr_primary = _chosen(marker_events["PR"])
    every = her2_results + marker_events["ER"] + marker_events["PR"]
    return Receptors(
        her2=her2,
        er=er,
        pr=pr,
        her2_primary=her2_primary,
        er_primary=er_primary,
        pr_primary=pr_primary,
        serum_her2_only=serum and not her2_results,
        has_metastatic_specimen=any(r.specimen_site == "metastatic" for r in every),
        pending=tuple(when(o) for o in pending_markers(records, t)),
        hr_ever_positive=any(
            r.status == "positive" for r in (*marker_events["ER"], *marker_events["PR"])
        ),
    )


def pending_markers(records: Records, t: Terminology) -> tuple[ObservationRecord, ...]:
    """Tumour-marker results not known to be final: preliminary, or of status 'unknown'."""
    return tuple(o for o in records.preliminary if any(t[k].matches(o.code) for k in MARKER_SETS))


def pending_named(records: Records, t: Terminology) -> tuple[Excluded, ...]:
    """Each pending tumour-marker result, named (R0b): the checks use final results only."""
    return tuple(
        Excluded(
            "Observation",
            "status",
            say("marker-not-final", what=marker_name(o, t), on=o.effective, status=o.status),
            resource_ref("Observation", o.id),
            o.code,
        )
        for o in pending_markers(records, t)
    )


def _her2_diagnosis(records: Records, t: Terminology) -> MarkerResult | None:
    """With no HER2 test result in the chart, a breast cancer diagnosis coded as HER2-positive
    or HER2-negative (SNOMED 427685000 / 431396003: terminology.md §1.4, 'as value or
    Condition.code'), or one sent as text only that says so (D11). The newest one decides; a
    test result always comes first. Its IHC score is unknown, so it never makes a HER2-low
    card on its own."""
    positive, negative = t["her2-diagnosis-positive"], t["her2-diagnosis-negative"]
    # One that reads as both (a conversion written out) says neither.
    found = [c for c in records.conditions if positive.matches(c.code) != negative.matches(c.code)]
    if not found:
        return None
    condition = max(found, key=lambda c: c.date or date.min)
    status: Status = "positive" if positive.matches(condition.code) else "negative"
    return MarkerResult(
        marker="HER2",
        status=status,
        when=condition.date,
        specimen_site="unknown",
        derived=False,
        refs=(f"Condition/{condition.id}",),
        her2_category="positive" if status == "positive" else "unknown",
        from_diagnosis=True,
    )


def _add_to_event(
    ev: _Event,
    obs: ObservationRecord,
    kind: str,
    w: date | None,
    t: Terminology,
    said: tuple[object, ...],
) -> None:
    """One HER2 result (interpretation, IHC, ISH, ratio or copies) into its testing event."""
    ev.refs.append(f"Observation/{obs.id}")
    ev.kinds.add(kind)
    ev.said.append(said)
    if w is not None:
        ev.dates.add(w)
        ev.when = min(ev.when or w, w)
    if kind == "her2-interpretation":
        ev.final = value_status(obs.value, obs.code, t) or ev.final
        ev.ihc = ev.ihc if ev.ihc is not None else ihc_score(obs)
        return
    if kind == "her2-ihc":
        score = ihc_score(obs)
        ev.ihc = score if score is not None else ev.ihc
        ev.ihc_text = " ".join(ihc_texts(obs))
        if score is None:
            ev.ihc_status = value_status(obs.value, obs.code, t)
        return
    # An ISH result: qualitative, ratio or copy number. The first one dated dates the ISH.
    ev.ish_sent = True
    if w is not None and (ev.ish_on is None or w < ev.ish_on):
        ev.ish_on = w
    if kind == "her2-ish":
        ev.ish_status = value_status(obs.value, obs.code, t)
    elif kind == "her2-ish-ratio":
        ev.ratio = result_number(obs.value, (RATIO_AMPLIFIED,))
    else:
        ev.copies = result_number(obs.value, (COPIES_LOW, COPIES_HIGH))


def _er_pr_result(
    obs: ObservationRecord, kind: str, w: date | None, site: SpecimenSite, t: Terminology
) -> MarkerResult | None:
    """An ER or PR result: a percent read by ASCO/CAP 2020 (>= 1% of nuclei is positive,
    1-10% "low positive"), else its coded status; a percent without a number is no result."""
    marker: Literal["ER", "PR"] = "ER" if kind.startswith("er") else "PR"
    if kind.endswith("percent"):
        pct = result_number(obs.value, (PERCENT_POSITIVE, PERCENT_LOW_UPTO))
        if pct is None:
            return None
        status: Status = "positive" if pct >= PERCENT_POSITIVE else "negative"
    else:
        pct = None
        status = value_status(obs.value, obs.code, t) or "unknown"
    return MarkerResult(
        marker=marker,
        status=status,
        when=w,
        specimen_site=site,
        derived=pct is not None,
        refs=(f"Observation/{obs.id}",),
        percent=pct,
    )


def _her2_result(ev: _Event, metastatic_since: date | None, metastatic: bool) -> MarkerResult:
    """A HER2 testing event interpreted by the ASCO/CAP algorithm (interpret_her2)."""
    status, category, derived, reflex, needs_ihc = interpret_her2(
        final=ev.final,
        ihc=ev.ihc,
        ihc_status=ev.ihc_status,
        ish_qualitative=ev.ish_status,
        group=ish_group(ev.ratio, ev.copies),
        ihc_text=ev.ihc_text,
    )
    return MarkerResult(
        marker="HER2",
        status=status,
        when=ev.when,
        specimen_site=_site(ev.when, metastatic_since, metastatic),
        derived=derived,
        refs=tuple(ev.refs),
        report_dates=tuple(sorted(ev.dates)),
        her2_category=category,
        ihc_score=ev.ihc,
        ish_group=ish_group(ev.ratio, ev.copies),
        needs_reflex_ish=reflex,
        needs_concurrent_ihc=needs_ihc,
        ish_unread=_ish_unread(ev) if reflex and ev.ish_sent else None,
    )


def _ish_unread(ev: _Event) -> Said:
    """Why an ISH result on record gives no reading (§5): a dual-probe group needs both the
    ratio and the copy number; 'equivocal' is a pre-2018 category; or no value is readable."""
    if ev.ish_status == "equivocal":
        why = say("ish-equivocal")
    elif ev.ish_status == "unknown":
        why = say("ish-inconclusive")
    elif ev.ratio is not None and ev.copies is None:
        why = say("ish-ratio-only", ratio=ev.ratio)
    elif ev.copies is not None and ev.ratio is None:
        why = say("ish-copies-only", copies=ev.copies)
    else:
        why = say("ish-no-value")
    return say("her2-ish-unread", when=ev.ish_on, why=why)


def _chosen(results: list[MarkerResult]) -> tuple[MarkerResult | None, MarkerResult | None]:
    """(result used, latest primary) - metastatic first, then most recent (F4)."""

    def latest(rs: list[MarkerResult]) -> MarkerResult | None:
        # Within one date a percent result (derived) outranks a qualitative one; otherwise
        # the most recent; undated results rank last.
        return max(rs, key=lambda r: (r.when or date.min, r.percent is not None), default=None)

    met = latest([r for r in results if r.specimen_site == "metastatic"])
    primary = latest([r for r in results if r.specimen_site != "metastatic"])
    return (met or primary), primary
