"""The SQLite store: expired issued-card records and ended snoozes are pruned, at most once a
minute, through indexes (a scan of a table that only grows used to cost every call more as it
grew); an older database is upgraded in place; what every call writes without an fsync still
survives the process being killed. PostgreSQL: test_scale_out."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from cds.errors import FeedbackRefused
from cds.schemas import FeedbackItem
from cds.store import DAY_S, MIGRATIONS, PRUNE_EVERY_S, SCHEMA_VERSION, IssuedCard, SQLiteStore
from tests.conftest import ROOT, record_issued

T0 = 1_800_000_000.0
RETENTION_S = 60 * DAY_S  # SQLiteStore's defaults: 30 snooze days, 60 retention days


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def issued(card: str) -> IssuedCard:
    return IssuedCard(card=card, rule="R1", patient_key="k", evidence="e")


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as c:
        return list(c.execute(sql))


def insert_expired(db: Path, card: str, at: float) -> None:
    """An issued card and an ended snooze, both older than the retention period at `at`."""
    old = at - RETENTION_S - 1
    with sqlite3.connect(db) as c:
        c.execute(
            "INSERT INTO issued_card (card, rule, patient_key, evidence, issued_at)"
            " VALUES (?, 'R1', 'k', 'e', ?)",
            (card, old),
        )
        c.execute(
            "INSERT INTO snooze VALUES (?, 'R1', 'e', 'overridden', ?, ?)",
            (f"patient-of-{card}", old - DAY_S, old),
        )


def kept(db: Path) -> tuple[list[object], list[object]]:
    cards = [r[0] for r in rows(db, "SELECT card FROM issued_card ORDER BY card")]
    snoozed = [r[0] for r in rows(db, "SELECT patient_key FROM snooze ORDER BY patient_key")]
    return cards, snoozed


@pytest.fixture(name="store")
def _store(tmp_path: Path) -> tuple[SQLiteStore, Path, Clock]:
    clock = Clock()
    db = tmp_path / "s.sqlite3"
    return SQLiteStore(db, clock=clock), db, clock


def test_expired_records_are_pruned_and_current_ones_kept(
    store: tuple[SQLiteStore, Path, Clock],
) -> None:
    s, db, _ = store
    insert_expired(db, "old", T0)
    with sqlite3.connect(db) as c:  # a snooze that ended within the retention period stays
        c.execute("INSERT INTO snooze VALUES ('recent', 'R1', 'e', 'overridden', ?, ?)", (T0, T0))
    s.record_issued([issued("new")])
    assert kept(db) == (["new"], ["recent"])
    s.close()


def test_pruning_runs_at_most_once_a_minute(store: tuple[SQLiteStore, Path, Clock]) -> None:
    s, db, clock = store
    s.record_issued([issued("a")])  # the first record prunes
    insert_expired(db, "old", clock.now)
    clock.now += PRUNE_EVERY_S - 1
    s.record_issued([issued("b")])
    assert kept(db) == (["a", "b", "old"], ["patient-of-old"])
    clock.now += 1
    s.record_issued([issued("c")])
    assert kept(db) == (["a", "b", "c"], [])
    s.close()


def test_a_calls_cards_are_recorded_together_and_a_repeated_card_once(
    store: tuple[SQLiteStore, Path, Clock],
) -> None:
    s, db, _ = store
    again = IssuedCard(card="a", rule="R1", patient_key="k", evidence="changed")
    s.record_issued([issued("a"), issued("b"), again])
    assert rows(db, "SELECT card, evidence FROM issued_card ORDER BY card") == [
        ("a", "changed"),
        ("b", "e"),
    ]
    s.close()


@pytest.mark.parametrize("way", ["tx", "tx_now"])
def test_a_transaction_that_raises_writes_nothing_and_the_next_one_commits(
    store: tuple[SQLiteStore, Path, Clock], way: str
) -> None:
    s, db, _ = store
    begin = s.tx if way == "tx" else s.tx_now

    def fail_after_insert() -> None:
        with begin() as cur:
            s._record_issued(cur, [issued("lost")])
            raise KeyError("the call failed after its insert")

    with pytest.raises(KeyError):
        fail_after_insert()
    with begin() as cur:
        s._record_issued(cur, [issued("kept")])
    assert rows(db, "SELECT card FROM issued_card") == [("kept",)]
    s.close()


@pytest.mark.parametrize(("table", "column"), [("issued_card", "issued_at"), ("snooze", "until")])
def test_pruning_finds_expired_rows_through_an_index(
    store: tuple[SQLiteStore, Path, Clock], table: str, column: str
) -> None:
    s, db, _ = store
    plan = rows(db, f"EXPLAIN QUERY PLAN DELETE FROM {table} WHERE {column} < 1")  # noqa: S608
    assert any("USING" in str(r[-1]) and "INDEX" in str(r[-1]) for r in plan), plan
    s.close()


def _database_at(db: Path, at: int) -> sqlite3.Connection:
    """A SQLite file migrated to schema version `at` only, as an older release left it."""
    c = sqlite3.connect(db)
    c.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for version, statements in MIGRATIONS:
        if version <= at:
            for sql in statements["sqlite"]:
                c.execute(sql)
            c.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    return c


def test_a_version_2_database_is_upgraded_in_place(tmp_path: Path) -> None:
    db = tmp_path / "v2.sqlite3"
    with _database_at(db, 2) as c:
        c.execute("INSERT INTO snooze VALUES ('p', 'R1', 'e', 'accepted', 1, 2)")
        c.execute("INSERT INTO issued_card VALUES ('old-card', 'R1', 'p', 'e', 1)")
    assert "snooze_until" not in str(rows(db, "SELECT name FROM sqlite_master"))
    s = SQLiteStore(db)
    assert s.schema_version() == SCHEMA_VERSION == 6
    assert "snooze_until" in str(rows(db, "SELECT name FROM sqlite_master WHERE type='index'"))
    assert rows(db, "SELECT patient_key, reason FROM snooze") == [("p", "accepted")]
    # Version 4: a card issued before names no service nor caller, so it takes no feedback.
    assert rows(db, "SELECT card, service_id, caller, suggestions FROM issued_card") == [
        ("old-card", "", "", "[]")
    ]
    s.close()


def test_a_card_issued_before_concerns_were_kept_snoozes_under_its_rule(tmp_path: Path) -> None:
    """Schema version 6 keeps each card's concern; feedback on a card issued by version 5
    snoozes it by its rule, as version 5 did, and the snooze quiets it by its evidence."""
    db = tmp_path / "v5.sqlite3"
    with _database_at(db, 5) as c:
        c.execute(
            "INSERT INTO issued_card (card, rule, patient_key, evidence, issued_at, service_id,"
            " caller, suggestions, variant, indicator)"
            " VALUES ('c5', 'R1', 'k', 'e', 1, 'mbc-bone-patient-view', '|', '[]', 'start', 'info')"
        )
    s = SQLiteStore(db)
    assert s.add("mbc-bone-patient-view", [_overridden("c5")]) == 1
    assert list(s.snoozes("k")) == ["R1"]
    s.close()


def test_what_a_call_wrote_survives_the_process_being_killed(tmp_path: Path) -> None:
    """A JWT id and an issued card are committed without an fsync; SIGKILL right after the
    commit must not lose them (only an OS crash or power loss may)."""
    db = tmp_path / "killed.sqlite3"
    script = (
        "import os, signal; from pathlib import Path; from cds.store import IssuedCard, "
        f"SQLiteStore; s = SQLiteStore(Path({str(db)!r})); "
        "assert s.first_use('iss', 'jti-1', 2e9, 1.8e9); "
        "s.record_issued([IssuedCard(card='c', rule='R1', patient_key='k', evidence='e')]); "
        "os.kill(os.getpid(), signal.SIGKILL)"
    )
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    s = SQLiteStore(db)
    assert s.first_use("iss", "jti-1", 2e9, 1.8e9) is False  # a replay: refused
    assert s.first_use("iss", "jti-2", 2e9, 1.8e9) is True
    assert rows(db, "SELECT card FROM issued_card") == [("c",)]
    s.close()


def test_a_jwt_id_is_refused_while_its_record_lives_and_free_again_after(
    store: tuple[SQLiteStore, Path, Clock],
) -> None:
    s, db, _ = store
    assert s.first_use("iss", "a", T0 + 30, T0)  # the first use prunes: the next in a minute
    assert s.first_use("iss", "b", T0 + 5, T0 + 1)
    assert not s.first_use("iss", "a", T0 + 60, T0 + 20)  # a replay
    assert s.first_use("other-iss", "a", T0 + 60, T0 + 20)  # ids are per issuer
    assert s.first_use("iss", "a", T0 + 90, T0 + 31)  # its record expired: not a replay
    assert not s.first_use("iss", "a", T0 + 90, T0 + 32)  # the new record holds
    expired_b = ("iss", "b")
    assert expired_b in rows(db, "SELECT iss, jti FROM jwt_replay")  # not pruned yet
    assert s.first_use("iss", "c", T0 + 90, T0 + PRUNE_EVERY_S)
    assert expired_b not in rows(db, "SELECT iss, jti FROM jwt_replay")
    s.close()


def test_a_store_locked_by_another_process_is_a_503_not_a_500(tmp_path: Path) -> None:
    """Issue 28 item 13: another process holding the SQLite write lock used to give a 500
    after 5 s; the wait is bounded by the store's timeout and ends in StoreUnavailable."""
    import time

    from cds.errors import StoreUnavailable

    path = tmp_path / "locked.sqlite3"
    store = SQLiteStore(path, timeout_s=0.2)
    record_issued(store, "c")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    item = FeedbackItem.model_validate(
        {"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-11-22T10:00:00Z"}
    )
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="locked by another process"):
        store.add("mbc-bone-patient-view", [item])
    assert time.monotonic() - started < 2
    other.execute("ROLLBACK")
    assert store.add("mbc-bone-patient-view", [item]) == 1
    store.close()
    other.close()


def _overridden(card: str) -> FeedbackItem:
    return FeedbackItem.model_validate(
        {"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-11-22T10:00:00Z"}
    )


def test_feedback_from_another_caller_is_refused_and_snoozes_nothing(tmp_path: Path) -> None:
    """Issue 28 item 1: issuer B posting feedback on issuer A's card (uuid leaked or guessed)
    must not quiet A's card."""
    store = SQLiteStore(tmp_path / "s.sqlite3")
    record_issued(store, "c1", caller="https://ehr-a.example.org|")
    with pytest.raises(FeedbackRefused, match="no card with this uuid was issued"):
        store.add("mbc-bone-patient-view", [_overridden("c1")], caller="https://ehr-b.example.org|")
    assert store.snoozes("k") == {}
    assert store.list() == []
    assert (
        store.add("mbc-bone-patient-view", [_overridden("c1")], caller="https://ehr-a.example.org|")
        == 1
    )
    assert list(store.snoozes("k")) == ["R1:start"]
    store.close()


def test_with_snoozing_off_feedback_is_stored_as_received(tmp_path: Path) -> None:
    """No card is recorded then, and feedback silences nothing: it is kept for review."""
    store = SQLiteStore(tmp_path / "s.sqlite3", snooze_days=0)
    assert store.add("mbc-bone-patient-view", [_overridden("never-recorded")]) == 1
    store.close()


def test_the_event_loops_store_calls_never_wait(tmp_path: Path) -> None:
    """record_issued_now and snoozes_now (what a call on the event loop uses) give up at once,
    writing nothing, while another thread of this process holds the store (a feedback write
    waiting for the disk) or another process holds the file's write lock; a read still goes
    through past another process's writer (WAL)."""
    import time

    path = tmp_path / "busy.sqlite3"
    store = SQLiteStore(path, timeout_s=2.0)
    assert store.record_issued_now([issued("free")])
    assert store.snoozes_now("p") == {}

    with store._lock:  # another thread's transaction
        started = time.monotonic()
        assert not store.record_issued_now([issued("held-by-a-thread")])
        assert store.snoozes_now("p") is None
        assert time.monotonic() - started < 0.5  # well under the 2 s a waiting call would take

    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process writing
    started = time.monotonic()
    assert not store.record_issued_now([issued("held-by-a-process")])
    assert store.snoozes_now("p") == {}
    assert time.monotonic() - started < 0.5
    other.execute("COMMIT")
    other.close()

    assert store.record_issued_now([issued("free-again")])
    cards = {r[0] for r in rows(path, "SELECT card FROM issued_card")}
    assert cards == {"free", "free-again"}
    store.close()
