"""Benchmark (not a test): throughput of `cds serve --workers 1` against `--workers 2`.

    .venv/bin/python tests/benchmarks/scaling.py [--seconds 10] [--clients 16]

The typical chart (~80 resources) is posted with 1,000 different bodies in rotation (new ids
and hookInstance each: more than the validation cache holds, so nothing is answered from it),
for a fixed time against each configuration in turn; prints requests per second and the
ratio. The load generator is wrk (Debian's package) when installed - it needs little CPU,
which matters on a 2-core machine - else an asyncio client, which competes with the workers
for the same cores and understates the scaling.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.versus_bare import _chart, _fresh  # noqa: E402
from tests.servers import running_service  # noqa: E402


async def _load(url: str, seconds: float, clients: int) -> float:
    body = _chart(60)
    payloads = [_fresh(body) for _ in range(200)]
    done = 0
    end = time.perf_counter() + seconds
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=clients)) as c:

        async def client(i: int) -> None:
            nonlocal done
            n = i
            while time.perf_counter() < end:
                r = await c.post(
                    url,
                    content=payloads[n % len(payloads)],
                    headers={"content-type": "application/json"},
                )
                assert r.status_code == 200
                done += 1
                n += clients

        await asyncio.gather(*(client(i) for i in range(clients)))
    return done / seconds


WRK_SCRIPT = """
local bodies = {}
function init(args)
  local i = 0
  while true do
    local f = io.open(args[1] .. "/" .. i .. ".json", "r")
    if f == nil then break end
    bodies[#bodies + 1] = f:read("*a")
    f:close()
    i = i + 1
  end
  n = math.random(#bodies)
end
function request()
  n = n % #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[n])
end
"""


def _wrk(url: str, seconds: float, clients: int, folder: Path) -> float:
    script = folder / "post.lua"
    script.write_text(WRK_SCRIPT)
    wrk = shutil.which("wrk") or "wrk"
    out = subprocess.run(  # noqa: S603
        [
            wrk,
            "-t1",
            f"-c{clients}",
            f"-d{int(seconds)}s",
            "-s",
            str(script),
            url,
            "--",
            str(folder),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("Requests/sec:"))
    return float(line.split()[1])


def run(workers: int, seconds: float, clients: int) -> float:
    tmp = Path(tempfile.mkdtemp(prefix="cds-scale-"))
    with running_service(tmp, "--workers", str(workers)) as (base, _):
        time.sleep(1.0)  # every worker up
        url = f"{base}/cds-services/mbc-bone-patient-view"
        if shutil.which("wrk"):
            bodies = tmp / "bodies"
            bodies.mkdir()
            chart = _chart(60)
            for i in range(1000):
                (bodies / f"{i}.json").write_bytes(_fresh(chart))
            _wrk(url, 2, clients, bodies)  # warm-up
            return _wrk(url, seconds, clients, bodies)
        asyncio.run(_load(url, 2.0, clients))  # warm-up
        return asyncio.run(_load(url, seconds, clients))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--clients", type=int, default=16)
    a = ap.parse_args()
    one = run(1, a.seconds, a.clients)
    two = run(2, a.seconds, a.clients)
    print(
        f"--workers 1: {one:.0f} requests/s; --workers 2: {two:.0f} requests/s; "
        f"ratio {two / one:.2f}x ({os.cpu_count()} cores, load generator on the same machine)"
    )


if __name__ == "__main__":
    main()
