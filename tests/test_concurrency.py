"""Where a call's evaluation runs: a typical chart on the event loop, one call's turn at a time;
a large chart (or one fetched from the EHR) in the worker thread, while /health and discovery
keep answering."""

from __future__ import annotations

import gc
import json
import sqlite3
import sys
import threading
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import respx
from fastapi.testclient import TestClient

import cds.call
from cds.app import create_app
from cds.call import evaluate_call, resources_sent
from cds.schemas import HookRequest
from cds.server import tune_for_serving
from cds.services import Knowledge
from cds.settings import Settings
from tests.conftest import AS_OF, BONE_METS_REQUEST, PATIENT_VIEW
from tests.test_api import PV, minimal_request


@contextmanager
def client_with(tmp_path: Path, knowledge: Knowledge, **settings: Any) -> Iterator[TestClient]:
    """The app in-process with these settings (the `client` fixture's, otherwise)."""
    app = create_app(
        Settings(feedback_db=tmp_path / "other.sqlite3", **settings),
        knowledge=knowledge,
        http_client=httpx.AsyncClient(),
        today=lambda: AS_OF,
    )
    with TestClient(app) as client:
        yield client


def test_health_and_discovery_answer_while_every_evaluation_slot_is_busy(
    tmp_path: Path, knowledge: Knowledge, monkeypatch: pytest.MonkeyPatch
) -> None:
    with client_with(tmp_path, knowledge, evaluate_on_loop_max_resources=0) as client:
        _health_while_held(client, monkeypatch)


def _health_while_held(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    started, release = threading.Event(), threading.Event()

    def held(*args: Any, **kwargs: Any) -> Any:
        started.set()
        assert release.wait(30), "the test never released the evaluation"
        return evaluate_call(*args, **kwargs)

    monkeypatch.setattr(cds.call, "evaluate_call", held)
    answers: dict[str, int] = {}

    def call() -> None:
        answers["call"] = client.post(PV, json=minimal_request()).status_code

    caller = threading.Thread(target=call)
    caller.start()
    try:
        assert started.wait(30), "the evaluation never started"
        # The only evaluation slot is taken and its thread blocked: these must not need it.
        assert client.get("/health").status_code == 200
        assert client.get("/cds-services").status_code == 200
        assert "call" not in answers  # still held: the answers above did not wait for it
    finally:
        release.set()
        caller.join(30)
    assert answers["call"] == 200


def _threads(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, body: dict[str, Any] | None = None
) -> tuple[int, int]:
    """(the thread that parsed the call, the thread that evaluated it) for one call."""
    seen: dict[str, int] = {}
    checked, evaluated = cds.call.checked_request, cds.call.evaluate_call

    def checking(*args: Any, **kwargs: Any) -> Any:
        seen["loop"] = threading.get_ident()
        return checked(*args, **kwargs)

    def evaluating(*args: Any, **kwargs: Any) -> Any:
        seen["evaluation"] = threading.get_ident()
        return evaluated(*args, **kwargs)

    monkeypatch.setattr(cds.call, "checked_request", checking)
    monkeypatch.setattr(cds.call, "evaluate_call", evaluating)
    path = f"/cds-services/{PATIENT_VIEW}" if body else PV
    assert client.post(path, json=body or minimal_request()).status_code == 200
    return seen["loop"], seen["evaluation"]


def test_a_typical_chart_is_evaluated_on_the_event_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop, evaluation = _threads(client, monkeypatch)
    assert evaluation == loop


def test_a_large_chart_is_evaluated_in_the_worker_thread(
    tmp_path: Path, knowledge: Knowledge, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = json.loads(BONE_METS_REQUEST.read_text())
    sent = resources_sent(HookRequest.model_validate(body))
    with client_with(tmp_path, knowledge, evaluate_on_loop_max_resources=sent - 1) as client:
        loop, evaluation = _threads(client, monkeypatch, body)
    assert evaluation != loop
    # One resource fewer than the chart holds sends it to the thread; as many keeps it.
    with client_with(tmp_path, knowledge, evaluate_on_loop_max_resources=sent) as client:
        loop, evaluation = _threads(client, monkeypatch, body)
    assert evaluation == loop


def test_with_0_every_chart_is_evaluated_in_the_worker_thread(
    tmp_path: Path, knowledge: Knowledge, monkeypatch: pytest.MonkeyPatch
) -> None:
    with client_with(tmp_path, knowledge, evaluate_on_loop_max_resources=0) as client:
        loop, evaluation = _threads(client, monkeypatch)
    assert evaluation != loop


FHIR = "http://127.0.0.1:8090/fhir"


@pytest.mark.parametrize("what", ["a first page", "a Medication not sent"])
def test_a_sent_prefetch_with_something_to_fetch_is_evaluated_in_the_worker_thread(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    """Every key sent, but one is the first page of its search, or a record names a Medication
    the request lacks: what is missing is fetched, and never while the call holds the event
    loop's turn (every other call would wait on the EHR): the call goes to the worker thread."""
    condition = {"resourceType": "Condition", "id": "c2", "subject": {"reference": "Patient/p1"}}
    statement = {
        "resourceType": "MedicationStatement",
        "id": "s1",
        "status": "active",
        "subject": {"reference": "Patient/p1"},
        "medicationReference": {"reference": "Medication/m1"},
    }
    body = minimal_request(fhirServer=FHIR)
    if what == "a first page":
        body["prefetch"]["conditions"] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "link": [{"relation": "next", "url": f"{FHIR}/Condition?page=2"}],
        }
        answer = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": condition}]}
        path = "/fhir/Condition"
    else:
        body["prefetch"]["medicationStatements"] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": statement}],
        }
        answer = {"resourceType": "Bundle", "type": "searchset"}
        path = "/fhir/Medication"
    with respx.mock() as mock:
        fetched = mock.get(url__startswith=f"http://127.0.0.1:8090{path}").respond(json=answer)
        loop, evaluation = _threads(client, monkeypatch, body)
    assert fetched.call_count == 1
    assert evaluation != loop


def test_calls_evaluated_on_the_loop_take_one_loop_iteration_each(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twelve calls at once on the service's event loop: each evaluation runs in a loop
    iteration of its own, so /health and I/O wait for at most one call, not twelve (without the
    turn, ready calls evaluated back to back in one iteration). A ticker task counts the loop's
    iterations; each evaluation notes the count it ran at."""
    app, state = client.app, client.app_state
    tick: list[int] = [0]
    at: list[int] = []
    evaluated = cds.call.evaluate_call

    def noting(*args: Any, **kwargs: Any) -> Any:
        at.append(tick[0])
        return evaluated(*args, **kwargs)

    monkeypatch.setattr(cds.call, "evaluate_call", noting)

    async def with_state(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        scope["state"] = dict(state)  # what the lifespan gave, as TestClient passes it
        await app(scope, receive, send)

    async def together() -> None:
        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:

            async def call() -> None:
                assert (await c.post(PV, json=minimal_request())).status_code == 200

            async def ticker() -> None:
                while True:
                    tick[0] += 1
                    await anyio.sleep(0)

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(ticker)
                async with anyio.create_task_group() as calls:
                    for _ in range(12):
                        calls.start_soon(call)
                tasks.cancel_scope.cancel()

    assert client.portal is not None
    client.portal.call(together)
    assert len(at) == 12
    assert len(set(at)) == 12, at  # never two evaluations in one loop iteration


class _StoreHeldCall:
    """A typical call started while the store is held: it must wait off the event loop, so
    /health answers meanwhile; once the store is free it ends with its cards recorded."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.answers: dict[str, int] = {}
        self.caller = threading.Thread(target=self._call)

    def _call(self) -> None:
        body = json.loads(BONE_METS_REQUEST.read_text())
        path = f"/cds-services/{PATIENT_VIEW}"
        self.answers["call"] = self.client.post(path, json=body).status_code

    def _health(self) -> None:
        self.answers["health"] = self.client.get("/health").status_code

    def start_and_probe(self) -> None:
        """While the store is held: the call waits, /health answers."""
        self.caller.start()
        self.caller.join(0.5)
        assert self.caller.is_alive()  # waiting for the store
        prober = threading.Thread(target=self._health)
        prober.start()
        prober.join(5)  # (were the loop waiting for the store, this would wait for the lock)
        assert self.answers.get("health") == 200  # the loop is free
        assert "call" not in self.answers

    def finish(self) -> None:
        """Once the store is free: the call answered and its cards are recorded."""
        self.caller.join(30)
        assert self.answers["call"] == 200
        with self.client.app_state["store"].tx(read=True) as cur:
            cur.execute("SELECT COUNT(*) FROM issued_card")
            assert cur.fetchone()[0] >= 1


def test_a_busy_store_never_holds_up_the_event_loop(client: TestClient) -> None:
    """A typical call whose store is busy (here: another thread holds it, as a feedback write
    waiting for the disk does) waits in the worker thread, not on the event loop."""
    call = _StoreHeldCall(client)
    with client.app_state["store"]._lock:
        call.start_and_probe()
    call.finish()


def test_cards_are_recorded_off_the_loop_while_another_process_writes(
    client: TestClient, settings: Settings
) -> None:
    """Another process holds the SQLite file's write lock: the call reads its snoozes and is
    evaluated on the loop (WAL readers do not wait), its cards are written from the worker
    thread once the lock is free."""
    call = _StoreHeldCall(client)
    other = sqlite3.connect(settings.feedback_db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        call.start_and_probe()
    finally:
        other.execute("COMMIT")
        other.close()
    call.finish()


def test_tune_for_serving_freezes_start_up_and_shortens_the_switch_interval() -> None:
    before = (gc.get_threshold(), sys.getswitchinterval())
    try:
        tune_for_serving()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == 10_000
        assert sys.getswitchinterval() == pytest.approx(0.001)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before[0])
        sys.setswitchinterval(before[1])
