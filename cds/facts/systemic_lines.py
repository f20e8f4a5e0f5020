"""Chemotherapy and endocrine lines in the metastatic setting, for HER2-negative disease (R15,
DESTINY-Breast04/-06), grouped as F6 groups HER2 lines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from cds.facts.disease import Disease
from cds.facts.lines import Confidence, Setting, by_setting, documented_sites, regimens_of
from cds.facts.medications import CourseEnd, Exposure, Medications, StopReason, course_end
from cds.facts.progression import Progression, progression_of
from cds.fhir.records import Records
from cds.terminology import MedClass, Terminology

CHEMO_CLASSES: frozenset[MedClass] = frozenset(
    {"TAXANE", "CAPE", "VINORELBINE", "OTHER_CHEMO", "ANTHRACYCLINE"}
)
# A CDK4/6 inhibitor given with endocrine therapy is part of an endocrine line (R15).
ENDOCRINE_CLASSES: frozenset[MedClass] = frozenset(
    {"ENDOCRINE_AI", "ENDOCRINE_SERD", "ENDOCRINE_SERM", "CDK46"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemicLine:
    kind: Literal["chemotherapy", "endocrine"]
    drugs: frozenset[str]
    start: date | None
    # How it ended, as F7 reads a line (cds.facts.progression.LineSeen): whether it goes on.
    end: date | None = None
    active: bool = False
    end_reason: StopReason | None = None
    refs: tuple[str, ...] = ()
    unknown_refs: tuple[str, ...] = ()

    @property
    def anchor(self) -> frozenset[str]:
        return self.drugs


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemicLines:
    """Chemotherapy and endocrine lines in the metastatic setting, for HER2-negative disease
    (R15, DESTINY-Breast04/-06): the F6 grouping (drugs started within the grouping window are
    one regimen; the same drugs continuing stay one line)."""

    lines: tuple[SystemicLine, ...]
    # F7 on the last line: C6 - no next-line card while it goes on and is not progressing.
    progression: Progression
    adjuvant_chemo: CourseEnd
    # Recurrence within 6 months of completing (neo)adjuvant chemotherapy (DB-04 criterion).
    adjuvant_chemo_within_6_months: bool | None
    confidence: Confidence

    @property
    def chemotherapy(self) -> int:
        return sum(1 for line in self.lines if line.kind == "chemotherapy")

    @property
    def endocrine(self) -> int:
        return sum(1 for line in self.lines if line.kind == "endocrine")


def extract_systemic_lines(
    meds: Medications,
    disease: Disease,
    records: Records,
    *,
    group_days: int,
    adjuvant_cutoff_days: int,
    adjuvant_chemo_days: int,
    brain_window_days: int,
    setting: Setting,
    t: Terminology,
) -> SystemicLines:
    tmet = setting.date
    wanted = CHEMO_CLASSES | ENDOCRINE_CLASSES
    early, metastatic = by_setting(
        [e for e in meds.given() if e.med_class in wanted],
        tmet,
        t,
        adjuvant_cutoff_days,
        group_days,
    )
    adjuvant_chemo = [e for e in early if e.med_class in CHEMO_CLASSES]
    groups: list[list[Exposure]] = []
    for regimen in regimens_of(metastatic, group_days):
        drugs = {e.ingredient for e in regimen}
        if groups and drugs <= {e.ingredient for e in groups[-1]}:
            groups[-1] += regimen  # the same drugs, given again: the line goes on
            continue
        groups.append(list(regimen))
    lines = tuple(_line(group) for group in groups)
    progression, *_ = progression_of(
        lines,
        disease,
        records,
        t,
        brain_window_days=brain_window_days,
        documented=documented_sites(setting, disease, adjuvant_cutoff_days),
    )
    course = course_end(adjuvant_chemo)
    within = course.within(tmet, adjuvant_chemo_days)
    if course.last is None and tmet is not None and meds.received:
        within = False
    return SystemicLines(
        lines=lines,
        progression=progression,
        adjuvant_chemo=course,
        adjuvant_chemo_within_6_months=within,
        confidence="low" if tmet is None else "high",
    )


def _line(group: list[Exposure]) -> SystemicLine:
    """A chemotherapy line if any of its drugs is chemotherapy; active while any drug is; its
    stop reason the gravest its records give (progression, then toxicity, then other)."""
    active = any(e.active for e in group)
    unknown = () if active else tuple(dict.fromkeys(e.ref for e in group if e.status_unknown))
    reasons = {e.stop_reason for e in group}
    reason = next((r for r in ("progression", "toxicity", "other") if r in reasons), None)
    starts = [e.start for e in group if e.start is not None]
    ends = [e.last for e in group if e.last is not None]
    return SystemicLine(
        kind="chemotherapy" if any(e.med_class in CHEMO_CLASSES for e in group) else "endocrine",
        drugs=frozenset(e.ingredient for e in group),
        start=min(starts) if starts else None,
        end=None if active or unknown or not ends else max(ends),
        active=active,
        end_reason=None if active else reason,
        refs=tuple(dict.fromkeys(e.ref for e in group)),
        unknown_refs=unknown,
    )
