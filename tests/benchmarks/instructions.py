"""Benchmark (not a test): CPU instructions per call, counted by valgrind, which no other
process on the machine moves; and the Python function calls an evaluation makes, which are exact.

    python tests/benchmarks/instructions.py            # needs valgrind (Debian: valgrind)

Wall-clock numbers on a shared machine move by 15% or more from one run to the next, which is
more than most single changes gain or lose. Instructions executed are steadier (hash seed
fixed, garbage collector off while counting) and the same tree counts the same every time, but
the memory layout the code happens to get moves them: trees running exactly the same Python
counted 7.7 to 11.2 million for the typical evaluation (docs/performance.md). A difference under
about a fifth says nothing; compare the Python function calls (cProfile) first. Each row runs
the same setup twice under callgrind, once with N calls and once without; the difference over N
is the cost of one call:

* the bare FastAPI endpoint and the service, each called in-process through ASGI (no sockets,
  no uvicorn), with the typical ~80-resource chart, new resource ids on every call;
* the evaluation alone (read, facts, rules, cards) for that chart and a 2,000-resource one.

Instructions are not time (memory stalls are not counted), but the ratio between the service
and the bare endpoint here tracks the throughput ratio that `dev.py bench` measures.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import gc
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.versus_bare import BARE, _chart, _fresh, _sized  # noqa: E402

SETS = 42  # request bodies built in every run, whatever N: only the calls differ
AS_OF = date(2026, 12, 1)
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


async def _call(app: ASGIApp, path: str, body: bytes, state: dict[str, Any]) -> None:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # the client never disconnects
        return {"type": "http.disconnect"}

    status: list[int] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    scope: Message = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "state": dict(state),
    }
    await app(scope, receive, send)
    if status != [200]:
        raise SystemExit(f"{path} answered {status}")


async def _asgi_calls(which: str, n: int) -> None:
    app: ASGIApp
    if which == "bare":
        namespace: dict[str, Any] = {}
        exec(BARE, namespace)  # noqa: S102 - the benchmark's own bare endpoint
        app, path = namespace["app"], "/cds-services/x"
    else:
        from cds.app import create_app
        from cds.settings import Settings

        app, path = create_app(Settings()), "/cds-services/mbc-bone-patient-view"
    bodies = [_fresh(_chart(60)) for _ in range(SETS)]
    state: dict[str, Any] = {}
    started = asyncio.Event()
    queue: asyncio.Queue[Message] = asyncio.Queue()
    await queue.put({"type": "lifespan.startup"})

    async def lifespan_send(message: Message) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()
        elif message["type"].endswith(".failed"):
            raise SystemExit(message.get("message"))

    async def run_lifespan() -> None:
        scope: Message = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}
        await app(scope, queue.get, lifespan_send)

    lifespan = asyncio.create_task(run_lifespan())
    await started.wait()
    for body in bodies[-2:]:
        await _call(app, path, body, state)  # warm: first-call imports and caches
    gc.collect()
    gc.freeze()
    gc.disable()
    for body in bodies[:n]:
        await _call(app, path, body, state)
    await queue.put({"type": "lifespan.shutdown"})
    await lifespan


def _evaluations(size: int, n: int, *, count_calls: bool = False) -> None:
    from cds import jsonsafe, schemas
    from cds.call import evaluate_call
    from cds.services import load_knowledge
    from cds.settings import Settings

    settings = Settings()
    k = load_knowledge(settings.cards_dir, settings.parameters, settings.validation)
    service = k.services["mbc-bone-patient-view"]
    chart = _chart(60) if size == 0 else _sized(size)
    requests = [
        schemas.HookRequest.model_validate(jsonsafe.loads(_fresh(chart))) for _ in range(SETS)
    ]
    warm = requests[-1]
    evaluate_call(k, service, warm, warm.context, warm.prefetch or {}, as_of=AS_OF)
    gc.collect()
    gc.freeze()
    gc.disable()
    profile = cProfile.Profile() if count_calls else None
    if profile is not None:
        profile.enable()
    for r in requests[:n]:
        evaluate_call(k, service, r, r.context, r.prefetch or {}, as_of=AS_OF)
    if profile is not None:
        profile.disable()
        print(pstats.Stats(profile).total_calls / n)  # type: ignore[attr-defined]


# Small objects allocated before anything else: another memory layout for the same code.
_LAYOUT_PADS = (0, 1000, 3333, 10000, 20000)
_pad: list[object] = []


def _inner(which: str, n: int) -> None:
    """One counted run (under valgrind): setup, then n calls."""
    _pad.extend(object() for _ in range(int(os.environ.get("CDS_BENCH_PAD", "0"))))
    os.environ["CDS_FEEDBACK_DB"] = str(Path(tempfile.mkdtemp(prefix="cds-ir-")) / "f.sqlite3")
    if which in ("bare", "service"):
        asyncio.run(_asgi_calls(which, n))
    else:
        _evaluations(2000 if which == "evaluation-2000" else 0, n)


def _count(which: str, n: int, pad: int = 0) -> int:
    out = subprocess.run(  # noqa: S603
        [
            shutil.which("valgrind") or "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--inner",
            which,
            str(n),
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "0", "CDS_BENCH_PAD": str(pad)},
    ).stderr
    line = next(x for x in out.splitlines() if "Collected :" in x)
    return int(line.split()[-1])


def _per_call(which: str, n: int, layouts: int) -> list[float]:
    """Million instructions a call, once for each memory layout."""
    out = []
    for pad in _LAYOUT_PADS[:layouts]:
        with ThreadPoolExecutor(2) as pool:  # the two runs of a row side by side
            base, loaded = pool.map(functools.partial(_count, which, pad=pad), (0, n))
        out.append((loaded - base) / n / 1e6)
    return out


def _cell(counts: list[float]) -> str:
    """The median, and with several layouts their range: what one layout alone cannot say."""
    median = statistics.median(counts)
    return (
        f"{median:.1f}"
        if len(counts) == 1
        else f"{median:.1f} ({min(counts):.1f}-{max(counts):.1f})"
    )


def _function_calls(size: int, n: int) -> float:
    """Python function calls per evaluation (cProfile, in a process of its own): exact, the same
    on every run and every memory layout."""
    out = subprocess.run(  # noqa: S603
        [sys.executable, __file__, "--calls", str(size), str(n)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.split()[-1])


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--inner":
        _inner(sys.argv[2], int(sys.argv[3]))
        return
    if len(sys.argv) == 4 and sys.argv[1] == "--calls":
        _evaluations(int(sys.argv[2]), int(sys.argv[3]), count_calls=True)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--layouts",
        type=int,
        default=1,
        choices=range(1, len(_LAYOUT_PADS) + 1),
        metavar=f"1-{len(_LAYOUT_PADS)}",
        help="count each row in this many memory layouts and print the median and range"
        " (each layout takes as long as the first; 3 to compare two trees)",
    )
    layouts = parser.parse_args().layouts
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt install valgrind)")
    # Bytecode compiled first: a run that compiles a module the other finds compiled (both
    # start together, after an edit) counts the compiler too (seen: 0.5 M a call on the bare
    # row, 1.5 M on the evaluation).
    subprocess.run(  # noqa: S603
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "cds"), str(ROOT / "tests")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(f"counting (about a minute a row and layout; {layouts} layout(s)) ...", flush=True)
    bare = _per_call("bare", 20, layouts)
    service = _per_call("service", 20, layouts)
    typical = _per_call("evaluation", 20, layouts)
    big = _per_call("evaluation-2000", 3, layouts)
    ratio = statistics.median(bare)
    rows = [
        "| in-process call (ASGI, no sockets) | million instructions | against bare |",
        "|---|---|---|",
        f"| bare FastAPI endpoint, ~80-resource chart | {_cell(bare)} | 1.0x |",
        f"| service, ~80-resource chart | {_cell(service)} |"
        f" {statistics.median(service) / ratio:.1f}x |",
        f"| evaluation alone, ~80-resource chart | {_cell(typical)} |"
        f" {statistics.median(typical) / ratio:.1f}x |",
        f"| evaluation alone, 2,000-resource chart | {_cell(big)} | |",
    ]
    calls = (_function_calls(0, 20), _function_calls(2000, 3))
    rows.append("")
    rows.append(
        f"Python function calls per evaluation: {calls[0]:,.0f} (~80-resource chart),"
        f" {calls[1]:,.0f} (2,000 resources)."
    )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
