"""Benchmark only: `cds serve` with one piece of every call changed, to price that piece.

    python tests/benchmarks/variant.py request-path serve --port 8081

request-path: every call's `evaluate_call` returns the outcome of the first call; everything
around it runs as in the service: parsing and checking the request, prefetch, the store
(snoozes, issued cards), where the evaluation runs, serializing the cards, the log line. What
it serves is the most any work on facts, rules and cards could give.

(Every evaluation in the worker thread, the other server the benchmark compares, is not a
variant: it is the service with CDS_EVALUATE_ON_LOOP_MAX_RESOURCES=0.)
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
    else:
        sys.exit(f"unknown variant {variant!r}: request-path")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    _install(sys.argv.pop(1))
    sys.exit(main())
