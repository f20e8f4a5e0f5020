"""F7 progression: from disease-status observations, new metastatic sites (brain metastases
weighed against a stable status around them) and lines that ended without a reason."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal, Protocol

from cds.facts.disease import Disease
from cds.facts.medications import Medications, StopReason
from cds.fhir.records import ObservationRecord, Records
from cds.said import Said, say
from cds.terminology import Terminology


class LineSeen(Protocol):
    """What F7 reads of a line (cds.facts.lines.Line, which asks this module about it)."""

    @property
    def start(self) -> date | None: ...
    @property
    def end(self) -> date | None: ...
    @property
    def end_reason(self) -> StopReason | None: ...
    @property
    def active(self) -> bool: ...
    @property
    def drugs(self) -> frozenset[str]: ...
    @property
    def anchor(self) -> frozenset[str]: ...
    @property
    def refs(self) -> tuple[str, ...]: ...
    @property
    def unknown_refs(self) -> tuple[str, ...]: ...


Progression = Literal["high", "medium", "none", "undetermined"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CnsProgression:
    """A new brain (or leptomeningeal) metastasis on the current line (C5): intracranial
    progression, which is not by itself systemic progression."""

    onset: date
    ref: str
    status_ref: str | None  # a disease status documenting systemic disease as stable, if any


def status_observations(records: Records, t: Terminology) -> list[ObservationRecord]:
    return sorted(
        records.observations_coded_in(t["disease-status"]),
        key=lambda o: o.effective or date.min,
    )


def worsened(o: ObservationRecord, t: Terminology) -> bool:
    return o.value.concept is not None and t["status-worsened"].matches_code(o.value.concept)


def progression_dates(
    meds: Medications, disease: Disease, records: Records, t: Terminology
) -> list[date]:
    """When progression was documented: 'worsened' statuses, therapy stopped for no response,
    and the first date of each metastatic site (F7 HIGH a-c), for the line grouping of C6."""
    out = [o.effective for o in status_observations(records, t) if o.effective and worsened(o, t)]
    out += [e.last for e in meds.given() if e.stop_reason == "progression" and e.last]
    first: dict[str, date] = {}
    for site, onset, _ in disease.site_onsets:
        if onset is not None and (site not in first or onset < first[site]):
            first[site] = onset
    return out + list(first.values())


Assessment = tuple[
    Progression, tuple[Said, ...], tuple[str, ...], tuple[Said, ...], CnsProgression | None
]


def progression_of(
    lines: Sequence[LineSeen],
    disease: Disease,
    records: Records,
    t: Terminology,
    *,
    brain_window_days: int,
    documented: frozenset[str] = frozenset(),
) -> Assessment:
    """F7 on the last line: HIGH, NOT progression, UNDETERMINED, or none while it continues.

    Returns (progression, its evidence, refs, other findings, intracranial-only progression).
    """
    if not lines:
        return "none", (), (), (), None
    line = lines[-1]
    start = line.start
    reasons: list[Said] = []
    refs: list[str] = []

    statuses = status_observations(records, t)
    after = [
        o
        for o in statuses
        if start is None or (o.effective is not None and o.effective > start + timedelta(days=14))
    ]
    latest = after[-1] if after else None
    for o in after:
        if worsened(o, t):
            reasons.append(say("status-worsened", when=_d(o.effective)))
            refs.append(f"Observation/{o.id}")
    if latest is not None and not_progressed(latest, t) and reasons:
        # A later 'stable' or 'responding' status supersedes an earlier 'worsened' on this line.
        reasons, refs = [], []
    if line.end_reason == "progression":
        reasons.append(say("stopped-for-no-response"))
        refs.extend(line.refs)
    cns: CnsProgression | None = None
    if start is not None:
        new, cns = _new_sites(start, disease, documented, statuses, brain_window_days, t)
        for site, onset, ref in new:
            reasons.append(say("new-site", site=site, when=_d(onset)))
            refs.append(ref)
    if reasons:
        return "high", tuple(reasons), tuple(dict.fromkeys(refs)), (), cns
    if line.active or line.unknown_refs:  # goes on, or may: not 'ended without a reason'
        return "none", (), (), (), cns
    if line.end_reason in ("toxicity", "other"):
        found = (say("stopped-not-progression", reason=line.end_reason),)
        return "none", (), line.refs, found, cns
    if latest is not None and not_progressed(latest, t):
        return "none", (), (), (say("status-not-progressing", when=_d(latest.effective)),), cns
    drugs = ", ".join(sorted(line.anchor or line.drugs))
    why = [say("ended-without-reason", drugs=drugs, when=_d(line.end))]
    if not statuses:
        why.append(say("no-status-record"))
    return "undetermined", (), line.refs, tuple(why), cns


def _new_sites(
    start: date,
    disease: Disease,
    documented: frozenset[str],
    statuses: list[ObservationRecord],
    brain_window_days: int,
    t: Terminology,
) -> tuple[list[tuple[str, date, str]], CnsProgression | None]:
    """Metastatic sites first recorded more than 30 days into the line and not known before
    it (F7 HIGH c), apart from the first new brain or leptomeningeal one (C5)."""
    known_before = {s for s, d, _ in disease.site_onsets if d is not None and d <= start}
    known_before |= documented
    new: list[tuple[str, date, str]] = []
    cns: CnsProgression | None = None
    for site, onset, ref in disease.site_onsets:
        if onset is None or onset <= start + timedelta(days=30) or site in known_before:
            continue
        if site in ("brain", "leptomeningeal"):
            # C5: brain metastases are not, by themselves, systemic progression: they call
            # for local therapy, not a change of line (systemic progression needs its own
            # evidence). Whether systemic disease was documented stable is kept for the card.
            stable = stable_around(statuses, onset, brain_window_days, t)
            if cns is None:
                cns = CnsProgression(
                    onset=onset,
                    ref=ref,
                    status_ref=f"Observation/{stable.id}" if stable is not None else None,
                )
            continue
        new.append((site, onset, ref))
    return new, cns


def stable_around(
    statuses: list[ObservationRecord], onset: date, window_days: int, t: Terminology
) -> ObservationRecord | None:
    """The latest disease status from `window_days` before the onset on, if it says stable."""
    near = [
        o
        for o in statuses
        if o.effective is not None and o.effective >= onset - timedelta(days=window_days)
    ]
    return near[-1] if near and not_progressed(near[-1], t) else None


def not_progressed(obs: ObservationRecord, t: Terminology) -> bool:
    concept = obs.value.concept
    return concept is not None and t["status-not-progressed"].matches_code(concept)


def _d(value: date | None) -> date | Said:
    return value if value else say("date-unknown-bracketed")


def status_word(o: ObservationRecord, t: Terminology) -> str:
    """A CancerDiseaseStatus result as the rules read it: worsened, stable or undetermined."""
    value = o.value.concept
    if value is None:
        return "undetermined"
    if t["status-worsened"].matches_code(value):
        return "worsened"
    if t["status-not-progressed"].matches_code(value):
        return "stable"
    return "undetermined"
