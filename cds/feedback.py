"""Feedback storage: durable, idempotent, behind a small interface (SQLite in WAL mode here)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from cds import schemas


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


class FeedbackStore(Protocol):
    def add(self, service_id: str, items: Iterable[schemas.FeedbackItem]) -> int:
        """Store items; returns how many were new. Must be durable before it returns."""

    def list(self, *, service_id: str | None = None, limit: int = 100) -> list[StoredFeedback]: ...

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    service_id TEXT NOT NULL,
    card TEXT NOT NULL,
    outcome TEXT NOT NULL,
    outcome_timestamp TEXT NOT NULL,
    accepted_suggestions TEXT NOT NULL,
    override_code TEXT,
    override_system TEXT,
    override_comment TEXT,
    received_at TEXT NOT NULL,
    UNIQUE (service_id, card, outcome, outcome_timestamp)
)
"""


class SQLiteFeedbackStore:
    """WAL journal with synchronous=FULL: a commit is on disk before the 200 goes out.

    Feedback is idempotent on (service, card uuid, outcome, outcomeTimestamp): the same
    feedback sent twice is stored once. Free-text override comments are stored as sent (they
    may contain clinical text) and are never logged.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Feedback may hold clinical free text: the file (and its WAL and shared-memory files,
        # which sqlite creates with the same mode) is readable by its owner only.
        for f in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            f.touch(mode=0o600, exist_ok=True)
            f.chmod(0o600)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(_SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def add(self, service_id: str, items: Iterable[schemas.FeedbackItem]) -> int:
        now = datetime.now(UTC).isoformat()
        new = 0
        with self._tx() as db:
            for item in items:
                reason = item.overrideReason
                cur = db.execute(
                    "INSERT OR IGNORE INTO feedback (service_id, card, outcome, outcome_timestamp,"
                    " accepted_suggestions, override_code, override_system, override_comment,"
                    " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        service_id,
                        item.card,
                        item.outcome,
                        item.outcomeTimestamp.astimezone(UTC).isoformat(),
                        json.dumps([s.id for s in item.acceptedSuggestions or ()]),
                        reason.reason.code if reason and reason.reason else None,
                        reason.reason.system if reason and reason.reason else None,
                        reason.userComment if reason else None,
                        now,
                    ),
                )
                new += cur.rowcount
        return new

    def list(self, *, service_id: str | None = None, limit: int = 100) -> list[StoredFeedback]:
        sql = (
            "SELECT service_id, card, outcome, outcome_timestamp, accepted_suggestions,"
            " override_code, override_system, override_comment, received_at FROM feedback"
        )
        args: tuple[object, ...] = ()
        if service_id is not None:
            sql += " WHERE service_id = ?"
            args = (service_id,)
        sql += " ORDER BY id DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, limit)).fetchall()
        return [
            StoredFeedback(
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
            for r in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()
