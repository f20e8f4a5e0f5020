"""Benchmark only: `cds serve` with one piece of every call changed, to price that piece.

    python tests/benchmarks/variant.py request-path serve --port 8081
    python tests/benchmarks/variant.py worker-thread serve --port 8082

request-path: every call's `evaluate_call` returns the outcome of the first call; everything
around it runs as in the service: parsing and checking the request, prefetch, the store
(snoozes, issued cards), the worker thread, serializing the cards, the log line. What it serves
is the most any work on facts, rules and cards could give.

worker-thread: every evaluation runs in the worker thread, as large charts do, instead of on
the event loop one call's turn at a time. What the service serves beyond it is what the
thread hop cost; its `/health` under load is what the hop bought.
"""

from __future__ import annotations

import sys
from typing import Any

import cds.call
from cds.call import Outcome, evaluate_call
from cds.tools.cli import main

_outcome: list[Outcome] = []  # the first call's


def _remembered(*args: Any, **kwargs: Any) -> Outcome:
    if not _outcome:
        _outcome.append(evaluate_call(*args, **kwargs))
    return _outcome[0]


def _install(variant: str) -> None:
    # Each refuses to start when cds.call changed under it: it would measure the service.
    route = vars(cds.call)
    if variant == "request-path":
        if route.get("evaluate_call") is not evaluate_call:
            sys.exit("cds.call no longer calls evaluate_call by that name: update variant.py")
        route["evaluate_call"] = _remembered
    elif variant == "worker-thread":
        if not isinstance(route.get("INLINE_MAX_RESOURCES"), int):
            sys.exit("cds.call no longer sizes the charts it evaluates inline: update variant.py")
        route["INLINE_MAX_RESOURCES"] = -1  # every chart counts as large
    else:
        sys.exit(f"unknown variant {variant!r}: request-path or worker-thread")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    _install(sys.argv.pop(1))
    sys.exit(main())
