"""Where a call's evaluation runs: a typical chart on the event loop, one call's turn at a time;
a large chart (or one fetched from the EHR) in the worker thread, while /health and discovery
keep answering."""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import MutableMapping
from typing import Any

import anyio
import httpx
import pytest
from fastapi.testclient import TestClient

import cds.call
from cds.call import evaluate_call
from cds.server import tune_for_serving
from tests.test_api import PV, minimal_request


def test_health_and_discovery_answer_while_every_evaluation_slot_is_busy(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cds.call, "INLINE_MAX_RESOURCES", -1)  # every chart counts as large
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


def _threads(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
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
    assert client.post(PV, json=minimal_request()).status_code == 200
    return seen["loop"], seen["evaluation"]


def test_a_typical_chart_is_evaluated_on_the_event_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop, evaluation = _threads(client, monkeypatch)
    assert evaluation == loop


def test_a_large_chart_is_evaluated_in_the_worker_thread(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cds.call, "INLINE_MAX_RESOURCES", 0)
    loop, evaluation = _threads(client, monkeypatch)
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
