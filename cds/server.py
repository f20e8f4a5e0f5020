"""The HTTP server's protocol: uvicorn's h11 protocol with a deadline for request headers.

uvicorn limits idle keep-alive time but not how long a client may take to send its request
headers, so sockets that trickle partial headers (slowloris) are held as long as they like.
Here every connection must complete its request line and headers within `header_timeout_s`
of connecting or of finishing its previous response, or it is closed.
"""

from __future__ import annotations

import asyncio
import os
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
