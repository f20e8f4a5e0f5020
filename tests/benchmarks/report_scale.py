"""Benchmark (not a test): `cds report` over a large store.

    .venv/bin/python tests/benchmarks/report_scale.py [--cards 1000000] [--postgresql]

Fills a fresh store with N issued cards over 52 weeks (12 rule variants, 20,000 patients; 30%
accepted, 35% overridden, a few overridden twice), then times the report's queries and prints
the peak memory of this process (it also held the generator's rows). `--postgresql` does the
same on a throwaway cluster on loopback.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from cds.store import DAY_S, PostgresStore, SQLiteStore, Store  # noqa: E402
from cds.tools import report  # noqa: E402

START = 1_767_225_600.0  # 2026-01-01
VARIANTS = [(f"R{i // 2 + 1}", f"v{i % 2}") for i in range(12)]
REASONS = ("patient-declined", "already-addressed", "not-clinically-appropriate")


def rows(n: int) -> Iterator[tuple[tuple[object, ...], list[tuple[object, ...]]]]:
    rnd = random.Random(1)  # noqa: S311 - reproducible data
    for i in range(n):
        rule, variant = VARIANTS[i % len(VARIANTS)]
        at = START + i / n * 364 * DAY_S  # recorded as issued: in time order
        card = f"c{i}"
        issued = (
            card,
            rule,
            f"p{rnd.randrange(20_000)}",
            "e",
            at,
            "svc",
            "|",
            '["s"]',
            variant,
            "warning",
        )
        fb: list[tuple[object, ...]] = []
        x = rnd.random()
        stamp = f"2026-01-01T00:00:{i % 60:02d}Z"
        if x < 0.30:
            fb.append(("svc", card, "accepted", stamp, '["s"]', None, None, None, stamp))
        elif x < 0.65:
            fb.append(
                ("svc", card, "overridden", stamp, "[]", rnd.choice(REASONS), None, None, stamp)
            )
            if x < 0.31:
                fb.append(
                    ("svc", card, "overridden", stamp + "x", "[]", REASONS[0], None, None, stamp)
                )
        yield issued, fb


def fill(store: Store, n: int) -> None:
    q = store.q  # type: ignore[attr-defined]
    ins_card = q(
        "INSERT INTO issued_card (card, rule, patient_key, evidence, issued_at, service_id,"
        " caller, suggestions, variant, indicator) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    )
    ins_fb = q(
        "INSERT INTO feedback (service_id, card, outcome, outcome_timestamp, accepted_suggestions,"
        " override_code, override_system, override_comment, received_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
    )
    batch_cards: list[tuple[object, ...]] = []
    batch_fb: list[tuple[object, ...]] = []
    t = time.perf_counter()
    for i, (card, fb) in enumerate(rows(n), 1):
        batch_cards.append(card)
        batch_fb.extend(fb)
        if len(batch_cards) == 50_000 or i == n:
            with store.tx() as cur:  # type: ignore[attr-defined]
                cur.executemany(ins_card, batch_cards)
                cur.executemany(ins_fb, batch_fb)
            batch_cards, batch_fb = [], []
            print(f"\r  filled {i:,} cards ({time.perf_counter() - t:.0f} s)", end="", flush=True)
    print()


def measure(store: Store, label: str) -> None:
    if hasattr(store, "tx") and store.backend == "postgresql":
        with store.tx() as cur:
            cur.execute("ANALYZE")
    for attempt in ("cold", "warm"):
        t = time.perf_counter()
        rows_ = store.report_rows(0.0, START + 400 * DAY_S, None)
        built = report.build(rows_, since=None, until=date(2027, 2, 5))
        seconds = time.perf_counter() - t
        issued = sum(r.issued for r in built.rules)
        print(
            f"{label} {attempt}: {issued:,} cards in {len(built.rules)} rule variants, "
            f"{sum(len(w) for w in built.weeks.values())} rule-weeks: {seconds:.2f} s"
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{label}: peak resident memory of this process {peak_mb:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cards", type=int, default=1_000_000)
    ap.add_argument("--postgresql", action="store_true")
    args = ap.parse_args()
    if args.postgresql:
        from tests.servers import postgres_cluster

        with postgres_cluster() as url:
            pg = PostgresStore(url, require_schema=False, timeout_s=30)
            pg.migrate()
            fill(pg, args.cards)
            measure(pg, "PostgreSQL")
            pg.close()
        return
    db = Path(tempfile.mkdtemp(prefix="cds-report-")) / "store.sqlite3"
    lite = SQLiteStore(db, timeout_s=30)
    fill(lite, args.cards)
    print(f"  SQLite file {db.stat().st_size / 1e6:.0f} MB")
    measure(lite, "SQLite")
    lite.close()


if __name__ == "__main__":
    main()
