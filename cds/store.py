"""Shared state: card feedback, the JWT replay cache, and the issued-card records and snoozes
behind card snoozing - one interface, two backends.

* SQLite (the embedded default, `CDS_FEEDBACK_DB`): one file in WAL mode, shared by every worker
  process of one machine; it applies its schema itself. Feedback is fsynced before its 200
  (synchronous=FULL); what every call writes is not (NORMAL: it survives a process crash).
* PostgreSQL (`CDS_DATABASE_URL=postgresql://…`): shared by every instance; a connection pool
  with a bounded wait, so a slow database is a 503 with an OperationOutcome, never a hang. Its
  schema is applied by `cds migrate` and checked by `cds check` and at start-up.

Schema versions are numbered; `migrate` applies the missing ones in order and is idempotent.
No PHI in clear: a patient is known only by a keyed hash (HMAC-SHA256 with
`CDS_PATIENT_KEY_SECRET`), and issued-card records expire. Feedback free text is stored as
sent (it may hold clinical text) and never logged.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from cds import schemas
from cds.errors import ConfigError, FeedbackRefused, Issue, StoreUnavailable

DAY_S = 86_400.0
SCHEMA_VERSION = 5
# Retention is counted in days: pruning once a minute keeps the tables as small as pruning on
# every call did, without two more statements (two more round trips on PostgreSQL) per call.
PRUNE_EVERY_S = 60.0
# Feedback records one card may collect (distinct outcomes and times; a resent one is not new).
MAX_FEEDBACK_PER_CARD = 20
# Version 2: the JWT replay cache, issued cards and snoozes (the same SQL on both backends).
_V2 = (
    """CREATE TABLE IF NOT EXISTS jwt_replay (
        iss TEXT NOT NULL, jti TEXT NOT NULL, expires_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (iss, jti))""",
    "CREATE INDEX IF NOT EXISTS jwt_replay_expiry ON jwt_replay (expires_at)",
    """CREATE TABLE IF NOT EXISTS issued_card (
        card TEXT PRIMARY KEY, rule TEXT NOT NULL, patient_key TEXT NOT NULL,
        evidence TEXT NOT NULL, issued_at DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS issued_card_age ON issued_card (issued_at)",
    """CREATE TABLE IF NOT EXISTS snooze (
        patient_key TEXT NOT NULL, rule TEXT NOT NULL, evidence TEXT NOT NULL,
        reason TEXT NOT NULL, since DOUBLE PRECISION NOT NULL,
        until DOUBLE PRECISION NOT NULL, PRIMARY KEY (patient_key, rule))""",
)
_V3 = ("CREATE INDEX IF NOT EXISTS snooze_until ON snooze (until)",)
# Version 4: feedback is taken only for a card issued through the same service to the same
# caller (JWT issuer and tenant), naming suggestions the card had (issue 28 item 2). Rows from
# before carry none of these and take no feedback; they expire with the retention period.
_V4 = (
    "ALTER TABLE issued_card ADD COLUMN service_id TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE issued_card ADD COLUMN caller TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE issued_card ADD COLUMN suggestions TEXT NOT NULL DEFAULT '[]'",
)
# Version 5: the committee report (`cds report`) counts issued cards by rule, variant and
# indicator; it reads them by service and time, and feedback by card.
_V5 = (
    "ALTER TABLE issued_card ADD COLUMN variant TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE issued_card ADD COLUMN indicator TEXT NOT NULL DEFAULT ''",
    "CREATE INDEX IF NOT EXISTS issued_card_service ON issued_card (service_id, issued_at)",
    "CREATE INDEX IF NOT EXISTS feedback_card ON feedback (card)",
)
# (version, {backend: statements}); a statement never breaks an existing database.
MIGRATIONS: tuple[tuple[int, dict[str, tuple[str, ...]]], ...] = (
    (
        1,
        {
            "sqlite": (
                """CREATE TABLE IF NOT EXISTS feedback (
                    id INTEGER PRIMARY KEY,
                    service_id TEXT NOT NULL, card TEXT NOT NULL, outcome TEXT NOT NULL,
                    outcome_timestamp TEXT NOT NULL, accepted_suggestions TEXT NOT NULL,
                    override_code TEXT, override_system TEXT, override_comment TEXT,
                    received_at TEXT NOT NULL,
                    UNIQUE (service_id, card, outcome, outcome_timestamp))""",
            ),
            "postgresql": (
                """CREATE TABLE IF NOT EXISTS feedback (
                    id BIGSERIAL PRIMARY KEY,
                    service_id TEXT NOT NULL, card TEXT NOT NULL, outcome TEXT NOT NULL,
                    outcome_timestamp TEXT NOT NULL, accepted_suggestions TEXT NOT NULL,
                    override_code TEXT, override_system TEXT, override_comment TEXT,
                    received_at TEXT NOT NULL,
                    UNIQUE (service_id, card, outcome, outcome_timestamp))""",
            ),
        },
    ),
    (2, {"sqlite": _V2, "postgresql": _V2}),
    # Version 3: pruning ended snoozes found them by a scan of the whole table. Accepted cards
    # stay quiet for years, so the table only grows: at 50,000 snoozes the scan cost 3.8 ms of
    # every call (0.11 ms with the index).
    (3, {"sqlite": _V3, "postgresql": _V3}),
    (4, {"sqlite": _V4, "postgresql": _V4}),
    (5, {"sqlite": _V5, "postgresql": _V5}),
)

_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredFeedback:
    service_id: str
    card: str
    outcome: str
    outcome_timestamp: str
    accepted_suggestions: tuple[str, ...]
    override_code: str | None
    override_system: str | None
    override_comment: str | None
    received_at: str


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedCard:
    """What a card was about, to snooze it when overridden: never the patient id in clear."""

    card: str  # the card uuid
    rule: str
    patient_key: str  # HMAC of the patient id
    evidence: str  # digest of the data behind the card
    service_id: str = ""  # the service that issued it: feedback goes to that service's URL
    caller: str = ""  # who received it (see `caller`): only they may give feedback on it
    suggestions: tuple[str, ...] = ()  # its suggestion uuids, the ones feedback may accept
    variant: str = ""  # the rule's variant and the card's indicator: for the committee report
    indicator: str = ""


def caller(iss: str | None, tenant: str | None) -> str:
    """Who called, as stored with an issued card: the JWT issuer and tenant ("|" when the
    service runs without authentication)."""
    return f"{iss or ''}|{tenant or ''}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Snooze:
    rule: str
    evidence: str
    reason: Literal["overridden", "accepted"]
    since: float
    until: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CardTally:
    """Issued cards of one rule variant in a period, and what feedback said of them; a card
    counts once as accepted and once as overridden however many items named it."""

    service_id: str
    rule: str
    variant: str
    issued: int
    patients: int
    accepted: int
    overridden: int
    no_feedback: int


@dataclass(frozen=True, slots=True)
class ReportRows:
    tallies: list[CardTally]
    # (service, rule, variant, override reason code or "", cards overridden with it)
    reasons: list[tuple[str, str, str, str, int]]
    # (service, rule, Monday of the week as epoch seconds, issued, accepted, overridden)
    weeks: list[tuple[str, str, float, int, int, int]]
    # (rule, snooze reason, patients whose card for the rule went quiet in the period)
    snoozes: list[tuple[str, str, int]]


# Weeks start on Monday: the epoch was a Thursday, three days after one.
_WEEK_S, _MONDAY_OFFSET_S = 7 * DAY_S, 3 * DAY_S


class Store(Protocol):
    # "sqlite": a local file, a call takes microseconds; "postgresql": a database over the network.
    backend: str

    def add(
        self, service_id: str, items: Iterable[schemas.FeedbackItem], *, caller: str = "|"
    ) -> int:
        """Store feedback (durable before it returns) and snooze what it overrode or accepted;
        returns how many items were new. With issued cards recorded (snoozing on), every item
        must name a card issued through `service_id` to `caller`, and suggestions it had, or
        nothing is stored (FeedbackRefused)."""

    def list(self, *, service_id: str | None = None, limit: int = 100) -> list[StoredFeedback]: ...

    def first_use(self, iss: str, jti: str, expires_at: float, now: float) -> bool:
        """Record a JWT id; False if it was seen before and has not expired (a replay)."""

    def record_issued(self, cards: Sequence[IssuedCard]) -> None: ...

    def snoozes(self, patient_key: str) -> dict[str, Snooze]: ...

    def report_rows(self, since: float, until: float, service_id: str | None) -> ReportRows:
        """The committee report's counts for cards issued in [since, until) (epoch seconds)."""

    def schema_version(self) -> int: ...

    def migrate(self) -> int:
        """Apply missing schema versions; returns the version now in place."""

    def close(self) -> None: ...


def _feedback_row(service_id: str, item: schemas.FeedbackItem, now: str) -> tuple[Any, ...]:
    reason = item.overrideReason
    return (
        service_id,
        item.card,
        item.outcome,
        item.outcomeTimestamp.astimezone(UTC).isoformat(),
        json.dumps([s.id for s in item.acceptedSuggestions or ()]),
        reason.reason.code if reason and reason.reason else None,
        reason.reason.system if reason and reason.reason else None,
        reason.userComment if reason else None,
        now,
    )


def _check_issued(
    n: int,
    item: schemas.FeedbackItem,
    issued: Sequence[Any] | None,
    service_id: str,
    caller: str,
) -> None:
    """Refuse feedback on a card this caller did not receive from this service (issue 28
    items 1, 2): a card is snoozed by its feedback, so feedback from anyone else, or through
    another service, would silence it for the patient it was issued for."""
    where = f"feedback[{n}]"
    # The same answer for "no such card" and "issued to someone else": no card's existence
    # is disclosed to another caller.
    if issued is None or issued[3] != service_id or issued[4] != caller:
        raise FeedbackRefused(
            f"{where}.card: no card with this uuid was issued to this client by this service"
            " (or its record has expired)",
            issues=(
                Issue(
                    code="not-found",
                    diagnostics="no card with this uuid was issued to this client by this service",
                    expression=f"{where}.card",
                ),
            ),
        )
    known = set(json.loads(issued[5]))
    for m, accepted in enumerate(item.acceptedSuggestions or ()):
        if accepted.id not in known:
            raise FeedbackRefused(
                f"{where}.acceptedSuggestions[{m}].id: the card has no suggestion with this uuid",
                issues=(
                    Issue(
                        code="not-found",
                        diagnostics="the card has no suggestion with this uuid",
                        expression=f"{where}.acceptedSuggestions[{m}].id",
                    ),
                ),
            )


def _check_count(n: int, cur: Any, q: Callable[[str], str], service_id: str, card: str) -> None:
    """At most MAX_FEEDBACK_PER_CARD records per card (issue 28 item 5): a card is accepted or
    overridden a few times at most, and the table is never pruned (it is clinicians' feedback,
    kept for review), so a client cannot grow it without bound through one real card."""
    cur.execute(
        q("SELECT COUNT(*) FROM feedback WHERE service_id = %s AND card = %s"), (service_id, card)
    )
    if cur.fetchone()[0] > MAX_FEEDBACK_PER_CARD:
        raise FeedbackRefused(
            f"feedback[{n}]: this card already has {MAX_FEEDBACK_PER_CARD} feedback records",
            issues=(
                Issue(
                    code="too-costly",
                    diagnostics=f"a card takes at most {MAX_FEEDBACK_PER_CARD} feedback records",
                    expression=f"feedback[{n}]",
                ),
            ),
        )


def _stored(r: Sequence[Any]) -> StoredFeedback:
    return StoredFeedback(
        service_id=r[0],
        card=r[1],
        outcome=r[2],
        outcome_timestamp=r[3],
        accepted_suggestions=tuple(json.loads(r[4])),
        override_code=r[5],
        override_system=r[6],
        override_comment=r[7],
        received_at=r[8],
    )


_INSERT_FEEDBACK = (
    "INSERT INTO feedback (service_id, card, outcome, outcome_timestamp, accepted_suggestions,"
    " override_code, override_system, override_comment, received_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)
_SELECT_FEEDBACK = (
    "SELECT service_id, card, outcome, outcome_timestamp, accepted_suggestions, override_code,"
    " override_system, override_comment, received_at FROM feedback"
)
_UPSERT_SNOOZE = (
    "INSERT INTO snooze (patient_key, rule, evidence, reason, since, until)"
    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (patient_key, rule) DO UPDATE SET"
    " evidence = excluded.evidence, reason = excluded.reason, since = excluded.since,"
    " until = excluded.until"
)


class _SQL:
    """The statements both backends run, on a DB-API cursor, in one transaction each."""

    placeholder = "%s"
    backend: str

    def __init__(
        self,
        snooze_days: float,
        retention_days: float,
        clock: Callable[[], float],
        accept_snooze_days: float = 1,
    ) -> None:
        self.snooze_s = snooze_days * DAY_S
        self.accept_snooze_s = accept_snooze_days * DAY_S
        self.retention_s = max(retention_days, snooze_days + 30) * DAY_S
        self._clock = clock
        self._pruned: dict[str, float] = {}  # what was last pruned when (by its caller's clock)

    def q(self, sql: str) -> str:
        return sql if self.placeholder == "%s" else sql.replace("%s", self.placeholder)

    def _prune_due(self, what: str, now: float) -> bool:
        """True on the first call for `what` and then at most once a minute. Unlocked: two
        threads may both prune, which is harmless."""
        if now - self._pruned.get(what, float("-inf")) < PRUNE_EVERY_S:
            return False
        self._pruned[what] = now
        return True

    def tx(self, *, durable: bool = True, read: bool = False) -> AbstractContextManager[Any]:
        """A transaction. `durable=False` is for what a process crash must not lose but an OS
        crash or power loss may (issued-card records, snoozes looked up, JWT ids seen): no
        fsync wait on commit, and on PostgreSQL each statement commits on its own. `read`
        takes no write lock."""
        raise NotImplementedError

    def add(
        self, service_id: str, items: Iterable[schemas.FeedbackItem], *, caller: str = "|"
    ) -> int:
        now = self._clock()
        stamp = datetime.fromtimestamp(now, UTC).isoformat()
        new = 0
        with self.tx() as cur:
            for n, item in enumerate(items):
                cur.execute(
                    self.q(
                        "SELECT rule, patient_key, evidence, service_id, caller, suggestions"
                        " FROM issued_card WHERE card = %s"
                    ),
                    (item.card,),
                )
                issued = cur.fetchone()
                if self.snooze_s:
                    # Raised inside the transaction: nothing of this post is stored.
                    _check_issued(n, item, issued, service_id, caller)
                cur.execute(self.q(_INSERT_FEEDBACK), _feedback_row(service_id, item, stamp))
                added = max(cur.rowcount, 0)
                if added and self.snooze_s:
                    _check_count(n, cur, self.q, service_id, item.card)
                new += added
                if issued is None or (item.outcome == "accepted" and not item.acceptedSuggestions):
                    continue
                # Overridden: quiet for the snooze period. Accepted: briefly (clinical-logic
                # §3c D20) - accepting a suggestion is not doing it; the card stops for good
                # once the record shows the therapy (the rule no longer fires).
                until = now + (
                    self.snooze_s if item.outcome == "overridden" else self.accept_snooze_s
                )
                cur.execute(
                    self.q(_UPSERT_SNOOZE),
                    (issued[1], issued[0], issued[2], item.outcome, now, until),
                )
        return new

    def list(self, *, service_id: str | None = None, limit: int = 100) -> list[StoredFeedback]:
        sql = _SELECT_FEEDBACK
        args: tuple[object, ...] = ()
        if service_id is not None:
            sql, args = sql + " WHERE service_id = %s", (service_id,)
        with self.tx(read=True) as cur:
            cur.execute(self.q(sql + " ORDER BY id DESC LIMIT %s"), (*args, limit))
            return [_stored(r) for r in cur.fetchall()]

    def first_use(self, iss: str, jti: str, expires_at: float, now: float) -> bool:
        # On every authenticated call, so without an fsync (on SQLite one took 0.6 ms here,
        # more on network disks, holding the write lock of every worker meanwhile). A process
        # killed after the commit keeps the id; only an OS crash within the token's lifetime
        # could forget it, and replaying a token then also needs the token captured.
        with self.tx(durable=False) as cur:
            if self._prune_due("jwt ids", now):
                cur.execute(self.q("DELETE FROM jwt_replay WHERE expires_at < %s"), (now,))
            # One statement tells a replay: a new id is inserted, an id whose record has
            # expired (not pruned yet) is taken over, a live one is left alone (no row changed).
            cur.execute(
                self.q(
                    "INSERT INTO jwt_replay (iss, jti, expires_at) VALUES (%s, %s, %s)"
                    " ON CONFLICT (iss, jti) DO UPDATE SET expires_at = excluded.expires_at"
                    " WHERE jwt_replay.expires_at < %s"
                ),
                (iss, jti, expires_at, now),
            )
            return bool(cur.rowcount == 1)

    def record_issued(self, cards: Sequence[IssuedCard]) -> None:
        if not cards:
            return
        now = self._clock()
        with self.tx(durable=False) as cur:
            if self._prune_due("issued cards and snoozes", now):
                expired = now - self.retention_s
                cur.execute(self.q("DELETE FROM issued_card WHERE issued_at < %s"), (expired,))
                cur.execute(self.q("DELETE FROM snooze WHERE until < %s"), (expired,))
            # One statement for all of a call's cards: one round trip to PostgreSQL, not one
            # a card. A card named twice would be updated twice, which PostgreSQL refuses.
            latest = {c.card: c for c in cards}
            rows = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(latest))
            cur.execute(
                self.q(
                    "INSERT INTO issued_card (card, rule, patient_key, evidence, issued_at,"  # noqa: S608
                    " service_id, caller, suggestions, variant, indicator)"
                    f" VALUES {rows} ON CONFLICT (card) DO UPDATE"
                    " SET evidence = excluded.evidence, issued_at = excluded.issued_at,"
                    " service_id = excluded.service_id, suggestions = excluded.suggestions"
                ),
                [
                    x
                    for c in latest.values()
                    for x in (
                        c.card,
                        c.rule,
                        c.patient_key,
                        c.evidence,
                        now,
                        c.service_id,
                        c.caller,
                        json.dumps(c.suggestions),
                        c.variant,
                        c.indicator,
                    )
                ],
            )

    def snoozes(self, patient_key: str) -> dict[str, Snooze]:
        with self.tx(durable=False, read=True) as cur:
            cur.execute(
                self.q(
                    "SELECT rule, evidence, reason, since, until FROM snooze WHERE patient_key = %s"
                ),
                (patient_key,),
            )
            return {
                r[0]: Snooze(rule=r[0], evidence=r[1], reason=r[2], since=r[3], until=r[4])
                for r in cur.fetchall()
            }

    def report_rows(self, since: float, until: float, service_id: str | None) -> ReportRows:
        # Aggregates only, nothing read row by row into Python: cards by variant and week
        # joined once to their feedback grouped by card; distinct patients; override reasons
        # from the overridden feedback (each finds its card by primary key); snoozes. The
        # variant totals are the sums of their weeks.
        where = "i.issued_at >= %s AND i.issued_at < %s"
        args: list[Any] = [since, until]
        if service_id is not None:
            where += " AND i.service_id = %s"
            args.append(service_id)
        per_card = (
            "SELECT service_id, card,"
            " MAX(CASE WHEN outcome = 'accepted' THEN 1 ELSE 0 END) AS accepted,"
            " MAX(CASE WHEN outcome = 'overridden' THEN 1 ELSE 0 END) AS overridden"
            " FROM feedback GROUP BY service_id, card"
        )
        week = (
            f"CAST(FLOOR((i.issued_at + {_MONDAY_OFFSET_S}) / {_WEEK_S}) AS BIGINT)"
            if self.backend == "postgresql"
            else f"CAST((i.issued_at + {_MONDAY_OFFSET_S}) / {_WEEK_S} AS INTEGER)"
        )
        with self.tx(durable=False, read=True) as cur:
            cur.execute(
                self.q(
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
                self.q(
                    "SELECT i.service_id, i.rule, i.variant, COUNT(DISTINCT i.patient_key)"  # noqa: S608
                    f" FROM issued_card i WHERE {where} GROUP BY i.service_id, i.rule, i.variant"
                ),
                args,
            )
            patients = {(r[0], r[1], r[2]): int(r[3]) for r in cur}
            cur.execute(
                self.q(
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
                self.q(
                    "SELECT rule, reason, COUNT(*) FROM snooze"
                    " WHERE since >= %s AND since < %s GROUP BY rule, reason"
                ),
                (since, until),
            )
            snoozes = [(r[0], r[1], int(r[2])) for r in cur]
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

    def schema_version(self) -> int:
        with self.tx() as cur:
            cur.execute(_VERSION_TABLE)
            cur.execute("SELECT MAX(version) FROM schema_version")
            row = cur.fetchone()
            return int(row[0]) if row and row[0] is not None else 0

    def migrate(self) -> int:
        with self.tx() as cur:
            cur.execute(_VERSION_TABLE)
            cur.execute("SELECT MAX(version) FROM schema_version")
            row = cur.fetchone()
            current = int(row[0]) if row and row[0] is not None else 0
            for version, statements in MIGRATIONS:
                if version <= current:
                    continue
                for sql in statements[self.backend]:
                    cur.execute(sql)
                cur.execute(self.q("INSERT INTO schema_version (version) VALUES (%s)"), (version,))
                current = version
        return current


class SQLiteStore(_SQL):
    """The embedded default: a WAL journal; feedback is on disk (synchronous=FULL) before its
    200 goes out; several processes on one machine share the file (busy timeout)."""

    placeholder = "?"
    backend = "sqlite"

    def __init__(
        self,
        path: Path,
        *,
        snooze_days: float = 30,
        retention_days: float = 60,
        clock: Callable[[], float] = time.time,
        accept_snooze_days: float = 1,
        timeout_s: float = 2.0,
    ) -> None:
        super().__init__(snooze_days, retention_days, clock, accept_snooze_days)
        self.timeout_s = timeout_s
        path.parent.mkdir(parents=True, exist_ok=True)
        # Feedback may hold clinical free text: the file (and its WAL and shared-memory files,
        # which sqlite creates with the same mode) is readable by its owner only.
        for f in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            f.touch(mode=0o600, exist_ok=True)
            f.chmod(0o600)
        self._lock = threading.Lock()
        self._db = self._connect(path, "FULL", timeout_s)  # feedback: on disk before the 200
        # What every call writes (issued cards, JWT ids): WAL without an fsync per commit, as
        # durable across a process crash as FULL (sqlite.org/pragma.html#pragma_synchronous).
        self._fast = self._connect(path, "NORMAL", timeout_s)
        self.migrate()

    @staticmethod
    def _connect(path: Path, synchronous: str, timeout_s: float) -> sqlite3.Connection:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=timeout_s)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
        return db

    @contextmanager
    def tx(self, *, durable: bool = True, read: bool = False) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cur = (self._db if durable else self._fast).cursor()
            try:
                # A reader in WAL mode never waits for writers; a writer takes the lock up front
                # and waits at most timeout_s for another process that holds it (a 503 then,
                # never a 500: issue 28 item 13).
                cur.execute("BEGIN" if read else "BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreUnavailable(
                    f"the SQLite store is locked by another process ({exc}); try again"
                ) from exc
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def close(self) -> None:
        self._db.close()
        self._fast.close()


class PostgresStore(_SQL):
    """PostgreSQL through a psycopg connection pool; every wait for a connection is bounded."""

    backend = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        snooze_days: float = 30,
        retention_days: float = 60,
        pool_size: int = 10,
        timeout_s: float = 2.0,
        require_schema: bool = True,
        clock: Callable[[], float] = time.time,
        accept_snooze_days: float = 1,
    ) -> None:
        super().__init__(snooze_days, retention_days, clock, accept_snooze_days)
        import psycopg
        from psycopg_pool import ConnectionPool, PoolTimeout

        self._errors: tuple[type[Exception], ...] = (PoolTimeout, psycopg.OperationalError)
        self.timeout_s = timeout_s

        # Every statement (and every wait for a lock, as behind a migration or VACUUM FULL) is
        # bounded like the wait for a connection: a 503, never a hang (issue 28 item 9). Not
        # for `cds migrate` (require_schema False), whose statements may rightly take longer.
        limits = {}
        if require_schema:
            ms = max(1, int(timeout_s * 1000))
            limits["options"] = f"-c statement_timeout={ms} -c lock_timeout={ms}"

        def pool(max_size: int, *, autocommit: bool, **options: Any) -> ConnectionPool[Any]:
            return ConnectionPool(
                url,
                min_size=1,
                max_size=max_size,
                timeout=timeout_s,
                open=False,
                kwargs={
                    "connect_timeout": max(1, int(timeout_s)),
                    "autocommit": autocommit,
                    **limits,
                },
                **options,
            )

        # Feedback, migrations, reads of stored feedback: transactions, fsynced at commit.
        self._pool = pool(max(2, pool_size // 4), autocommit=False)  # feedback is rare
        # What every call reads and writes (snoozes, issued cards, JWT ids): each statement its
        # own transaction, committed without waiting for the WAL flush. One round trip a
        # statement; BEGIN, SET LOCAL and COMMIT were three more each time (libpq trace).
        self._fast = pool(pool_size, autocommit=True, configure=_commit_without_waiting)
        try:
            for each in (self._pool, self._fast):
                each.open(wait=True, timeout=max(timeout_s, 5.0))
        except self._errors as exc:
            self.close()
            raise ConfigError(
                f"the database at CDS_DATABASE_URL cannot be reached: {exc}"
            ) from None
        version = self.schema_version() if require_schema else SCHEMA_VERSION
        if version < SCHEMA_VERSION:
            self.close()
            raise ConfigError(
                f"the database schema is at version {version}, this service needs "
                f"{SCHEMA_VERSION}: run `cds migrate`"
            )

    @contextmanager
    def tx(self, *, durable: bool = True, read: bool = False) -> Iterator[Any]:
        """Durable: one transaction. Not durable: each statement commits on its own (none of
        the callers needs two of its statements to commit together)."""
        pool = self._pool if durable else self._fast
        try:
            with pool.connection(timeout=self.timeout_s) as conn, conn.cursor() as cur:
                yield cur
        except self._errors as exc:
            raise StoreUnavailable(
                f"the database did not answer within {self.timeout_s:g} s; try again"
            ) from exc

    def close(self) -> None:
        self._pool.close()
        self._fast.close()


def _commit_without_waiting(conn: Any) -> None:
    conn.execute("SET synchronous_commit = off")  # for the session: this pool's connections


class _RedactPassword(logging.Filter):
    """psycopg's pool logs libpq's connection errors, which quote the whole URI: the password
    is replaced wherever it appears (issue 28: a malformed URL echoed it into the log)."""

    def __init__(self, password: str) -> None:
        super().__init__()
        self.password = password

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if self.password in text:
            record.msg, record.args = text.replace(self.password, "***"), None
        return True


def _check_database_url(url: str) -> None:
    """Refuse a URL that does not parse before psycopg sees it, never quoting it; and keep its
    password out of psycopg's own log records."""
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        raise ConfigError(f"CDS_DATABASE_URL does not parse as a URL ({exc})") from None
    if not host:
        raise ConfigError("CDS_DATABASE_URL names no host")
    if port is not None and not 0 < port < 65536:
        raise ConfigError("CDS_DATABASE_URL has a port out of range")
    if parts.password:
        for name in ("psycopg", "psycopg.pool"):
            logger = logging.getLogger(name)
            if not any(isinstance(f, _RedactPassword) for f in logger.filters):
                logger.addFilter(_RedactPassword(parts.password))


def open_store(
    *,
    database_url: str | None,
    sqlite_path: Path,
    snooze_days: float,
    accept_snooze_days: float = 1,
    retention_days: float = 400,
    timeout_s: float = 2.0,
    require_schema: bool = True,
) -> Store:
    """The configured backend: PostgreSQL when a URL is given, else the SQLite file."""
    if database_url:
        if not database_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("CDS_DATABASE_URL must be a postgresql:// URL")
        _check_database_url(database_url)
        return PostgresStore(
            database_url,
            snooze_days=snooze_days,
            accept_snooze_days=accept_snooze_days,
            retention_days=retention_days,
            timeout_s=timeout_s,
            require_schema=require_schema,
        )
    return SQLiteStore(
        sqlite_path,
        snooze_days=snooze_days,
        accept_snooze_days=accept_snooze_days,
        retention_days=retention_days,
        timeout_s=timeout_s,
    )
