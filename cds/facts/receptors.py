"""F4 receptor status: ER, PR and HER2 (the ASCO/CAP 2018/2023 algorithm of clinical-logic §5).

Results are grouped into test events (one specimen, or one date), each event is interpreted, and
the most recent event from a specimen taken at or after metastasis is preferred to the primary.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

from cds.fhir.records import ObservationRecord, Records, Value
from cds.fhir.screening import MARKER_SETS
from cds.said import Said, say
from cds.terminology import Concept, Terminology

_ANY_MARKER = frozenset(MARKER_SETS)

Status = Literal["positive", "negative", "equivocal", "unknown"]
Her2Category = Literal["positive", "equivocal", "low", "ultralow", "0", "unknown"]
SpecimenSite = Literal["metastatic", "primary", "unknown"]

# An IHC score 0-3, optionally followed by '+'; never the "2" of "HER2", nor the first digit of
# "10%" or "2.0".
_IHC_SCORE = re.compile(r"(?<![\w.])([0-3])(?:\s*\+|(?![\w.%]))")
_ULTRALOW = re.compile(r"ultralow|ultra-low|faint|incomplete|barely perceptible")
_NO_STAINING = re.compile(r"no (membrane )?staining|null|absent staining|without staining")

# The cut-offs each number is judged by - ASCO/CAP 2018 ISH groups (HER2/CEP17 ratio 2.0, HER2
# copies 4 and 6), ASCO/CAP 2020 ER/PR (>= 1% positive, 1-10% low positive) - once, for the
# interpretation and for reading a bound ("<1%") against them.
_RATIO_AMPLIFIED = 2.0
_COPIES_LOW, _COPIES_HIGH = 4.0, 6.0
_PERCENT_POSITIVE, _PERCENT_LOW_UPTO = 1.0, 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkerResult:
    marker: Literal["HER2", "ER", "PR"]
    status: Status
    when: date | None
    specimen_site: SpecimenSite
    derived: bool
    refs: tuple[str, ...]
    # Every date a result of this testing event was reported on (D13: a reflex ISH can follow
    # the IHC by days); the card names them.
    report_dates: tuple[date, ...] = ()
    her2_category: Her2Category | None = None
    ihc_score: int | None = None
    ish_group: int | None = None
    percent: float | None = None
    # Findings that need action before status is known (R14a, R14b).
    needs_reflex_ish: bool = False
    needs_concurrent_ihc: bool = False

    @property
    def ihc_words(self) -> Said:
        """'IHC 0', 'IHC 2+', or 'no IHC score', as a pathologist writes it."""
        if self.ihc_score is None:
            return say("ihc-none")
        return say("ihc-positive", score=self.ihc_score) if self.ihc_score else say("ihc-0")

    @property
    def reported(self) -> Said | date | None:
        """The date(s) the result stands on, as the card says them (D13)."""
        if len(self.report_dates) > 1:
            days = " and ".join(d.isoformat() for d in self.report_dates)
            return say("one-testing-event", days=days)
        return self.when

    @property
    def low_positive(self) -> bool:
        """ER/PR 1-10% (ASCO/CAP 2020 'low positive')."""
        return self.percent is not None and _PERCENT_POSITIVE <= self.percent <= _PERCENT_LOW_UPTO


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

    @property
    def her2_positive(self) -> bool | None:
        if self.her2 is None or self.her2.status == "unknown":
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
        out = []
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


def _value_status(value: Value, code: Concept, t: Terminology) -> Status | None:
    if value.concept is not None:
        if t["result-positive"].matches_code(value.concept):
            return "positive"
        if t["result-negative"].matches_code(value.concept):
            return "negative"
        if t["er-negative-ichom"].matches_code(value.concept) and any(
            c.code == "445028008" for c in code.codings
        ):
            return "negative"
        if t["result-equivocal"].matches_code(value.concept):
            return "equivocal"
        if t["result-unknown"].matches_code(value.concept):
            return "unknown"
    for text in value.texts():
        low = text.lower()
        if "equivocal" in low or "borderline" in low:
            return "equivocal"
        if "not amplified" in low or "non-amplified" in low or "negative" in low:
            return "negative"
        if "amplified" in low or "positive" in low:
            return "positive"
        if "inconclusive" in low or "indeterminate" in low:
            return "unknown"
    return None


_STRING_NUMBER = re.compile(r"(<=|>=|≤|≥|<|>)?\s*(\d+(?:\.\d+)?)")
_SYMBOLS = {"≤": "<=", "≥": ">="}


def _number(value: Value, cutoffs: tuple[float, ...]) -> float | None:
    """The number a result gives. A bound ("<1%", "< 2.0", as results below a cut-off are
    reported) stands for a number only when the true value lies beyond every cut-off it is
    judged by, and then for one on that side - never the cut-off itself: read as 2.0, "< 2.0"
    made a HER2-negative ratio positive. A bound with a cut-off inside it ("<10%" against 1%)
    gives nothing."""
    comparator: str | None = None
    if value.quantity is not None:
        number, comparator = value.quantity.value, value.quantity.comparator
    elif value.ratio is not None:
        number = value.ratio
    elif value.integer is not None:
        number = float(value.integer)
    elif value.string and (m := _STRING_NUMBER.search(value.string)):
        number, comparator = float(m.group(2)), m.group(1)
        comparator = _SYMBOLS.get(comparator or "", comparator)
    else:
        return None
    if comparator is None:
        return number
    lowest, highest = min(cutoffs), max(cutoffs)
    if comparator in ("<", "<="):
        if number < lowest:
            return number  # beyond every cut-off, on the same side as the true value
        if comparator == "<" and number == lowest:
            return number / 2  # "< 2.0": any number under 2.0 is judged alike
    elif number > highest:
        return number
    elif comparator == ">" and number == highest:
        return number * 2
    return None


def _ihc_texts(obs: ObservationRecord) -> list[str]:
    texts = list(obs.value.texts())
    if obs.value.integer is not None:
        texts.insert(0, str(obs.value.integer))
    texts += [i.all_text() for i in obs.interpretation]
    for comp in obs.components:
        texts += list(comp.value.texts())
        if comp.value.integer is not None:
            texts.append(str(comp.value.integer))
    texts += list(obs.notes)
    return texts


def ihc_score(obs: ObservationRecord) -> int | None:
    """The IHC score from coded text, string, integer, interpretation, component or note."""
    for text in _ihc_texts(obs):
        m = _IHC_SCORE.search(text)
        if m:
            return int(m.group(1))
    return None


def ish_group(ratio: float | None, copies: float | None) -> int | None:
    """ASCO/CAP 2018 dual-probe ISH groups 1-5; None without both numbers."""
    if ratio is None or copies is None:
        return None
    if ratio >= _RATIO_AMPLIFIED:
        return 1 if copies >= _COPIES_LOW else 2
    if copies >= _COPIES_HIGH:
        return 3
    if copies >= _COPIES_LOW:
        return 4
    return 5


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


def interpret_her2(
    *,
    final: Status | None,
    ihc: int | None,
    ihc_status: Status | None,
    ish_qualitative: Status | None,
    group: int | None,
    ihc_text: str = "",
) -> tuple[Status, Her2Category, bool, bool, bool]:
    """(status, category, derived, needs reflex ISH, needs concurrent IHC) per §5."""
    low_category = _low_category(ihc, ihc_text)
    if final is not None and final != "unknown":
        # Step 1: a reported interpretation wins; keep the IHC score for HER2-low.
        category: Her2Category = low_category
        if final == "positive":
            category = "positive"
        elif final == "equivocal":
            category = "equivocal"
        return final, category, False, False, False

    amplified: bool | None = None
    if group is not None:
        amplified = {1: True, 5: False}.get(group)
    elif ish_qualitative in ("positive", "negative"):
        amplified = ish_qualitative == "positive"
    ish_known = group is not None or ish_qualitative in ("positive", "negative")
    ish_unusual = group in (2, 3, 4)

    if ihc is None and ihc_status is not None:
        # A qualitative IHC result with no score: positive counts as 3+, equivocal as 2+.
        ihc = {"positive": 3, "equivocal": 2}.get(ihc_status)
        if ihc_status == "negative" and not ish_known:
            return "negative", "unknown", True, False, False
    if ihc is not None and amplified:
        # ISH group 1 (or an amplified qualitative ISH) is positive whatever the IHC (C7).
        return "positive", "positive", True, False, False
    if ihc == 3:
        return "positive", "positive", True, False, False
    if ihc == 2:
        if not ish_known:
            return "equivocal", "equivocal", True, True, False
        if group == 3:
            return "positive", "positive", True, False, False  # C7: group 3 with IHC 2+
        # Group 5, a non-amplified qualitative ISH, or groups 2 and 4 (C7: negative after the
        # lab's recount by a second observer): HER2-low.
        return "negative", "low", True, False, False
    if ihc in (0, 1):
        # Groups 2-4 with IHC 0/1+ are negative (ASCO/CAP 2018, with a lab comment).
        return "negative", low_category, True, False, False
    # No IHC.
    if ish_unusual:
        return "unknown", "unknown", True, False, True
    if amplified is True:
        return "positive", "positive", True, False, False
    if amplified is False:
        return "negative", "unknown", True, False, False
    return "unknown", "unknown", True, False, False


def _low_category(ihc: int | None, ihc_text: str) -> Her2Category:
    """The HER2-negative category an IHC score gives: 1+ and 2+ low; 0 with faint, incomplete
    membrane staining ultralow, else 0 (ASCO/CAP 2023; DESTINY-Breast06)."""
    if ihc in (1, 2):
        return "low"
    if ihc == 0:
        low = ihc_text.lower()
        ultralow = bool(_ULTRALOW.search(low)) and not _NO_STAINING.search(low)
        return "ultralow" if ultralow else "0"
    return "unknown"


def _site(when: date | None, metastatic_since: date | None, metastatic: bool) -> SpecimenSite:
    if when is None or not metastatic:
        return "unknown" if when is None else "primary"
    if metastatic_since is None:
        return "unknown"
    return "metastatic" if when >= metastatic_since - timedelta(days=30) else "primary"


def _her2_event(
    events: list[_Event], obs: ObservationRecord, kind: str, w: date | None, window_days: int
) -> _Event:
    """The testing event a HER2 result belongs to (clinical-logic §3c D13).

    The same specimen is one event. Without a specimen reference, a result joins an event
    without one reported on the same day, or the nearest within `window_days` that has no result
    of its kind yet: a reflex ISH reported days after the IHC completes it, while a second IHC
    (another biopsy) starts an event of its own.
    """
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
    marked: list[tuple[date | None, str, ObservationRecord]] = []
    for obs in records.observations:
        in_sets = t.codes.sets_of(obs.code)
        if _ANY_MARKER.isdisjoint(in_sets):
            continue  # most of a chart: labs, vital signs
        kind = next((k for k in MARKER_SETS if k in in_sets), None)  # coded membership only
        if kind is not None:
            marked.append((when(obs), kind, obs))
    # Oldest first, so that a reflex result finds the event it completes already there (a
    # stable sort of the markers alone: the order sorting the whole chart gave them).
    marked.sort(key=lambda m: (m[0] is None, m[0] or date.min))
    for w, kind, obs in marked:
        if kind == "her2-serum":
            serum = True
        elif kind.startswith("her2"):
            _add_to_event(_her2_event(her2_events, obs, kind, w, event_days), obs, kind, w, t)
        else:
            result = _er_pr_result(obs, kind, w, _site(w, metastatic_since, metastatic), t)
            if result is not None:
                marker_events[result.marker].append(result)
    her2_results = [_her2_result(ev, metastatic_since, metastatic) for ev in her2_events]
    her2, her2_primary = _chosen(her2_results)
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
    )


def _add_to_event(
    ev: _Event, obs: ObservationRecord, kind: str, w: date | None, t: Terminology
) -> None:
    """One HER2 result (interpretation, IHC, ISH, ratio or copies) into its testing event."""
    ev.refs.append(f"Observation/{obs.id}")
    ev.kinds.add(kind)
    if w is not None:
        ev.dates.add(w)
        ev.when = min(ev.when or w, w)
    if kind == "her2-interpretation":
        ev.final = _value_status(obs.value, obs.code, t) or ev.final
        ev.ihc = ev.ihc if ev.ihc is not None else ihc_score(obs)
    elif kind == "her2-ihc":
        score = ihc_score(obs)
        ev.ihc = score if score is not None else ev.ihc
        ev.ihc_text = " ".join(_ihc_texts(obs))
        if score is None:
            ev.ihc_status = _value_status(obs.value, obs.code, t)
    elif kind == "her2-ish":
        ev.ish_status = _value_status(obs.value, obs.code, t)
    elif kind == "her2-ish-ratio":
        ev.ratio = _number(obs.value, (_RATIO_AMPLIFIED,))
    else:
        ev.copies = _number(obs.value, (_COPIES_LOW, _COPIES_HIGH))


def _er_pr_result(
    obs: ObservationRecord, kind: str, w: date | None, site: SpecimenSite, t: Terminology
) -> MarkerResult | None:
    """An ER or PR result: a percent read by ASCO/CAP 2020 (>= 1% of nuclei is positive,
    1-10% "low positive"), else its coded status; a percent without a number is no result."""
    marker: Literal["ER", "PR"] = "ER" if kind.startswith("er") else "PR"
    if kind.endswith("percent"):
        pct = _number(obs.value, (_PERCENT_POSITIVE, _PERCENT_LOW_UPTO))
        if pct is None:
            return None
        status: Status = "positive" if pct >= _PERCENT_POSITIVE else "negative"
    else:
        pct = None
        status = _value_status(obs.value, obs.code, t) or "unknown"
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
    )


def _chosen(results: list[MarkerResult]) -> tuple[MarkerResult | None, MarkerResult | None]:
    """(result used, latest primary) - metastatic first, then most recent (F4)."""

    def latest(rs: list[MarkerResult]) -> MarkerResult | None:
        # Within one date a percent result (derived) outranks a qualitative one; otherwise
        # the most recent; undated results rank last.
        return max(rs, key=lambda r: (r.when or date.min, r.percent is not None), default=None)

    met = latest([r for r in results if r.specimen_site == "metastatic"])
    primary = latest([r for r in results if r.specimen_site != "metastatic"])
    return (met or primary), primary
