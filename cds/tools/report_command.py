"""`cds report`: the committee report from the store, as text, JSON or one HTML page."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from cds.errors import ConfigError
from cds.settings import Settings
from cds.store import open_configured
from cds.tools import report_html
from cds.tools.common import settings_or_exit
from cds.tools.report import build, text

REPORT_TIMEOUT_S = 600.0


def command(args: argparse.Namespace) -> int:
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
        store = open_configured(settings, timeout_s=REPORT_TIMEOUT_S)
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
