#!/usr/bin/env python3
"""Set up a virtual environment and run the service or the whole check.

    python3 dev.py serve [cds serve options]   # installs, then serves on 127.0.0.1:8080
    python3 dev.py check                       # installs, then ruff, mypy, pytest and coverage
    python3 dev.py bench [--calls N]           # installs, then the service against a bare endpoint
    python3 dev.py e2e [pytest options]        # installs, then only the real-Sandbox browser suite

Python packages install pinned from constraints.txt; the test FHIR engine (Node) from
tests/fhir_engine/package-lock.json with `npm ci`.

Only the Python standard library is used here, so this works on a machine that has nothing but
Python 3.11. The environment lives in .venv/ and is reused; it is refreshed when pyproject.toml
changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed"
# The FHIR engine the fetch-path tests run against (Node; `npm ci` from its lock file).
ENGINE = ROOT / "tests" / "fhir_engine"
ENGINE_STAMP = ENGINE / "node_modules" / ".installed"


def _run(*args: str | Path) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)  # noqa: T201
    result = subprocess.run([str(a) for a in args], cwd=ROOT, check=False)  # noqa: S603
    if result.returncode != 0:
        sys.exit(result.returncode)


def ensure_env() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may be run by an older python3
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
    digest = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + (ROOT / "constraints.txt").read_bytes()
    ).hexdigest()
    if not (STAMP.exists() and STAMP.read_text() == digest):
        if not (BIN / "python").exists():
            print(f"creating {VENV}", flush=True)  # noqa: T201
            venv.create(VENV, with_pip=True)
        # Every version pinned (constraints.txt), dev tools included: reproducible installs.
        _run(
            BIN / "python",
            "-m",
            "pip",
            "install",
            "--quiet",
            "-c",
            "constraints.txt",
            "-e",
            ".[dev]",
        )
        STAMP.write_text(digest)


def ensure_engine() -> None:
    """The test FHIR engine's Node packages, from its lock file (only what the tests need)."""
    lock = hashlib.sha256((ENGINE / "package-lock.json").read_bytes()).hexdigest()
    if ENGINE_STAMP.exists() and ENGINE_STAMP.read_text() == lock:
        return
    npm = shutil.which("npm")
    if npm is None:
        print("npm not found: the FHIR engine tests will fail until Node.js 20+ is installed")  # noqa: T201
        return
    _run(npm, "ci", "--no-audit", "--no-fund", "--prefix", ENGINE)
    ENGINE_STAMP.write_text(lock)


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in {"serve", "check", "bench", "e2e"}:
        sys.exit(__doc__)
    ensure_env()
    if argv[0] == "serve":
        os.execv(BIN / "cds", [str(BIN / "cds"), "serve", *argv[1:]])  # noqa: S606
    if argv[0] == "bench":
        # Side by side in one run: the ratio to a bare FastAPI endpoint, not absolute numbers.
        bench = ROOT / "tests" / "benchmarks" / "versus_bare.py"
        os.execv(BIN / "python", [str(BIN / "python"), str(bench), *argv[1:]])  # noqa: S606
    ensure_engine()
    if argv[0] == "e2e":
        # The CDS Hooks Sandbox in Debian's Chromium (apt-get install chromium), screenshots
        # in var/e2e/ (CDS_E2E_ARTIFACTS); `check` runs the same tests with everything else.
        _run(BIN / "python", "-m", "pytest", "-m", "e2e", "tests/e2e", *argv[1:])
        return
    _run(BIN / "ruff", "check", ".")
    _run(BIN / "ruff", "format", "--check", ".")
    _run(BIN / "mypy", "cds", "tests")
    _run(BIN / "python", "-m", "coverage", "run", "-m", "pytest", *argv[1:])
    # The branch coverage gate is `fail_under` in pyproject.toml: `coverage report` fails alone.
    _run(BIN / "python", "-m", "coverage", "report", "--skip-covered", "--format=total")


if __name__ == "__main__":
    main(sys.argv[1:])
