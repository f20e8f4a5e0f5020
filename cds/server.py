"""Serving: uvicorn's h11 protocol with a deadline for request headers, the workers, and the
process settings a server runs with.

uvicorn limits idle keep-alive time but not how long a client may take to send its request
headers, so sockets that trickle partial headers (slowloris) are held as long as they like.
Here every connection must complete its request line and headers within `header_timeout_s`
of connecting or of finishing its previous response, or it is closed.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderTimeoutH11Protocol(H11Protocol):
    """Named by import path (worker processes import it): the deadline comes from the
    environment, as all settings do (CDS_HEADER_TIMEOUT_S)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout_s = float(os.environ.get("CDS_HEADER_TIMEOUT_S", "10"))
        self._header_timer: asyncio.TimerHandle | None = None
        self._waiting_after: object = None  # the request cycle that was current when armed

    def _arm(self) -> None:
        self._disarm()
        self._waiting_after = self.cycle
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.cycle is self._waiting_after and not self.transport.is_closing():
            self.transport.close()  # no new request arrived in time

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not self._waiting_after:
            self._disarm()  # the headers of a new request are complete

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def tune_for_serving() -> None:
    """Process-wide settings for a serving process, once its app is built (never in tests).

    * gc.freeze(): what start-up loaded (knowledge, the pydantic and fhir.resources schemas:
      ~95,000 objects) leaves the collector's view. A full collection over it takes ~50 ms and,
      under load, stalled every call and /health for as long (p99 of /health ~80 ms).
    * A call allocates tens of thousands of short-lived dicts and lists: young collections
      every 10,000 allocations instead of 700, so a call's garbage goes in a few, not dozens.
    * A 1 ms switch interval (default 5): the event loop gets the GIL back from an evaluation
      thread sooner, so /health and other calls' I/O keep flowing.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    sys.setswitchinterval(0.001)


def server_options(access_log: bool, max_connections: int) -> dict[str, Any]:
    """uvicorn's options, the same for one process and for each worker."""
    return {
        "log_config": None,
        "access_log": access_log,
        # Slow-header clients (slowloris) and idle sockets are dropped, not held.
        "http": "cds.server:HeaderTimeoutH11Protocol",
        "timeout_keep_alive": 5,
        "h11_max_incomplete_event_size": 16 * 1024,
        "limit_concurrency": max_connections,
        "timeout_graceful_shutdown": 10,
    }


def _worker(host: str, port: int, options: dict[str, Any]) -> None:
    """One worker process: its own listening socket on the shared port (SO_REUSEPORT), so the
    kernel spreads new connections evenly over the workers - a shared socket lets whichever
    worker accepts first take most of them."""
    import socket

    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    config = uvicorn.Config("cds.app:from_environment", factory=True, **options)
    uvicorn.Server(config).run(sockets=[sock])


def port_is_free(host: str, port: int) -> bool:
    """Whether nothing listens on the port: bound once without SO_REUSEPORT, then released.

    The workers share their port with SO_REUSEPORT, which would also let a second `cds serve`
    (other settings, auth off) bind it and silently take half the traffic (issue 28 item 17).
    A bind without the option fails while any socket holds the port, so a second instance - of
    either kind - is refused before its workers start."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def serve_workers(host: str, port: int, workers: int, options: dict[str, Any]) -> None:
    """Run `workers` processes and keep them running: a worker that dies is started again; a
    SIGTERM or SIGINT stops them all (each finishes its requests first)."""
    import multiprocessing
    import signal
    import time

    ctx = multiprocessing.get_context("spawn")

    def start() -> Any:
        proc = ctx.Process(target=_worker, args=(host, port, options), daemon=False)
        proc.start()
        return proc

    procs = [start() for _ in range(workers)]
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping:
        for i, proc in enumerate(procs):
            if not proc.is_alive():
                if proc.pid is not None:
                    from cds.metrics import worker_exited

                    worker_exited(proc.pid)
                procs[i] = start()
        time.sleep(0.5)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.join(timeout=15)
