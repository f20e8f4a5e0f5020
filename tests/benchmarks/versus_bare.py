"""Benchmark (not a test): the service against a bare FastAPI endpoint, side by side on loopback.

    .venv/bin/python tests/benchmarks/versus_bare.py [--calls 200]

Both run as uvicorn processes; one client sends the same request body to each in turn: the
bare endpoint only JSON-parses it and returns three fixed cards. Every call gets new resource
ids and a new hookInstance, so no cache can help. Prints p50/p90 and the ratio for a typical
chart (~80 resources) and a 2,000-resource chart where 15% of the resources are read by the
rules.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.bench import record  # noqa: E402
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


def _start(args: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    wait_for(f"http://127.0.0.1:{port}/health", proc, " ".join(args[1:3]))
    return proc


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


def _big() -> dict[str, Any]:
    body = _chart(0)
    p = record(0.15)
    entries = [{"resource": r} for r in p.resources]
    body["prefetch"]["conditions"]["entry"] = entries  # all 2,000 in one key: the service sorts
    return body


def _fresh(body: dict[str, Any]) -> bytes:
    """New ids and hookInstance: nothing can be answered from a cache."""
    text = json.dumps(body)
    tag = uuid.uuid4().hex[:8]
    text = text.replace('"id": "obs-', f'"id": "obs-{tag}-').replace(
        '"id": "extra-', f'"id": "x{tag}-'
    )
    data = json.loads(text)
    data["hookInstance"] = str(uuid.uuid4())
    return json.dumps(data).encode()


def _measure(client: httpx.Client, url: str, body: dict[str, Any], calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        payload = _fresh(body)
        start = time.perf_counter()
        r = client.post(url, content=payload, headers={"content-type": "application/json"})
        out.append((time.perf_counter() - start) * 1000)
        assert r.status_code == 200, r.text[:300]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=200)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cds-bench-"))
    (tmp / "bare.py").write_text(BARE)
    env = {
        **os.environ,
        "CDS_FEEDBACK_DB": str(tmp / "f.sqlite3"),
        "CDS_LOG_LEVEL": "ERROR",
        "PYTHONPATH": str(tmp),
    }
    sp, bp = free_port(), free_port()
    service = _start([sys.executable, "-m", "cds", "serve", "--port", str(sp)], env, sp)
    bare = _start(
        [sys.executable, "-m", "uvicorn", "bare:app", "--port", str(bp), "--log-level", "error"],
        env,
        bp,
    )
    try:
        with httpx.Client(timeout=60) as c:
            print(f"{'request':<48} {'bare p50':>9} {'service p50':>12} {'p90':>8} {'ratio':>6}")
            for name, body in (
                ("typical chart (~80 resources)", _chart(60)),
                ("2,000 resources, 15% read by the rules", _big()),
            ):
                calls = args.calls if "typical" in name else max(20, args.calls // 10)
                _measure(c, f"http://127.0.0.1:{bp}/cds-services/x", body, 5)
                _measure(c, f"http://127.0.0.1:{sp}/cds-services/mbc-bone-patient-view", body, 5)
                b = _measure(c, f"http://127.0.0.1:{bp}/cds-services/x", body, calls)
                s = _measure(
                    c, f"http://127.0.0.1:{sp}/cds-services/mbc-bone-patient-view", body, calls
                )
                bm, sm = statistics.median(b), statistics.median(s)
                s90 = statistics.quantiles(s, n=10)[-1]
                print(f"{name:<48} {bm:>7.2f}ms {sm:>10.2f}ms {s90:>6.2f}ms {sm / bm:>5.1f}x")
    finally:
        service.terminate()
        bare.terminate()
    print(f"(loopback, one client, {os.cpu_count()} cores, Python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
