"""Prometheus metrics: counted where they happen, bounded labels with no identifiers, served on
their own address only, and scraped for real by Debian's Prometheus from `cds serve --workers 2`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY, generate_latest

from cds.app import create_app
from cds.services import Knowledge
from cds.settings import Settings
from fixtures.factories import for_patient
from tests.conftest import BONE_METS_REQUEST, PATIENT_VIEW
from tests.servers import free_port, running_service


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture(name="metered")
def _metered(tmp_path: Path, knowledge: Knowledge) -> Iterator[TestClient]:
    settings = Settings(feedback_db=tmp_path / "f.sqlite3", metrics_address="127.0.0.1:9")
    app = create_app(settings, knowledge=knowledge, http_client=httpx.AsyncClient())
    with TestClient(app) as client:
        yield client


def _request(patient: str = "p-metrics") -> dict[str, Any]:
    data: dict[str, Any] = for_patient(json.loads(BONE_METS_REQUEST.read_text()), patient)
    data["hookInstance"] = str(uuid.uuid4())
    return data


def test_calls_stages_cards_and_feedback_are_counted(metered: TestClient) -> None:
    ok = {"service": PATIENT_VIEW, "hook": "patient-view", "status": "200"}
    bad = {"service": PATIENT_VIEW, "hook": "patient-view", "status": "400"}

    def snapshot() -> tuple[float, ...]:
        return (
            value("cds_calls_total", **ok),
            value("cds_calls_total", **bad),
            value("cds_calls_total", service="unknown", hook="unknown", status="404"),
            value("cds_stage_duration_seconds_count", stage="facts"),
            value("cds_cards_total", rule="R1", indicator="warning"),
            value("cds_feedback_items_total", outcome="overridden"),
            value("cds_feedback_items_total", outcome="refused"),
            value("cds_call_duration_seconds_count", service=PATIENT_VIEW),
        )

    before = snapshot()
    cards = []
    for _ in range(3):
        r = metered.post(f"/cds-services/{PATIENT_VIEW}", json=_request())
        assert r.status_code == 200
        cards.append(
            next(c for c in r.json()["cards"] if c["extension"]["org.cds-mbc-bone.rule"] == "R1")
        )
    broken = {"Content-Type": "application/json"}
    r = metered.post(f"/cds-services/{PATIENT_VIEW}", content=b"{", headers=broken)
    assert r.status_code == 400
    assert metered.post("/cds-services/no-such-service", json=_request()).status_code == 404
    when = "2026-11-22T10:00:00Z"
    override = {"card": cards[0]["uuid"], "outcome": "overridden", "outcomeTimestamp": when,
                "overrideReason": {"userComment": "discussed"}}  # fmt: skip
    r = metered.post(f"/cds-services/{PATIENT_VIEW}/feedback", json={"feedback": [override]})
    assert r.status_code == 200
    stranger = {**override, "card": str(uuid.uuid4())}
    r = metered.post(f"/cds-services/{PATIENT_VIEW}/feedback", json={"feedback": [stranger]})
    assert r.status_code == 422
    after = snapshot()
    assert [a - b for a, b in zip(after, before, strict=True)] == [3, 1, 1, 3, 3, 1, 1, 4]
    # No identifier of a patient, card or request reaches any label.
    exposition = generate_latest(REGISTRY).decode()
    for secret in ("p-metrics", cards[0]["uuid"], stranger["card"], "no-such-service"):
        assert secret not in exposition


def test_fhir_requests_are_counted_by_outcome(metered: TestClient) -> None:
    request = _request()
    fetch = {k: v for k, v in request.items() if k != "prefetch"}
    fetch["fhirServer"] = "http://127.0.0.1:9999/fhir"
    before = {
        o: value("cds_fhir_request_duration_seconds_count", outcome=o) for o in ("ok", "http_5xx")
    }
    with respx.mock() as mock:
        mock.route(host="127.0.0.1", port=9999).respond(status_code=500)
        assert metered.post(f"/cds-services/{PATIENT_VIEW}", json=fetch).status_code == 412
    failed = value("cds_fhir_requests_total", outcome="http_5xx") - before["http_5xx"]
    assert failed >= 1
    with respx.mock() as mock:
        mock.route(host="127.0.0.1", port=9999).respond(
            json={"resourceType": "Bundle", "type": "searchset", "entry": []}
        )
        assert metered.post(f"/cds-services/{PATIENT_VIEW}", json=fetch).status_code == 200
        fetched = len(mock.calls)
    assert fetched >= 1
    assert value("cds_fhir_request_duration_seconds_count", outcome="ok") - before["ok"] == fetched
    assert (
        value("cds_fhir_request_duration_seconds_count", outcome="http_5xx") - before["http_5xx"]
        == failed
    )


def test_jwt_rejections_are_counted_by_reason(tmp_path: Path, knowledge: Knowledge) -> None:
    settings = Settings(feedback_db=tmp_path / "f.sqlite3", auth_required=True)
    app = create_app(settings, knowledge=knowledge, http_client=httpx.AsyncClient())
    before = (
        value("cds_jwt_rejections_total", reason="missing"),
        value("cds_jwt_rejections_total", reason="malformed"),
    )
    with TestClient(app) as client:
        assert client.post(f"/cds-services/{PATIENT_VIEW}", json=_request()).status_code == 401
        headers = {"Authorization": "Bearer not.a.token"}
        r = client.post(f"/cds-services/{PATIENT_VIEW}", json=_request(), headers=headers)
        assert r.status_code == 401
    after = (
        value("cds_jwt_rejections_total", reason="missing"),
        value("cds_jwt_rejections_total", reason="malformed"),
    )
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)


@pytest.mark.parametrize("address", ["9464", "localhost:", ":9464", "127.0.0.1:70000"])
def test_metrics_address_must_be_host_and_port(address: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        Settings(metrics_address=address)


def test_metrics_never_share_the_hook_port(tmp_path: Path) -> None:
    port = free_port()
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "cds", "serve", "--port", str(port)],
        env={
            **os.environ,
            "CDS_FEEDBACK_DB": str(tmp_path / "f.sqlite3"),
            "CDS_METRICS_ADDRESS": f"127.0.0.1:{port}",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "metrics are served on their own port" in done.stderr


def test_hook_port_serves_no_metrics(tmp_path: Path) -> None:
    metrics_port = free_port()
    with running_service(tmp_path, CDS_METRICS_ADDRESS=f"127.0.0.1:{metrics_port}") as (base, _):
        assert httpx.get(f"{base}/metrics", timeout=10).status_code == 404
        body = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        assert "# TYPE cds_calls_total counter" in body


def _prometheus() -> str | None:
    found = shutil.which("prometheus")
    if found is None and os.environ.get("CI"):
        pytest.fail("no prometheus binary: CI installs Debian's prometheus package")
    return found


def test_prometheus_scrapes_two_workers(tmp_path: Path) -> None:
    binary = _prometheus()
    if binary is None:
        pytest.skip("Debian's prometheus is not installed (apt-get install prometheus)")
    metrics_port, prom_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: cds\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
    )
    prom = subprocess.Popen(  # noqa: S603
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{prom_port}/api/v1"
    try:
        with running_service(
            tmp_path, "--workers", "2", CDS_METRICS_ADDRESS=f"127.0.0.1:{metrics_port}"
        ) as (base, _):
            calls = 24
            # Fresh connections: the kernel spreads them over both workers (SO_REUSEPORT).
            for i in range(calls):
                r = httpx.post(f"{base}/cds-services/{PATIENT_VIEW}", json=_request(f"p{i}"))
                assert r.status_code == 200
            query = f'sum(cds_calls_total{{service="{PATIENT_VIEW}",status="200"}})'
            got, deadline = None, time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    r = httpx.get(f"{api}/query", params={"query": query}, timeout=5)
                    result = r.json()["data"]["result"]
                    got = float(result[0]["value"][1]) if result else None
                except (httpx.HTTPError, KeyError, ValueError):
                    got = None
                if got == calls:
                    break
                time.sleep(0.5)
            assert got == calls
            up = httpx.get(f"{api}/query", params={"query": 'up{job="cds"}'}, timeout=5).json()
            assert up["data"]["result"][0]["value"][1] == "1"
            cards = httpx.get(
                f"{api}/query", params={"query": "sum(cds_cards_total)"}, timeout=5
            ).json()["data"]["result"]
            assert float(cards[0]["value"][1]) >= calls  # every call gave at least one card
            facts = httpx.get(
                f"{api}/query",
                params={"query": 'sum(cds_stage_duration_seconds_count{stage="facts"})'},
                timeout=5,
            ).json()["data"]["result"]
            assert float(facts[0]["value"][1]) == calls  # each worker's stage times, summed
    finally:
        prom.terminate()
        prom.wait(timeout=20)
