"""F6 lines of HER2-targeted therapy and F7 progression, with the confidence of each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from cds.facts.disease import Disease
from cds.facts.medications import HER2_CLASSES, Exposure, Medications, StopReason
from cds.facts.records import ObservationRecord, Records
from cds.terminology import MedClass, Terminology

Progression = Literal["high", "medium", "none", "undetermined"]
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


@dataclass(frozen=True, slots=True, kw_only=True)
class LineHistory:
    lines: tuple[Line, ...]
    adjuvant_her2_end: date | None
    # Trastuzumab-based (neo)adjuvant therapy ended ≤12 months before metastasis (ASCO Rec 5.0).
    adjuvant_within_12_months: bool | None
    progression: Progression
    progression_reasons: tuple[str, ...]
    progression_refs: tuple[str, ...]
    confidence: Confidence

    @property
    def current(self) -> Line | None:
        return self.lines[-1] if self.lines and self.lines[-1].active else None

    @property
    def last(self) -> Line | None:
        return self.lines[-1] if self.lines else None

    @property
    def lines_completed(self) -> int:
        return sum(1 for line in self.lines if not line.active)

    def next_line_number(self) -> int:
        """The metastatic line a new regimen would be: ended lines, plus one for early relapse."""
        ended = sum(1 for line in self.lines if not line.active and line.end_reason != "toxicity")
        # A current line with documented progression is over as far as sequencing goes.
        progressing = self.current is not None and self.progression == "high"
        return ended + int(progressing) + 1 + (1 if self.adjuvant_within_12_months else 0)


def _regimens(exposures: list[Exposure], group_days: int) -> list[list[Exposure]]:
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
) -> LineHistory:
    tmet = disease.metastatic_date
    anchors = [e for e in meds.given() if e.med_class in HER2_CLASSES | PARTNER_CLASSES]
    adjuvant: list[Exposure] = []
    metastatic: list[Exposure] = []
    for e in anchors:
        if (
            tmet is not None
            and e.start is not None
            and e.start < tmet - timedelta(days=adjuvant_cutoff_days)
        ):
            adjuvant.append(e)
        else:
            metastatic.append(e)

    # F6.3/F6.4: a regimen is a new line only if it brings a HER2 agent the line did not have.
    # Dropping the chemotherapy partner, adding endocrine therapy, switching formulation or
    # biosimilar (one ingredient), or swapping taxanes all stay within the line.
    grouped: list[list[Exposure]] = []
    anchor_sets: list[set[str]] = []
    for regimen in _regimens(metastatic, group_days):
        her2 = {e.ingredient for e in regimen if e.med_class in HER2_CLASSES}
        if grouped and (not her2 or her2 <= anchor_sets[-1]):
            grouped[-1].extend(regimen)
            continue
        grouped.append(list(regimen))
        anchor_sets.append(her2)

    lines = []
    for i, (members, anchor) in enumerate(zip(grouped, anchor_sets, strict=True), start=1):
        her2_members = [e for e in members if e.ingredient in anchor] or members
        active = any(e.active for e in her2_members)
        ends = [e.last for e in her2_members if e.last is not None]
        reasons = [e.stop_reason for e in her2_members if e.stop_reason]
        reason: StopReason | None = None
        candidates: tuple[StopReason, ...] = ("progression", "toxicity", "other")
        for candidate in candidates:
            if candidate in reasons:
                reason = candidate
                break
        starts = [e.start for e in members if e.start is not None]
        lines.append(
            Line(
                number=i,
                anchor=frozenset(anchor),
                drugs=frozenset(e.ingredient for e in members),
                start=min(starts) if starts else None,
                end=None if active else (max(ends) if ends else None),
                active=active,
                end_reason=None if active else reason,
                refs=tuple(dict.fromkeys(e.ref for e in members)),
            )
        )

    adj_her2 = [e for e in adjuvant if e.med_class == "HER2_MAB" and e.last is not None]
    adj_end = max((e.last for e in adj_her2 if e.last), default=None)
    within: bool | None = None
    if adj_end is not None and tmet is not None:
        within = tmet - adj_end <= timedelta(days=adjuvant_window_days)
    elif not adj_her2 and tmet is not None and meds.received:
        within = False

    progression, why, refs = _progression(tuple(lines), disease, records, t)
    confidence: Confidence = "high"
    if tmet is None:
        confidence = "low"
    elif any(not line.active and line.end_reason is None for line in lines[:-1]):
        confidence = "medium"  # a line changed with no documented reason (F7 MEDIUM)
    return LineHistory(
        lines=tuple(lines),
        adjuvant_her2_end=adj_end,
        adjuvant_within_12_months=within,
        progression=progression,
        progression_reasons=why,
        progression_refs=refs,
        confidence=confidence,
    )


def _progression(
    lines: tuple[Line, ...], disease: Disease, records: Records, t: Terminology
) -> tuple[Progression, tuple[str, ...], tuple[str, ...]]:
    """F7 on the last line: HIGH, NOT progression, UNDETERMINED, or none while it continues."""
    if not lines:
        return "none", (), ()
    line = lines[-1]
    start = line.start
    reasons: list[str] = []
    refs: list[str] = []

    statuses = sorted(
        (o for o in records.observations if t["disease-status"].matches_code(o.code)),
        key=lambda o: o.effective or date.min,
    )
    after = [
        o
        for o in statuses
        if start is None or (o.effective is not None and o.effective > start + timedelta(days=14))
    ]
    for o in after:
        if o.value.concept is not None and t["status-worsened"].matches_code(o.value.concept):
            reasons.append(f"disease status 'worsened' on {_d(o.effective)}")
            refs.append(f"Observation/{o.id}")
    if line.end_reason == "progression":
        reasons.append("therapy stopped for no response to treatment")
        refs.extend(line.refs)
    if start is not None:
        known_before = {s for s, d, _ in disease.site_onsets if d is not None and d <= start}
        for site, onset, ref in disease.site_onsets:
            if (
                onset is not None
                and onset > start + timedelta(days=30)
                and site not in known_before
            ):
                reasons.append(f"new {site} metastasis recorded {_d(onset)}")
                refs.append(ref)
    if reasons:
        return "high", tuple(reasons), tuple(dict.fromkeys(refs))
    latest = after[-1] if after else None
    if line.active:
        return "none", (), ()
    if line.end_reason in ("toxicity", "other"):
        return "none", (f"last line stopped for {line.end_reason}, not progression",), line.refs
    if latest is not None and _not_progressed(latest, t):
        return "none", (f"disease status not progressing on {_d(latest.effective)}",), ()
    why = [f"{', '.join(sorted(line.anchor or line.drugs))} ended {_d(line.end)} with no reason"]
    if not statuses:
        why.append("no disease-status record")
    return "undetermined", tuple(why), line.refs


def _not_progressed(obs: ObservationRecord, t: Terminology) -> bool:
    concept = obs.value.concept
    return concept is not None and t["status-not-progressed"].matches_code(concept)


def _d(value: date | None) -> str:
    return value.isoformat() if value else "(date unknown)"
