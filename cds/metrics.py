"""Prometheus metrics: what an operator alerts on (docs/operations.md, "Operating it").

Every label takes one of a bounded set of values: service ids the knowledge defines (any other
path is "unknown"), hooks, HTTP status codes, rule ids, card indicators and fixed reason words.
Never a patient, card, token, URL or free text: a label is stored for every value it ever took.

The metrics are served on their own address (CDS_METRICS_ADDRESS), never beside the hook
endpoints. Under `cds serve --workers N` each worker writes its values to files in one
directory (prometheus-client's multiprocess mode, PROMETHEUS_MULTIPROC_DIR, set by `cds serve`
before the workers start) and the supervising process serves their sum.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    multiprocess,
    start_http_server,
)

from cds.settings import host_port

# A call's answer takes milliseconds; the tail up to the spec's 500 ms and past it.
_CALL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5)

CALLS = Counter(
    "cds_calls",
    "CDS Hooks calls answered, by service, hook and HTTP status",
    ["service", "hook", "status"],
)
CALL_SECONDS = Histogram(
    "cds_call_duration_seconds",
    "Time to answer a CDS Hooks call",
    ["service"],
    buckets=_CALL_BUCKETS,
)
STAGE_SECONDS = Histogram(
    "cds_stage_duration_seconds",
    "Time a call spent in each stage: prefetch_check, fhir_fetch, facts, rules, render, store,"
    " serialize",
    ["stage"],
    buckets=_STAGE_BUCKETS,
)
CARDS = Counter("cds_cards", "Cards returned, by rule and indicator", ["rule", "indicator"])
FHIR_REQUESTS = Counter(
    "cds_fhir_requests", "Requests to EHR FHIR servers, by outcome", ["outcome"]
)
FHIR_SECONDS = Histogram(
    "cds_fhir_request_duration_seconds",
    "Time of one request to an EHR FHIR server",
    ["outcome"],
    buckets=_CALL_BUCKETS,
)
JWT_REJECTIONS = Counter("cds_jwt_rejections", "Client JWTs refused, by reason", ["reason"])
FEEDBACK = Counter(
    "cds_feedback_items", "Feedback items, by outcome (accepted, overridden, refused)", ["outcome"]
)
STORE_ERRORS = Counter("cds_store_errors", "Calls answered 503 because the store failed")

# Timings' stage names (cds.call.Timings) → the stage label.
STAGES = {
    "parse": "prefetch_check",
    "prefetch": "fhir_fetch",
    "facts": "facts",
    "rules": "rules",
    "cards": "render",
    "store": "store",
    "serialize": "serialize",
}


# Each stage's histogram looked up once: `labels()` takes a lock and builds a key every time,
# ten times a call.
_STAGE_HISTOGRAMS = {stage: STAGE_SECONDS.labels(label) for stage, label in STAGES.items()}


@functools.cache
def _card_counter(rule: str, indicator: str) -> Counter:
    return CARDS.labels(rule, indicator)  # rules and indicators are few: the cache stays small


def observe_call(stages_ms: Mapping[str, float], cards: Iterable[tuple[str, str]]) -> None:
    """A call's stage times (milliseconds, as logged) and its cards as (rule, indicator)."""
    for stage, ms in stages_ms.items():
        histogram = _STAGE_HISTOGRAMS.get(stage)
        if histogram is not None:
            histogram.observe(ms / 1000)
    for rule, indicator in cards:
        _card_counter(rule, indicator).inc()


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_SERVICES = "/cds-services/"


class CallMetrics:
    """Counts and times every POST to a service (outermost, so 4xx and 5xx answers are counted
    whichever layer gave them). `hooks` maps each known service id to its hook."""

    def __init__(self, app: ASGIApp, hooks: Mapping[str, str]) -> None:
        self.app = app
        self.hooks = dict(hooks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if scope.get("method") != "POST" or not path.startswith(_SERVICES):
            await self.app(scope, receive, send)
            return
        service = path[len(_SERVICES) :]
        if "/" in service:  # feedback: counted by its own metric
            await self.app(scope, receive, send)
            return
        hook = self.hooks.get(service)
        if hook is None:  # a mistyped or hostile path: one bounded label
            service = hook = "unknown"
        status = 500  # unless an answer starts: an exception reaches the server's 500
        start = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            CALLS.labels(service, hook, str(status)).inc()
            CALL_SECONDS.labels(service).observe(time.perf_counter() - start)


def prepare_workers() -> Path:
    """Before worker processes start: the directory their values go to (a fresh one unless
    PROMETHEUS_MULTIPROC_DIR is set, which is then emptied: values of an earlier run would be
    added to this one's)."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        directory = Path(given)
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
    else:
        directory = Path(tempfile.mkdtemp(prefix="cds-metrics-"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return directory


def serve(address: str, workers_dir: Path | None = None) -> None:
    """Serve /metrics (any path, in fact) on `address` from a daemon thread: this process's
    values, or with `workers_dir` the sum of the workers' values written there."""
    host, port = host_port(address)
    registry = REGISTRY
    if workers_dir is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(workers_dir))  # type: ignore[no-untyped-call]
    start_http_server(port, host, registry=registry)


def worker_exited(pid: int) -> None:
    """A worker died: its live gauges go (its counters stay in the sum)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
