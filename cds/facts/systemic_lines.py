"""Chemotherapy and endocrine lines in the metastatic setting, for HER2-negative disease (R15,
DESTINY-Breast04/-06), grouped as F6 groups HER2 lines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from cds.facts.lines import Confidence, Setting, by_setting, regimens_of
from cds.facts.medications import CourseEnd, Medications, course_end
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


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemicLines:
    """Chemotherapy and endocrine lines in the metastatic setting, for HER2-negative disease
    (R15, DESTINY-Breast04/-06): the F6 grouping (drugs started within the grouping window are
    one regimen; the same drugs continuing stay one line)."""

    lines: tuple[SystemicLine, ...]
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
    *,
    group_days: int,
    adjuvant_cutoff_days: int,
    adjuvant_chemo_days: int,
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
    lines: list[SystemicLine] = []
    for regimen in regimens_of(metastatic, group_days):
        drugs = frozenset(e.ingredient for e in regimen)
        if lines and drugs <= lines[-1].drugs:
            continue  # the same drugs, given again: the line goes on
        chemo = any(e.med_class in CHEMO_CLASSES for e in regimen)
        starts = [e.start for e in regimen if e.start is not None]
        lines.append(
            SystemicLine(
                kind="chemotherapy" if chemo else "endocrine",
                drugs=drugs,
                start=min(starts) if starts else None,
            )
        )
    course = course_end(adjuvant_chemo)
    within = course.within(tmet, adjuvant_chemo_days)
    if course.last is None and tmet is not None and meds.received:
        within = False
    return SystemicLines(
        lines=tuple(lines),
        adjuvant_chemo=course,
        adjuvant_chemo_within_6_months=within,
        confidence="low" if tmet is None else "high",
    )
