"""Shared fixtures: loaded knowledge, a fixed evaluation date, and an app client."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings

from cds.api import today
from cds.app import create_app
from cds.parameters import Parameters
from cds.services import Knowledge, load_knowledge
from cds.settings import REPO_CARDS, Settings
from cds.terminology import Terminology

# CI replays the same fuzz examples every run (derandomized); locally each run explores anew.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
hypothesis_settings.register_profile("explore", max_examples=2000)
hypothesis_settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default")
)

AS_OF = date(2026, 11, 22)
ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session", name="knowledge")
def _knowledge() -> Knowledge:
    return load_knowledge(REPO_CARDS)


@pytest.fixture(name="t")
def _t(knowledge: Knowledge) -> Terminology:
    return knowledge.terminology


@pytest.fixture(name="params")
def _params(knowledge: Knowledge) -> Parameters:
    return knowledge.parameters


@pytest.fixture(name="settings")
def _settings(tmp_path: Path) -> Settings:
    return Settings(feedback_db=tmp_path / "feedback.sqlite3")


@pytest.fixture(name="client")
def _client(settings: Settings, knowledge: Knowledge) -> Iterator[TestClient]:
    """The app in-process; outbound HTTP goes nowhere unless a test mocks it (respx)."""
    app = create_app(settings, knowledge=knowledge, http_client=httpx.AsyncClient())
    app.dependency_overrides[today] = lambda: AS_OF
    with TestClient(app) as client:
        yield client


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
