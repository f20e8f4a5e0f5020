"""Real processes on loopback for the tests: `cds serve`, with its environment, and free ports."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from cds.rules import load_rules
from cds.settings import TrustedIssuer
from fixtures.factories import for_patient

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    url: str, proc: subprocess.Popen[Any], what: str, seconds: float = 30
) -> httpx.Response:
    """Poll url until it answers 200; fail at once if the process has exited."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited ({proc.returncode}) before answering {url}")
        try:
            r = httpx.get(url, timeout=1)
            if r.status_code == 200:
                return r
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} did not answer {url} within {seconds:g} s")


@contextmanager
def running_service(
    tmp_path: Path, *args: str, **env: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`cds serve [args]` as its own process, feedback in tmp_path: (base URL, process)."""
    port = free_port()
    full = {
        **os.environ,
        "CDS_FEEDBACK_DB": str(tmp_path / "feedback.sqlite3"),
        "CDS_LOG_LEVEL": "ERROR",
        **env,
    }
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "cds", "serve", "--port", str(port), *args],
        env=full,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/health", proc, "cds serve")
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=20)


def issue_card(base: str, patient: str | None = None) -> dict[str, Any]:
    """A card the running service issued (feedback is taken only for issued cards); for
    another `patient` when an earlier card's feedback has snoozed the first one's."""
    request = ROOT / "fixtures" / "mbc-bone-patient-view" / "her2-negative-bone-mets-no-bma"
    data: dict[str, Any] = json.loads((request / "request.json").read_text())
    data["hookInstance"] = str(uuid.uuid4())
    if patient is not None:
        data = for_patient(data, patient)
    r = httpx.post(f"{base}/cds-services/mbc-bone-patient-view", json=data, timeout=30)
    r.raise_for_status()
    card: dict[str, Any] = next(c for c in r.json()["cards"] if c.get("suggestions"))
    return card


ENGINE = ROOT / "tests" / "fhir_engine"


@contextmanager
def fhir_engine() -> Iterator[str]:
    """The test FHIR R4 engine (tests/fhir_engine, Node) on loopback: its base URL. If it
    exits or does not answer, the error carries the end of its output."""
    node = shutil.which("node") or "node"
    port = free_port()
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(  # noqa: S603
            [node, "--experimental-websocket", "server.js", str(port)],
            cwd=ENGINE,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}/fhir"
        try:
            try:
                wait_for(f"{base}/metadata", proc, "the FHIR engine")
            except AssertionError as exc:
                output.seek(0)
                tail = output.read().decode(errors="replace")[-2000:]
                raise AssertionError(f"{exc}: {tail}") from None
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def post_feedback_until_killed(base: str, proc: subprocess.Popen[bytes]) -> set[str]:
    """Four clients post feedback on issued cards (a card takes 20 records: each client a
    card of its own per 10 posts), each post at its own outcomeTimestamp; after 50 are
    acknowledged the server is killed (SIGKILL). Returns the timestamps (as stored) whose
    feedback got a 200 - each must be in the database afterwards."""
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    cards = [issue_card(base, f"feedback-{n}")["uuid"] for n in range(4 * 40)]

    def writer(worker: int) -> None:
        with httpx.Client(timeout=2) as c:
            for i in range(400):
                if stop.is_set():
                    return
                card = cards[worker * 40 + i // 10]
                at = f"2026-11-22T{worker:02}:{i // 60:02}:{i % 60:02}"
                item = {
                    "card": card,
                    "outcome": "overridden",
                    "overrideReason": {"userComment": "x"},
                    "outcomeTimestamp": f"{at}Z",
                }
                try:
                    r = c.post(
                        f"{base}/cds-services/mbc-bone-patient-view/feedback",
                        json={"feedback": [item]},
                    )
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    with lock:
                        acknowledged.append(f"{at}+00:00")

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for th in threads:
        th.start()
    while len(acknowledged) < 50 and any(th.is_alive() for th in threads):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    stop.set()
    for th in threads:
        th.join(timeout=10)
    assert len(acknowledged) >= 50
    return set(acknowledged)


def production(tmp_path: Path, **over: Any) -> dict[str, Any]:
    """The smallest production configuration that starts (a static, empty key set)."""
    jwks = tmp_path / "jwks.json"
    jwks.write_text('{"keys": []}')
    return {
        "mode": "production",
        "auth_required": True,
        "trusted_issuers": (TrustedIssuer(iss="https://ehr.example.org", jwks_file=jwks),),
        "allow_as_of_extension": False,
        "cors_origins": ("https://ehr.example.org",),
        "public_base_url": "https://cds.example.org",
        "patient_key_secret": "a-test-secret-that-keys-patients",
        # No rule is signed in cards/reviews.yaml: production runs them only when listed.
        "allow_unreviewed": tuple(load_rules()),
        **over,
    }


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    which = shutil.which("initdb")
    if which is None:
        raise RuntimeError(
            "PostgreSQL server binaries (initdb, pg_ctl) were not found: install postgresql"
        )
    return Path(which).parent


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on loopback (initdb into a temporary folder, pg_ctl start
    on a free port, stopped and removed after): its URL. As root it runs as the `postgres`
    user, because initdb refuses root."""
    bindir = _pg_bin()
    root = Path(tempfile.mkdtemp(prefix="cds-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()

    def run(*args: str) -> None:
        done = subprocess.run(  # noqa: S603
            [*as_user, *args], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stdout}{done.stderr}")

    run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "cds", "--no-sync")
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=on"
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        options,
        "-l",
        str(root / "log"),
        "-w",
        "start",
    )
    try:
        run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "cds", "cds")
        yield f"postgresql://cds@127.0.0.1:{port}/cds"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
