"""Benchmark only: `cds serve` with one piece of every call changed, to price that piece.

    python tests/benchmarks/variant.py request-path serve --port 8081
    python tests/benchmarks/variant.py on-the-loop serve --port 8082

request-path: every call's `evaluate_call` returns the outcome of the first call; everything
around it runs as in the service: parsing and checking the request, prefetch, the store
(snoozes, issued cards), the worker thread, serializing the cards, the log line. What it serves
is the most any work on facts, rules and cards could give.

on-the-loop: the evaluation runs on the event loop instead of in the worker thread. What it
serves beyond the service is what the thread hop costs; its `/health` under load is what the
hop buys.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import anyio

import cds.call
from cds.call import Outcome, evaluate_call
from cds.tools.cli import main

_outcome: list[Outcome] = []  # the first call's


def _remembered(*args: Any, **kwargs: Any) -> Outcome:
    if not _outcome:
        _outcome.append(evaluate_call(*args, **kwargs))
    return _outcome[0]


async def _evaluation_inline(
    fn: Callable[..., Any], *args: Any, limiter: anyio.CapacityLimiter | None = None
) -> Any:
    if limiter is not None:  # the evaluation slot: only the evaluation is given one
        return fn(*args)
    return await anyio.to_thread.run_sync(fn, *args)


def _install(variant: str) -> None:
    # Each refuses to start when cds.call changed under it: it would measure the service.
    route = vars(cds.call)
    if variant == "request-path":
        if route.get("evaluate_call") is not evaluate_call:
            sys.exit("cds.call no longer calls evaluate_call by that name: update variant.py")
        route["evaluate_call"] = _remembered
    elif variant == "on-the-loop":
        source = inspect.getsource(cds.call._evaluate_and_store)
        if route.get("anyio") is not anyio or "limiter=env.evaluations" not in source:
            sys.exit(
                "cds.call no longer hands the evaluation to a limited thread: update variant.py"
            )
        route["anyio"] = SimpleNamespace(to_thread=SimpleNamespace(run_sync=_evaluation_inline))
    else:
        sys.exit(f"unknown variant {variant!r}: request-path or on-the-loop")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    _install(sys.argv.pop(1))
    sys.exit(main())
