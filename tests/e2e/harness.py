"""The real CDS Hooks Sandbox against the real service and a real FHIR engine, all on loopback.

The Sandbox's production build (../shared/cds-hooks/sandbox-build, Apache-2.0) is served as
static files; `cds serve` and the test FHIR engine run as processes; Debian's Chromium runs the
page headless, driven by Playwright's Python package with that executable (no browser download).
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from tests.servers import ENGINE, ROOT, free_port, running_service

SANDBOX = ROOT.parent / "shared" / "cds-hooks" / "sandbox-build"
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    """Debian's Chromium (or CDS_E2E_CHROMIUM), never a downloaded browser."""
    configured = os.environ.get("CDS_E2E_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def missing() -> str | None:
    """Why the end-to-end suite cannot run here, or None."""
    if not (SANDBOX / "index.html").exists():
        return f"the CDS Hooks Sandbox build is not at {SANDBOX} (../shared is missing)"
    if chromium_path() is None:
        return "no Chromium executable (apt-get install chromium, or set CDS_E2E_CHROMIUM)"
    if shutil.which("node") is None:
        return "Node.js is not on PATH (the test FHIR engine needs it)"
    if not (ENGINE / "node_modules" / "@medplum" / "fhir-router").is_dir():
        return f"the test FHIR engine is not installed (npm ci in {ENGINE})"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e .[dev])"
    return None


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def static_sandbox() -> Iterator[str]:
    """The Sandbox build served read-only on loopback: its base URL."""
    handler = functools.partial(_Quiet, directory=str(SANDBOX))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def service(db: Path, **env: str) -> Iterator[str]:
    with running_service(db.parent, CDS_FEEDBACK_DB=str(db), CDS_LOG_LEVEL="WARNING", **env) as (
        base,
        _,
    ):
        yield base


@dataclass(frozen=True)
class Stack:
    sandbox: str
    fhir: str
    service: str
    db: Path  # the service's SQLite store (feedback, snoozes)

    def url(self, patient: str, hook: str = "patient-view", screen: str = "patient-view") -> str:
        query = {
            "fhirServiceUrl": self.fhir,
            "patientId": patient,
            "serviceDiscoveryURL": f"{self.service}/cds-services",
            "hook": hook,
            "screen": screen,
        }
        return f"{self.sandbox}/?{urlencode(query)}"

    def load(self, resources: list[dict[str, Any]]) -> None:
        """PUT resources into the FHIR engine (ids kept) in one batch Bundle."""
        batch = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {
                    "resource": r,
                    "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
                }
                for r in resources
            ],
        }
        answer = httpx.post(
            self.fhir, json=batch, headers={"Content-Type": "application/fhir+json"}, timeout=30
        )
        answer.raise_for_status()


def redated(resources: list[dict[str, Any]], days: int) -> list[dict[str, Any]]:
    """The resources with every date moved by `days` (birth dates kept): a scenario written for
    its own as_of, shown by a service that evaluates as of today."""
    import copy
    import re
    from datetime import date, timedelta

    pattern = re.compile(r"^(\d{4}-\d{2}-\d{2})")

    def move(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: move(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [move(v, key) for v in value]
        if isinstance(value, str) and key != "birthDate" and (m := pattern.match(value)):
            shifted = date.fromisoformat(m.group(1)) + timedelta(days=days)
            return shifted.isoformat() + value[10:]
        return value

    return [move(copy.deepcopy(r)) for r in resources]


# Cards as the Sandbox renders them (its CSS-module class names keep these prefixes).
CARD = "[class*='card-list__decision-card']"
SOURCE_LINK = "[class*='card-list__source-link']"
