"""Several instances on one PostgreSQL (a real cluster on loopback, started here): nothing that
matters is per process - the JWT replay cache, feedback, card snoozes - and a process killed
mid-stream loses nothing it acknowledged. Also `cds migrate`, `cds check`, `--workers`."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest

from cds.store import DAY_S, MIGRATIONS, IssuedCard, PostgresStore
from fixtures.factories import for_patient
from tests.conftest import ROOT
from tests.servers import (
    issue_card,
    post_feedback_until_killed,
    postgres_cluster,
    running_service,
)
from tests.test_auth import EC_KEY, JWKS

PV = "/cds-services/mbc-bone-patient-view"
BASE = "https://cds.example.org"  # both instances are this one service behind a balancer
ISS = "https://ehr.example.org"
SCENARIO = ROOT / "fixtures" / "mbc-bone-patient-view" / "her2-negative-bone-mets-no-bma"


@pytest.fixture(scope="module", name="pg")
def _pg() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "cds", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def fresh_database(pg: str, name: str) -> str:
    with psycopg.connect(pg, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return pg.rsplit("/", 1)[0] + f"/{name}"


def test_migrate_is_versioned_and_idempotent_and_checked(pg: str) -> None:
    url = fresh_database(pg, "migrations")
    before = cli("check", CDS_DATABASE_URL=url)
    assert before.returncode == 1
    assert "run `cds migrate`" in before.stderr
    first = cli("migrate", CDS_DATABASE_URL=url)
    assert first.returncode == 0, first.stderr
    assert "schema version 0 -> 6" in first.stdout
    again = cli("migrate", CDS_DATABASE_URL=url)
    assert "schema version 6 -> 6" in again.stdout
    after = cli("check", CDS_DATABASE_URL=url)
    assert after.returncode == 0, after.stderr
    assert "schema version 6, OK" in after.stdout


def test_a_version_2_database_is_refused_until_migrated_then_prunes_by_index(pg: str) -> None:
    url = fresh_database(pg, "upgrade")
    with psycopg.connect(url) as c:
        c.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for version, statements in MIGRATIONS[:2]:
            for sql in statements["postgresql"]:
                c.execute(sql)
            c.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
    refused = cli("check", CDS_DATABASE_URL=url)
    assert refused.returncode == 1
    assert "at version 2, this service needs 6: run `cds migrate`" in refused.stderr
    assert "schema version 2 -> 6" in cli("migrate", CDS_DATABASE_URL=url).stdout
    with psycopg.connect(url) as c:
        indexes = {r[0] for r in c.execute("SELECT indexname FROM pg_indexes")}
        assert {"snooze_until", "issued_card_age"} <= indexes
        now = time.time()
        old = now - 90 * DAY_S  # past the 60-day retention
        c.execute(
            "INSERT INTO issued_card (card, rule, patient_key, evidence, issued_at)"
            " VALUES ('old', 'R1', 'k', 'e', %s)",
            (old,),
        )
        c.execute("INSERT INTO snooze VALUES ('k', 'R1', 'e', 'overridden', %s, %s)", (old, old))
    store = PostgresStore(url)
    try:
        first = IssuedCard(card="new", rule="R1", patient_key="k", evidence="e")
        second = IssuedCard(card="other", rule="R6", patient_key="k", evidence="e")
        changed = IssuedCard(card="new", rule="R1", patient_key="k", evidence="changed")
        store.record_issued([first, second, changed])  # one statement; "new" named twice
    finally:
        store.close()
    with psycopg.connect(url) as c:
        cards = c.execute("SELECT card, evidence FROM issued_card ORDER BY card").fetchall()
        assert cards == [("new", "changed"), ("other", "e")]
        assert list(c.execute("SELECT * FROM snooze")) == []


def test_feedback_waits_for_the_disk_and_what_every_call_writes_does_not(pg: str) -> None:
    url = fresh_database(pg, "commits")
    assert cli("migrate", CDS_DATABASE_URL=url).returncode == 0
    store = PostgresStore(url)
    try:
        with store.tx() as cur:  # feedback: on disk before its 200
            cur.execute("SHOW synchronous_commit")
            assert cur.fetchone() == ("on",)
        with store.tx(durable=False) as cur:  # issued cards, snoozes, JWT ids
            cur.execute("SHOW synchronous_commit")
            assert cur.fetchone() == ("off",)
        now = time.time()
        assert store.first_use("iss", "jti-1", now + 60, now)
        assert not store.first_use("iss", "jti-1", now + 60, now + 1)  # a replay
        assert store.first_use("iss", "jti-1", now + 120, now + 61)  # its record expired
        assert not store.first_use("iss", "jti-1", now + 120, now + 62)
    finally:
        store.close()


def test_a_database_that_does_not_answer_is_a_clear_error(tmp_path: Path) -> None:
    down = cli("check", CDS_DATABASE_URL="postgresql://cds@127.0.0.1:9/none")
    assert down.returncode == 1
    assert "cannot be reached" in down.stderr


@pytest.fixture(scope="module", name="instances")
def _instances(pg: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Two `cds serve` processes on one migrated database, client JWTs required."""
    url = fresh_database(pg, "shared")
    assert cli("migrate", CDS_DATABASE_URL=url).returncode == 0
    tmp = tmp_path_factory.mktemp("instances")
    keys = tmp / "jwks.json"
    keys.write_text(json.dumps(JWKS))
    env = {
        "CDS_DATABASE_URL": url,
        "CDS_AUTH_REQUIRED": "true",
        "CDS_TRUSTED_ISSUERS": json.dumps([{"iss": ISS, "jwks_file": str(keys)}]),
        "CDS_PUBLIC_BASE_URL": BASE,
        "CDS_PATIENT_KEY_SECRET": "a-test-secret-that-keys-patients",
    }
    with (
        running_service(tmp / "a", **env) as (a, _),
        running_service(tmp / "b", **env) as (b, _),
    ):
        yield [a, b]


def token(path: str = PV) -> str:
    now = time.time()
    claims = {
        "iss": ISS,
        "aud": BASE + path,
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, EC_KEY, algorithm="ES384", headers={"kid": "ec-1", "typ": "JWT"})


def call(base: str, body: dict[str, Any], path: str = PV, tok: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {tok or token(path)}"}
    return httpx.post(base + path, json=body, headers=headers, timeout=30)


def request_body() -> dict[str, Any]:
    body: dict[str, Any] = json.loads((SCENARIO / "request.json").read_text())
    body["hookInstance"] = str(uuid.uuid4())
    return body


def test_a_jti_replayed_on_the_other_instance_is_refused(instances: list[str]) -> None:
    a, b = instances
    tok = token()
    assert call(a, request_body(), tok=tok).status_code == 200
    assert call(b, request_body(), tok=tok).status_code == 401


def test_feedback_to_both_is_listed_once_each(instances: list[str], pg: str) -> None:
    a, b = instances
    fb = f"{PV}/feedback"
    # Each instance's own card, for a patient of its own (an override snoozes the patient's
    # card, and the store is shared with the other tests); either instance may take feedback.
    cards = {}
    for base in (a, b):
        body = for_patient(request_body(), f"feedback-{uuid.uuid4()}")
        cards[base] = call(base, body).json()["cards"][0]["uuid"]
    for base, card in cards.items():
        item = {
            "card": card,
            "outcome": "overridden",
            "outcomeTimestamp": "2026-11-22T10:00:00Z",
            "overrideReason": {"userComment": "seen"},
        }
        for _ in range(2):  # the same feedback twice: stored once
            r = call(base, {"feedback": [item]}, path=fb)
            assert r.status_code == 200, r.text
    url = pg.rsplit("/", 1)[0] + "/shared"
    listed = cli("feedback", "--json", "--limit", "1000", CDS_DATABASE_URL=url)
    assert listed.returncode == 0, listed.stderr
    rows = [r["card"] for r in json.loads(listed.stdout)]
    assert sorted(c for c in rows if c in cards.values()) == sorted(cards.values())


def test_a_snooze_set_through_one_instance_holds_on_the_other(instances: list[str]) -> None:
    a, b = instances
    first = call(a, request_body()).json()["cards"]
    r1 = next(c for c in first if c["extension"]["org.cds-mbc-bone.rule"] == "R1")
    item = {
        "card": r1["uuid"],
        "outcome": "overridden",
        "overrideReason": {"reason": r1["overrideReasons"][0]},
        "outcomeTimestamp": "2026-11-22T10:00:00Z",
    }
    assert call(a, {"feedback": [item]}, path=f"{PV}/feedback").status_code == 200
    later = call(b, request_body()).json()["cards"]
    assert "R1" not in [c["extension"]["org.cds-mbc-bone.rule"] for c in later]
    # New evidence (a new creatinine) brings it back, saying why.
    changed = request_body()
    labs = changed["prefetch"]["labs"]["entry"]
    extra = copy.deepcopy(
        next(e for e in labs if e["resource"]["code"]["coding"][0]["code"] == "2160-0")
    )
    extra["resource"]["id"] = "creatinine-new"
    extra["resource"]["valueQuantity"]["value"] = 0.9
    extra["resource"]["effectiveDateTime"] = "2026-11-21"
    labs.append(extra)
    back = call(b, changed).json()["cards"]
    r1_again = next(c for c in back if c["extension"]["org.cds-mbc-bone.rule"] == "R1")
    assert "Shown again" in r1_again["detail"]
    assert "changed since" in r1_again["detail"]


def test_kill_9_of_one_instance_loses_nothing_acknowledged(pg: str, tmp_path: Path) -> None:
    url = fresh_database(pg, "durability")
    assert cli("migrate", CDS_DATABASE_URL=url).returncode == 0
    with (
        running_service(tmp_path / "other", CDS_DATABASE_URL=url),
        running_service(tmp_path / "killed", CDS_DATABASE_URL=url) as (base, proc),
    ):
        acknowledged = post_feedback_until_killed(base, proc)
    with psycopg.connect(url) as c:
        stored = {r[0] for r in c.execute("SELECT outcome_timestamp FROM feedback")}
    assert acknowledged <= stored


def test_several_workers_share_one_sqlite_store(tmp_path: Path) -> None:
    """`cds serve --workers 2`: both processes answer; feedback lands in one file."""
    store = {"CDS_FEEDBACK_DB": str(tmp_path / "shared.sqlite3")}
    with running_service(tmp_path, "--workers", "2", **store) as (base, _):
        card = issue_card(base)["uuid"]
        for i in range(20):
            item = {
                "card": card,
                "outcome": "overridden",
                "overrideReason": {"userComment": "x"},
                "outcomeTimestamp": f"2026-11-22T10:00:{i:02}Z",
            }
            assert httpx.post(f"{base}{PV}/feedback", json={"feedback": [item]}).status_code == 200
            assert httpx.post(base + PV, json=request_body(), timeout=30).status_code == 200
    listed = cli("feedback", "--json", "--limit", "100", **store)
    stored = json.loads(listed.stdout)
    assert {r["card"] for r in stored} == {card}
    assert sorted(r["outcome_timestamp"] for r in stored) == [
        f"2026-11-22T10:00:{i:02}+00:00" for i in range(20)
    ]


def test_a_locked_table_is_a_503_not_a_hang(pg: str) -> None:
    """Issue 28 item 9: with a table locked (a migration, VACUUM FULL) calls used to hang past
    20 s; every statement and lock wait is now bounded by CDS_DATABASE_TIMEOUT_S."""
    import threading

    from cds.errors import StoreUnavailable
    from cds.store import PostgresStore

    url = fresh_database(pg, "locked")
    assert cli("migrate", CDS_DATABASE_URL=url).returncode == 0
    store = PostgresStore(url, timeout_s=0.5)
    outcome: list[object] = []

    def read() -> None:
        try:
            outcome.append(store.snoozes("k"))
        except StoreUnavailable as exc:
            outcome.append(exc)

    with psycopg.connect(url) as locker:
        locker.execute("LOCK TABLE snooze IN ACCESS EXCLUSIVE MODE")
        worker = threading.Thread(target=read, daemon=True)
        worker.start()
        worker.join(timeout=10)
        assert not worker.is_alive(), "the read hung behind the lock"
        locker.rollback()
    assert isinstance(outcome[0], StoreUnavailable)
    assert store.snoozes("k") == {}
    store.close()
