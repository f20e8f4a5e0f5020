"""Shared fixtures: loaded knowledge, a fixed evaluation date, and an app client."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings

from cds.app import create_app
from cds.parameters import Parameters
from cds.services import Knowledge, load_knowledge
from cds.settings import REPO_CARDS, Settings
from cds.store import IssuedCard, Store
from cds.terminology import Terminology
from tests.servers import ENGINE, fhir_engine
from tests.servers import ROOT as ROOT  # re-exported: the tests import it from here

# CI replays the same fuzz examples every run (derandomized); locally each run explores anew.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
hypothesis_settings.register_profile("explore", max_examples=2000)
hypothesis_settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default")
)

AS_OF = date(2026, 11, 22)
SHARED = ROOT.parent / "shared"


SHARED_NEEDED = (
    SHARED / "clinical" / "terminology.md",
    SHARED / "cds-hooks" / "examples",
    SHARED / "fhir-examples" / "mcode-ig",
    SHARED / "cds-hooks" / "sandbox-build",
)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Tests that read ../shared (terminology, official examples, captured Sandbox requests, the
    Sandbox build) are skipped where it is missing, each naming what it needs - a clone with
    nothing beside it still passes. Under CI a missing piece is one clear error instead: CI
    never runs a quietly smaller suite."""
    missing = [str(p) for p in SHARED_NEEDED if not p.exists()]
    if missing and os.environ.get("CI"):
        raise pytest.UsageError(
            "CI needs the shared reference material beside the checkout "
            f"(../shared); missing: {', '.join(missing)}"
        )


def needs_shared(path: Path) -> pytest.MarkDecorator:
    """Skip, naming the missing path, where ../shared is not beside the checkout."""
    return pytest.mark.skipif(
        not path.exists(),
        reason=f"needs ../shared/{path.relative_to(SHARED)} (not beside this checkout)",
    )


@pytest.fixture(scope="session", name="knowledge")
def _knowledge() -> Knowledge:
    return load_knowledge(REPO_CARDS)


@pytest.fixture(name="t")
def _t(knowledge: Knowledge) -> Terminology:
    return knowledge.terminology


@pytest.fixture(name="params")
def _params(knowledge: Knowledge) -> Parameters:
    return knowledge.parameters


PATIENT_VIEW = "mbc-bone-patient-view"
# A chart with bone metastases and no bone agent: its patient-view answer has an R1 card with
# suggestions, the card tests give feedback on (feedback is taken only for issued cards).
BONE_METS_REQUEST = (
    ROOT / "fixtures" / PATIENT_VIEW / "her2-negative-bone-mets-no-bma" / "request.json"
)


def issue_card(client: TestClient | httpx.Client, base: str = "") -> dict[str, Any]:
    """A card the service really issued to this client (a patient-view call)."""
    data: dict[str, Any] = json.loads(BONE_METS_REQUEST.read_text())
    data["hookInstance"] = str(uuid.uuid4())
    r = client.post(f"{base}/cds-services/{PATIENT_VIEW}", json=data)
    assert r.status_code == 200, r.text
    card: dict[str, Any] = next(c for c in r.json()["cards"] if c.get("suggestions"))
    return card


def record_issued(
    store: Store,
    card: str,
    service_id: str = PATIENT_VIEW,
    *,
    suggestions: tuple[str, ...] = ("s1",),
    caller: str = "|",
) -> None:
    """Record a card as issued, for store-level tests of feedback."""
    store.record_issued(
        [
            IssuedCard(
                card=card,
                rule="R1",
                patient_key="k",
                evidence="e",
                service_id=service_id,
                caller=caller,
                suggestions=suggestions,
                variant="start",
                concern="R1:start",
            )
        ]
    )


@pytest.fixture(name="settings")
def _settings(tmp_path: Path) -> Settings:
    return Settings(feedback_db=tmp_path / "feedback.sqlite3")


@pytest.fixture(name="client")
def _client(settings: Settings, knowledge: Knowledge) -> Iterator[TestClient]:
    """The app in-process; outbound HTTP goes nowhere unless a test mocks it (respx)."""
    app = create_app(
        settings, knowledge=knowledge, http_client=httpx.AsyncClient(), today=lambda: AS_OF
    )
    with TestClient(app) as client:
        yield client


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", name="engine")
def _engine() -> Iterator[str]:
    """A real FHIR R4 engine on loopback (tests/fhir_engine): its base URL. If it cannot
    start, the test fails with the reason; it is never skipped."""
    if shutil.which("node") is None:
        pytest.fail("Node.js is not on PATH: the FHIR engine tests need it (Node 20+)")
    if not (ENGINE / "node_modules" / "@medplum" / "fhir-router").is_dir():
        pytest.fail(f"the FHIR engine is not installed: run `npm ci` in {ENGINE}")
    with fhir_engine() as base:
        yield base
