"""Benchmark (not a test): throughput of `cds serve --workers 1` against `--workers 2`.

    .venv/bin/python tests/benchmarks/scaling.py [--seconds 10] [--clients 16]

The typical chart (~80 resources) is posted with 1,000 different bodies in rotation (new ids
and hookInstance each, so nothing is answered from a cache), for a fixed time against each
configuration in turn; prints requests per second and the ratio. Load: `load.py` (wrk where
installed).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.load import generator, requests_per_second  # noqa: E402
from tests.benchmarks.versus_bare import _chart, _fresh  # noqa: E402
from tests.servers import running_service  # noqa: E402


def run(workers: int, seconds: float, clients: int) -> float:
    tmp = Path(tempfile.mkdtemp(prefix="cds-scale-"))
    with running_service(tmp, "--workers", str(workers)) as (base, _):
        time.sleep(1.0)  # every worker up
        chart = _chart(60)
        bodies = [_fresh(chart) for _ in range(1000)]
        return requests_per_second(
            f"{base}/cds-services/mbc-bone-patient-view",
            bodies,
            tmp / "bodies",
            seconds=seconds,
            clients=clients,
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--clients", type=int, default=16)
    a = ap.parse_args()
    one = run(1, a.seconds, a.clients)
    two = run(2, a.seconds, a.clients)
    print(
        f"--workers 1: {one:.0f} requests/s; --workers 2: {two:.0f} requests/s; "
        f"ratio {two / one:.2f}x ({os.cpu_count()} cores, load from {generator()} on the same "
        "machine)"
    )


if __name__ == "__main__":
    main()
