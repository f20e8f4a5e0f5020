"""The event loop never waits for an evaluation: /health and discovery answer while one runs."""

from __future__ import annotations

import gc
import sys
import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient

import cds.call
from cds.call import evaluate_call
from cds.server import tune_for_serving
from tests.test_api import PV, minimal_request


def test_health_and_discovery_answer_while_every_evaluation_slot_is_busy(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
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
