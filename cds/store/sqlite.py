"""The embedded backend: one SQLite file in WAL mode."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cds.errors import StoreUnavailable
from cds.store.sql import _SQL


class SQLiteStore(_SQL):
    """The embedded default: a WAL journal; feedback is on disk (synchronous=FULL) before its
    200 goes out; several processes on one machine share the file (busy timeout)."""

    placeholder = "?"
    backend = "sqlite"
    local = True

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
        # What the event loop writes and reads (tx_now): never waits for another writer.
        self._now = self._connect(path, "NORMAL", 0.0)
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
            yield from _committed(cur)

    @contextmanager
    def tx_now(self, *, read: bool = False) -> Iterator[sqlite3.Cursor | None]:
        """A transaction begun at once, or None when it would wait: another thread in this
        process holds the store (a feedback write waiting for the disk), or another process
        writes to the file. The event loop uses it, and must never wait on a lock."""
        if not self._lock.acquire(blocking=False):
            yield None
            return
        try:
            cur = self._now.cursor()
            try:
                cur.execute("BEGIN" if read else "BEGIN IMMEDIATE")
            except sqlite3.OperationalError:  # "database is locked": busy_timeout is 0
                yield None
                return
            yield from _committed(cur)
        finally:
            self._lock.release()

    def close(self) -> None:
        self._db.close()
        self._fast.close()
        self._now.close()


def _committed(cur: sqlite3.Cursor) -> Iterator[sqlite3.Cursor]:
    """The body of a transaction `cur` has begun: committed when the block ends, rolled back
    when it raises."""
    try:
        yield cur
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    cur.execute("COMMIT")
