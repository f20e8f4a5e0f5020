"""The committee report's aggregate queries (`cds report`), the same on both backends."""

from __future__ import annotations

from typing import Any

from cds.store.records import DAY_S, CardTally, ReportRows

# Weeks start on Monday: the epoch was a Thursday, three days after one.
_WEEK_S, _MONDAY_OFFSET_S = 7 * DAY_S, 3 * DAY_S


# Each card once, with whether any feedback accepted or overrode it.
_PER_CARD = (
    "SELECT service_id, card,"
    " MAX(CASE WHEN outcome = 'accepted' THEN 1 ELSE 0 END) AS accepted,"
    " MAX(CASE WHEN outcome = 'overridden' THEN 1 ELSE 0 END) AS overridden"
    " FROM feedback GROUP BY service_id, card"
)


def _week(backend: str) -> str:
    """The issued card's week (weeks start on Monday), in the backend's SQL."""
    if backend == "postgresql":
        return f"CAST(FLOOR((i.issued_at + {_MONDAY_OFFSET_S}) / {_WEEK_S}) AS BIGINT)"
    return f"CAST((i.issued_at + {_MONDAY_OFFSET_S}) / {_WEEK_S} AS INTEGER)"


def report_rows(store: Any, since: float, until: float, service_id: str | None) -> ReportRows:
    """The committee report's counts for cards issued in [since, until) (epoch seconds)."""
    # Aggregates only, nothing read row by row into Python: cards by variant and week
    # joined once to their feedback grouped by card; distinct patients; override reasons
    # from the overridden feedback (each finds its card by primary key); snoozes. The
    # variant totals are the sums of their weeks.
    where = "i.issued_at >= %s AND i.issued_at < %s"
    args: list[Any] = [since, until]
    if service_id is not None:
        where += " AND i.service_id = %s"
        args.append(service_id)
    per_card, week = _PER_CARD, _week(store.backend)
    with store.tx(durable=False, read=True) as cur:
        cur.execute(
            store.q(
                f"SELECT i.service_id, i.rule, i.variant, {week}, COUNT(*),"  # noqa: S608
                " SUM(COALESCE(f.accepted, 0)), SUM(COALESCE(f.overridden, 0)),"
                " SUM(CASE WHEN f.card IS NULL THEN 1 ELSE 0 END)"
                f" FROM issued_card i LEFT JOIN ({per_card}) f"
                " ON f.service_id = i.service_id AND f.card = i.card"
                f" WHERE {where} GROUP BY i.service_id, i.rule, i.variant, {week}"
            ),
            args,
        )
        by_week = [(*r[:3], *(int(x) for x in r[3:])) for r in cur]
        cur.execute(
            store.q(
                "SELECT i.service_id, i.rule, i.variant, COUNT(DISTINCT i.patient_key)"  # noqa: S608
                f" FROM issued_card i WHERE {where} GROUP BY i.service_id, i.rule, i.variant"
            ),
            args,
        )
        patients = {(r[0], r[1], r[2]): int(r[3]) for r in cur}
        cur.execute(
            store.q(
                "SELECT i.service_id, i.rule, i.variant, COALESCE(f.override_code, ''),"  # noqa: S608
                " COUNT(DISTINCT f.card) FROM feedback f JOIN issued_card i"
                " ON i.card = f.card AND i.service_id = f.service_id"
                f" WHERE f.outcome = 'overridden' AND {where}"
                " GROUP BY i.service_id, i.rule, i.variant, COALESCE(f.override_code, '')"
            ),
            args,
        )
        reasons = [(r[0], r[1], r[2], r[3], int(r[4])) for r in cur]
        cur.execute(
            store.q(
                "SELECT rule, reason, COUNT(*) FROM snooze"
                " WHERE since >= %s AND since < %s GROUP BY rule, reason"
            ),
            (since, until),
        )
        # Snoozes are kept by concern (R2b:above-label#2; the rule alone before schema
        # version 6): the report counts them by rule.
        by_rule: dict[tuple[str, str], int] = {}
        for concern, reason, n in cur:
            key = (concern.partition(":")[0], reason)
            by_rule[key] = by_rule.get(key, 0) + int(n)
        snoozes = [(rule, reason, n) for (rule, reason), n in by_rule.items()]
    return _rolled_up(by_week, patients, reasons, snoozes)


def _rolled_up(
    by_week: list[tuple[Any, ...]],
    patients: dict[tuple[str, str, str], int],
    reasons: list[tuple[str, str, str, str, int]],
    snoozes: list[tuple[str, str, int]],
) -> ReportRows:
    """Variant totals and per-rule weeks, both sums of the (variant, week) counts."""
    totals: dict[tuple[str, str, str], list[int]] = {}
    weeks: dict[tuple[str, str, int], list[int]] = {}
    for service, rule, variant, wk, *counts in by_week:
        t = totals.setdefault((service, rule, variant), [0, 0, 0, 0])
        w = weeks.setdefault((service, rule, wk), [0, 0, 0, 0])
        for i, n in enumerate(counts):  # issued, accepted, overridden, without feedback
            t[i] += n
            w[i] += n
    tallies = [
        CardTally(
            service_id=key[0],
            rule=key[1],
            variant=key[2],
            issued=n,
            patients=patients.get(key, 0),
            accepted=a,
            overridden=o,
            no_feedback=none,
        )
        for key, (n, a, o, none) in totals.items()
    ]
    return ReportRows(
        tallies=tallies,
        reasons=reasons,
        weeks=[
            (s, r, wk * _WEEK_S - _MONDAY_OFFSET_S, n, a, o)
            for (s, r, wk), (n, a, o, _) in weeks.items()
        ],
        snoozes=snoozes,
    )
