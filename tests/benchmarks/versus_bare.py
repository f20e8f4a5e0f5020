"""Benchmark (not a test): the service against a bare FastAPI endpoint, side by side on loopback.

    python3 dev.py bench [--calls 200] [--seconds 10]

Both run as uvicorn processes (one worker each, pinned to the first core; the client and the
load generator on the second), the same request body going to each in turn: the bare endpoint
only JSON-parses it and returns three fixed cards. Every call gets new resource ids and a new
hookInstance, so no cache can help, except in the row that sends the same chart again. Prints
one table (markdown, ready for the README): p50 and p90 with one client for a typical chart
(~80 resources), a 200- and a 2,000-resource chart (15% of them read by the rules), requests
per second with 50 clients (wrk where installed), and /health on each while it is saturated.
Two more servers are driven the same way: the service with its evaluation answered from memory
(`variant.py`; the throughput the request path alone leaves, whatever the evaluation costs), and
the service with every evaluation in the worker thread, as large charts are (what
evaluating typical charts on the event loop gains, and what it costs /health). A fifth requires
a client JWT, as an EHR calls it: a latency row and
a throughput row with an ES384 token (a new jti each) on every call.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.bench import record  # noqa: E402
from tests.benchmarks.load import generator, requests_per_second  # noqa: E402
from tests.servers import free_port, wait_for  # noqa: E402

BARE = """
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
app = FastAPI()
CARD = {"summary": "s", "indicator": "info", "source": {"label": "l"}}
@app.post("/cds-services/{service}")
async def call(service: str, request: Request) -> JSONResponse:
    await request.json()
    return JSONResponse({"cards": [CARD, CARD, CARD]})
@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
"""


def _chart(n_extra: int) -> dict[str, Any]:
    path = ROOT / "fixtures/mbc-bone-patient-view/her2-positive-first-line/request.json"
    body: dict[str, Any] = json.loads(path.read_text())
    labs = body["prefetch"]["labs"]
    extra = labs["entry"][0]["resource"]
    for i in range(n_extra):
        r = json.loads(json.dumps(extra))
        r["id"] = f"extra-{i}"
        r["effectiveDateTime"] = f"2026-0{1 + i % 9}-1{i % 9}"
        labs["entry"].append({"resource": r})
    return body


def _sized(size: int) -> dict[str, Any]:
    body = _chart(0)
    p = record(0.15, size)
    # The chart's own patient: the service leaves out a resource of another patient.
    own = {"reference": f"Patient/{body['context']['patientId']}"}
    entries = [{"resource": r | {"subject": own}} for r in p.resources]
    body["prefetch"]["conditions"]["entry"] = entries  # all in one key: the service sorts
    return body


def _big() -> dict[str, Any]:
    return _sized(2000)


def _fresh(body: dict[str, Any]) -> bytes:
    """New resource ids (the patient's kept) and hookInstance: no cache can answer."""
    data = json.loads(json.dumps(body))
    tag = uuid.uuid4().hex[:8]
    for value in data["prefetch"].values():
        for entry in (value or {}).get("entry", ()):
            resource = entry["resource"]
            if resource["resourceType"] != "Patient" and "id" in resource:
                resource["id"] = f"{resource['id'][:40]}-{tag}"
    data["hookInstance"] = str(uuid.uuid4())
    return json.dumps(data).encode()


class Signer:
    """ES384 client JWTs of one trusted issuer, as an EHR sends them: a new jti on every call."""

    ISS = "https://ehr.example.org"

    def __init__(self, folder: Path) -> None:
        self.key = ec.generate_private_key(ec.SECP384R1())
        public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = folder / "jwks.json"
        self.jwks.write_text(json.dumps({"keys": [public | {"kid": "k1", "alg": "ES384"}]}))

    def env(self, base: str) -> dict[str, str]:
        return {
            "CDS_AUTH_REQUIRED": "true",
            "CDS_TRUSTED_ISSUERS": json.dumps([{"iss": self.ISS, "jwks_file": str(self.jwks)}]),
            "CDS_PUBLIC_BASE_URL": base,
        }

    def token(self, url: str) -> str:
        now = time.time()
        claims = {"iss": self.ISS, "aud": url, "iat": now, "exp": now + 300}
        return jwt.encode(
            claims | {"jti": str(uuid.uuid4())},
            self.key,
            algorithm="ES384",
            headers={"kid": "k1", "typ": "JWT"},
        )

    def headers(self, url: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token(url)}"}


def _alternate(
    client: httpx.Client,
    urls: tuple[str, str],
    body: dict[str, Any],
    calls: int,
    *,
    fresh: bool = True,
    signer: Signer | None = None,
) -> tuple[list[float], list[float]]:
    """Call after call, bare then service with the same body: whatever the machine does at a
    given moment (another process, frequency changes) falls on both alike. With a signer, the
    service's calls carry a client JWT (signed before the clock starts)."""
    out: tuple[list[float], list[float]] = ([], [])
    same = _fresh(body)
    for _ in range(calls):
        payload = _fresh(body) if fresh else same
        for i, (url, times) in enumerate(zip(urls, out, strict=True)):
            headers = {"content-type": "application/json"}
            if signer is not None and i == 1:
                headers |= signer.headers(url)
            start = time.perf_counter()
            r = client.post(url, content=payload, headers=headers)
            times.append((time.perf_counter() - start) * 1000)
            assert r.status_code == 200, r.text[:300]
    return out


def _pin(cpu: int) -> Callable[[], None]:
    """Pin a process to one core (where the OS allows it and there are two to share)."""

    def pin() -> None:
        if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
            os.sched_setaffinity(0, {cpu})

    return pin


def _start(args: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(  # noqa: S603
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_pin(0)
    )
    wait_for(f"http://127.0.0.1:{port}/health", proc, " ".join(args[1:3]))
    return proc


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


class Table:
    def __init__(self) -> None:
        self.rows: list[str] = [
            "| measure | bare FastAPI | service | service p90 | ratio |",
            "|---|---|---|---|---|",
        ]

    def latency(self, name: str, bare: list[float], service: list[float]) -> float:
        b, s = statistics.median(bare), statistics.median(service)
        self.rows.append(
            f"| {name}, p50 | {b:.2f} ms | {s:.2f} ms | {_p(service, 90):.2f} ms | {s / b:.1f}x |"
        )
        print(self.rows[-1], flush=True)
        return s

    def line(self, text: str) -> None:
        self.rows.append(text)
        print(text, flush=True)


def _saturated_health(
    service_url: str,
    health_url: str,
    bodies: list[bytes],
    folder: Path,
    seconds: float,
    tokens: list[str],
    measured: Callable[[bool], None] | None = None,
) -> tuple[float, list[float]]:
    """Throughput at 50 clients while /health is asked every 20 ms from another connection."""
    probes: list[float] = []
    done = threading.Event()

    def probe() -> None:
        with httpx.Client(timeout=30) as c:
            time.sleep(1.5)  # past the load generator's warm-up
            while not done.is_set():
                start = time.perf_counter()
                c.get(health_url)
                probes.append((time.perf_counter() - start) * 1000)
                time.sleep(0.02)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        rps = requests_per_second(
            service_url,
            bodies,
            folder,
            seconds=seconds,
            clients=50,
            tokens=tokens,
            measured=measured,
        )
    finally:
        done.set()
        prober.join()
    return rps, probes


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (/proc/PID/stat): steadier than requests per
    second on a shared machine, where a busy neighbour takes wall-clock time, not CPU time."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


DOCS = Path(__file__).resolve().parents[2] / "docs" / "performance.md"
DOCS_START, DOCS_END = "<!-- bench table: start -->", "<!-- bench table: end -->"


def write_docs(table: list[str], note: str) -> None:
    """Replace the table between the markers in docs/performance.md with this run's."""
    text = DOCS.read_text(encoding="utf-8")
    head, rest = text.split(DOCS_START, 1)
    _, tail = rest.split(DOCS_END, 1)
    body = "\n".join(table) + "\n\n" + note
    DOCS.write_text(f"{head}{DOCS_START}\n{body}\n{DOCS_END}{tail}", encoding="utf-8")
    print(f"\nwrote the table into {DOCS}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=200, help="calls per latency row (typical)")
    ap.add_argument("--seconds", type=float, default=10, help="throughput run, each endpoint")
    ap.add_argument("--docs", action="store_true", help="write the table into docs/performance.md")
    args = ap.parse_args()
    _pin(1)()  # this process and the load generator it starts: the second core
    tmp = Path(tempfile.mkdtemp(prefix="cds-bench-"))
    (tmp / "bare.py").write_text(BARE)
    env = {**os.environ, "PYTHONPATH": str(tmp)}
    procs: list[subprocess.Popen[bytes]] = []  # each stopped at the end, however it ends
    try:
        _run(args, tmp, env, procs)
    finally:
        for proc in procs:
            proc.terminate()


def _run(
    args: argparse.Namespace,
    tmp: Path,
    env: dict[str, str],
    procs: list[subprocess.Popen[bytes]],
) -> None:
    variant = str(Path(__file__).with_name("variant.py"))  # the service, one piece changed
    commands = {
        "bare": ["-m", "uvicorn", "bare:app", "--log-level", "error"],
        "service": ["-m", "cds", "serve"],
        "request-path": [variant, "request-path", "serve"],
        "worker-thread": ["-m", "cds", "serve"],  # with CDS_EVALUATE_ON_LOOP_MAX_RESOURCES=0
        "signed": ["-m", "cds", "serve"],  # with a client JWT required
    }
    signer = Signer(tmp)
    urls: dict[str, tuple[str, str]] = {}  # each server's call and /health
    pids: dict[str, int] = {}
    for name, command in commands.items():
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server_env = {**env, "CDS_FEEDBACK_DB": str(tmp / f"{name}.sqlite3")}
        if name == "signed":  # the service as an EHR calls it: a client JWT required
            server_env |= signer.env(base)
        if name == "worker-thread":  # every evaluation off the event loop, as large charts are
            server_env["CDS_EVALUATE_ON_LOOP_MAX_RESOURCES"] = "0"
        procs.append(_start([sys.executable, *command, "--port", str(port)], server_env, port))
        pids[name] = procs[-1].pid
        service = "x" if name == "bare" else "mbc-bone-patient-view"
        urls[name] = f"{base}/cds-services/{service}", f"{base}/health"
    pair = (urls["bare"][0], urls["service"][0])
    table = Table()
    with httpx.Client(timeout=60) as c:
        typical = _chart(60)
        for fresh, name in (
            (True, "~80-resource chart, new content"),
            (False, "same chart again"),
        ):
            _alternate(c, pair, typical, 5, fresh=fresh)  # warm-up
            table.latency(name, *_alternate(c, pair, typical, args.calls, fresh=fresh))
        signed = (urls["bare"][0], urls["signed"][0])
        _alternate(c, signed, typical, 5, signer=signer)
        table.latency(
            "~80-resource chart, new content, a signed JWT (ES384) on each call",
            *_alternate(c, signed, typical, args.calls, signer=signer),
        )
        sized = {}
        for size in (200, 2000):
            body = _sized(size)
            _alternate(c, pair, body, 3)
            sized[size] = table.latency(
                f"{size:,}-resource chart (15% read), new content",
                *_alternate(c, pair, body, max(20, args.calls // (size // 100))),
            )
    # Throughput in two rounds each, alternating, so a slow moment does not fall on one. All
    # are asked for /health the same way while saturated: each carries its load.
    bodies = [_fresh(typical) for _ in range(500)]
    served: dict[str, float] = dict.fromkeys(urls, 0.0)
    cpu: dict[str, float] = dict.fromkeys(urls, 0.0)  # CPU seconds used in the measured runs
    probes: dict[str, list[float]] = {name: [] for name in urls}
    for i in range(2):
        for name, (url, health) in urls.items():
            # A token per request for the signed server: ample for 1,000 requests a second.
            tokens = (
                [signer.token(url) for _ in range(round(1000 * (1 + args.seconds / 2)))]
                if name == "signed"
                else []
            )
            mark: list[float] = []

            def measured(start: bool, pid: int = pids[name], mark: list[float] = mark) -> None:
                mark.append(cpu_seconds(pid))

            rps, probed = _saturated_health(
                url, health, bodies, tmp / f"{name}{i}", args.seconds / 2, tokens, measured
            )
            served[name] += rps / 2
            cpu[name] += mark[1] - mark[0]
            probes[name] += probed
    for name, label in (
        ("service", "~80-resource chart, 50 clients"),
        ("request-path", "the same, evaluation answered from memory (request path alone)"),
        ("worker-thread", "the same, every evaluation in the worker thread (large charts' way)"),
        ("signed", "the same, a signed JWT (ES384) on each call"),
    ):
        table.line(
            f"| {label}, requests/s | {served['bare']:.0f} | {served[name]:.0f} | "
            f"| {served[name] / served['bare']:.2f} |"
        )
    # CPU per request: what the process spent on its calls, whatever else ran on the machine.
    per_request = {n: 1000 * cpu[n] / (served[n] * args.seconds) for n in urls if served[n]}
    for name, label in (
        ("service", "~80-resource chart, 50 clients"),
        ("request-path", "the same, request path alone"),
        ("signed", "the same, signed JWT"),
    ):
        table.line(
            f"| {label}, CPU ms per request | {per_request['bare']:.2f} | "
            f"{per_request[name]:.2f} | | {per_request[name] / per_request['bare']:.1f}x |"
        )
    for name, q in (("p50", 50), ("p99", 99)):
        table.line(
            f"| /health while each is saturated, {name} | {_p(probes['bare'], q):.2f} ms "
            f"| {_p(probes['service'], q):.2f} ms | | |"
        )
    by_token = probes["signed"]
    table.line(
        f"| /health while the signed calls saturate it, p50 / p99 | | {_p(by_token, 50):.2f} / "
        f"{_p(by_token, 99):.2f} ms | | |"
    )
    thread = probes["worker-thread"]
    table.line(
        f"| /health, every evaluation in the worker thread, p50 / p99 | | {_p(thread, 50):.2f} / "
        f"{_p(thread, 99):.2f} ms | | |"
    )
    print()
    print("\n".join(table.rows))
    note = (
        f"2,000 against 200 resources: {sized[2000] / sized[200]:.1f}x. {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}, load from {generator()}, one uvicorn worker each "
        "(pinned to core 0; client and load generator on core 1); "
        f"{time.strftime('%Y-%m-%d')}, `python3 dev.py bench --docs`."
    )
    print("\n" + note)
    if args.docs:
        write_docs(table.rows, note)


if __name__ == "__main__":
    main()
