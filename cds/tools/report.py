"""The committee report: how often each rule's cards are accepted or overridden.

CDS committees retire or rework rules on their override rates (alert fatigue). Counted per rule
and variant from the store: cards issued, distinct patients (by their keyed hashes), cards
accepted, overridden (by reason code) and without feedback, and snoozes begun.

The override rate is overridden / (accepted + overridden): the share of the cards a clinician
answered that were overridden. Cards without feedback are not in it - many EHRs send feedback
only when a clinician acts - and are reported beside it. The 95% interval is Wilson's score
interval, which stays inside [0, 1] and is honest for small counts. A rule is flagged when its
rate is above `flag` with at least `min_cards` answered cards.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from cds.store import ReportRows

Z_95 = 1.959963984540054  # the normal quantile for a two-sided 95% interval


def wilson(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson's score interval for a binomial proportion (n > 0)."""
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleLine:
    service: str
    rule: str
    variant: str
    title: str
    issued: int
    patients: int
    accepted: int
    overridden: int
    no_feedback: int
    override_reasons: dict[str, int]
    override_rate: float | None  # None: no card of it was answered
    interval: tuple[float, float] | None
    flagged: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "rule": self.rule,
            "variant": self.variant,
            "title": self.title,
            "issued": self.issued,
            "patients": self.patients,
            "accepted": self.accepted,
            "overridden": self.overridden,
            "no_feedback": self.no_feedback,
            "override_reasons": self.override_reasons,
            "override_rate": _round(self.override_rate),
            "interval": [round(x, 4) for x in self.interval] if self.interval else None,
            "flagged": self.flagged,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Week:
    monday: date
    issued: int
    accepted: int
    overridden: int

    @property
    def override_rate(self) -> float | None:
        answered = self.accepted + self.overridden
        return self.overridden / answered if answered else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    since: date | None
    until: date
    flag: float
    min_cards: int
    rules: list[RuleLine]
    # (service, rule) → its weeks, oldest first
    weeks: dict[tuple[str, str], list[Week]] = field(default_factory=dict)
    # rule → {snooze reason: patients}
    snoozed: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat(),
            "flag": self.flag,
            "min_cards": self.min_cards,
            "override_rate": "overridden / (accepted + overridden); Wilson 95% interval",
            "rules": [r.as_json() for r in self.rules],
            "snoozed": self.snoozed,
            "weeks": [
                {
                    "service": service,
                    "rule": rule,
                    "weeks": [
                        {
                            "monday": w.monday.isoformat(),
                            "issued": w.issued,
                            "accepted": w.accepted,
                            "overridden": w.overridden,
                            "override_rate": _round(w.override_rate),
                        }
                        for w in weeks
                    ],
                }
                for (service, rule), weeks in self.weeks.items()
            ],
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def build(
    rows: ReportRows,
    *,
    since: date | None,
    until: date,
    flag: float = 0.9,
    min_cards: int = 30,
    titles: dict[str, str] | None = None,
) -> Report:
    """The report from the store's counts; `titles` names each rule."""
    reasons: dict[tuple[str, str, str], dict[str, int]] = defaultdict(dict)
    for service, rule, variant, code, n in rows.reasons:
        reasons[(service, rule, variant)][code or "(no reason given)"] = n
    lines = []
    for t in sorted(rows.tallies, key=lambda t: (t.service_id, t.rule, t.variant)):
        answered = t.accepted + t.overridden
        rate = t.overridden / answered if answered else None
        lines.append(
            RuleLine(
                service=t.service_id,
                rule=t.rule,
                variant=t.variant,
                title=(titles or {}).get(t.rule, ""),
                issued=t.issued,
                patients=t.patients,
                accepted=t.accepted,
                overridden=t.overridden,
                no_feedback=t.no_feedback,
                override_reasons=dict(sorted(reasons[(t.service_id, t.rule, t.variant)].items())),
                override_rate=rate,
                interval=wilson(t.overridden, answered) if answered else None,
                flagged=rate is not None and answered >= min_cards and rate > flag,
            )
        )
    weeks: dict[tuple[str, str], list[Week]] = defaultdict(list)
    for service, rule, monday_s, issued, accepted, overridden in sorted(rows.weeks):
        weeks[(service, rule)].append(
            Week(
                monday=datetime.fromtimestamp(monday_s, UTC).date(),
                issued=issued,
                accepted=accepted,
                overridden=overridden,
            )
        )
    snoozed: dict[str, dict[str, int]] = defaultdict(dict)
    for rule, reason, n in sorted(rows.snoozes):
        snoozed[rule][reason] = n
    return Report(
        since=since,
        until=until,
        flag=flag,
        min_cards=min_cards,
        rules=lines,
        weeks=dict(sorted(weeks.items())),
        snoozed=dict(snoozed),
    )


def text(report: Report) -> str:
    """The report as a terminal table."""
    period = f"{report.since or 'the first record'} to {report.until} (until excluded)"
    if not report.rules:
        return f"no cards issued from {period}\n"
    out = [
        f"Cards issued from {period}; override rate = overridden / (accepted + overridden),"
        " 95% Wilson interval",
        f"{'service':<26} {'rule':<6} {'variant':<28} {'issued':>7} {'patients':>8} "
        f"{'accepted':>8} {'overrid.':>8} {'none':>6}  rate (95% CI)",
    ]
    for r in report.rules:
        rate = (
            f"{r.override_rate:.0%} ({r.interval[0]:.0%}-{r.interval[1]:.0%})"
            if r.override_rate is not None and r.interval
            else "-"
        )
        mark = "  FLAGGED" if r.flagged else ""
        # Cards recorded before schema 5 have no service or variant: shown as "-".
        out.append(
            f"{r.service or '-':<26} {r.rule:<6} {r.variant or '-':<28} {r.issued:>7} "
            f"{r.patients:>8} "
            f"{r.accepted:>8} {r.overridden:>8} {r.no_feedback:>6}  {rate}{mark}"
        )
    flagged = [r for r in report.rules if r.flagged]
    out.append(
        f"{len(flagged)} flagged (override rate above {report.flag:.0%} with at least "
        f"{report.min_cards} answered cards)"
    )
    return "\n".join(out) + "\n"
