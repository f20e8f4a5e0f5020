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

import argparse
import json
import math
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from cds.errors import ConfigError
from cds.settings import Settings
from cds.store import ReportRows
from cds.tools.common import open_store_for, settings_or_exit

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
        out.append(
            f"{r.service:<26} {r.rule:<6} {r.variant:<28} {r.issued:>7} {r.patients:>8} "
            f"{r.accepted:>8} {r.overridden:>8} {r.no_feedback:>6}  {rate}{mark}"
        )
    flagged = [r for r in report.rules if r.flagged]
    out.append(
        f"{len(flagged)} flagged (override rate above {report.flag:.0%} with at least "
        f"{report.min_cards} answered cards)"
    )
    return "\n".join(out) + "\n"


REPORT_TIMEOUT_S = 600.0


def command(args: argparse.Namespace) -> int:
    from cds.tools import report_html

    settings = settings_or_exit()
    until = args.until or (datetime.now(UTC).date() + timedelta(days=1))
    if args.since and args.since >= until:
        print(f"--since {args.since} is not before --until {until}", file=sys.stderr)
        return 2
    if settings.database_url is None and not settings.feedback_db.exists():
        print(f"no cards recorded yet ({settings.feedback_db} does not exist)", file=sys.stderr)
        return 1
    try:
        # The service's statement timeout (CDS_DATABASE_TIMEOUT_S) bounds a call; the report
        # reads the whole period (~5 s at 1,000,000 cards), so it may take minutes.
        store = open_store_for(settings, timeout_s=REPORT_TIMEOUT_S)
        titles = _rule_titles(settings)
    except ConfigError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    start = time.perf_counter()
    try:
        rows = store.report_rows(
            _epoch(args.since) if args.since else 0.0, _epoch(until), args.service
        )
    finally:
        store.close()
    built = build(
        rows,
        since=args.since,
        until=until,
        flag=args.flag,
        min_cards=args.min_cards,
        titles=titles,
    )
    if args.html:
        Path(args.html).write_text(report_html.render(built), encoding="utf-8")
        print(f"wrote {args.html}", file=sys.stderr)
    if args.json:
        print(json.dumps(built.as_json(), indent=2))
    elif not args.html:
        print(text(built), end="")
    issued = sum(r.issued for r in built.rules)
    print(
        f"{issued} cards issued, {len(built.rules)} rule variants, "
        f"{sum(r.flagged for r in built.rules)} flagged ({time.perf_counter() - start:.2f} s)",
        file=sys.stderr,
    )
    return 0


def _epoch(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def _rule_titles(settings: Settings) -> dict[str, str]:
    from cds.services import load_knowledge

    k = load_knowledge(settings.cards_dir, settings.parameters, settings.validation)
    return {rule: card.title for rule, card in k.renderer.book.cards.items()}
