"""Request bodies in flight: a deadline to arrive and a memory budget shared by all calls.

uvicorn bounds neither. A body may trickle in a byte at a time, holding its connection (one of
`CDS_MAX_CONNECTIONS`) for as long as the client likes; and each body is held in memory, with
what is parsed from it (~7x its size), for the whole call: 40 concurrent 4.9 MB calls added
1.3-1.4 GB. Here a POST's body must arrive within `CDS_BODY_TIMEOUT_S` of the request (408),
and all bodies being received or worked on share `CDS_MAX_BODY_BYTES_IN_FLIGHT` (503 beyond
it, at once: waiting would hold the memory the budget is for). The errors are raised from the
route's own read of the body, so they leave as OperationOutcomes like any other.
"""

from __future__ import annotations

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds.errors import BodyTimeout, Busy


class BodyBudgetMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes_in_flight: int, timeout_s: float) -> None:
        self.app = app
        self.bytes_left = max_bytes_in_flight  # one event loop: no lock needed
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        held = 0
        complete = False
        deadline = anyio.current_time() + self.timeout_s

        async def bounded_receive() -> Message:
            nonlocal held, complete
            if complete:  # afterwards only a disconnect can come, whenever it comes
                return await receive()
            with anyio.CancelScope(deadline=deadline):  # move_on_after without a clock read
                message = await receive()
                if message["type"] == "http.request":
                    size = len(message.get("body", b""))
                    if size > self.bytes_left:
                        raise Busy(
                            "too many large request bodies are being worked on; retry shortly"
                            " (CDS_MAX_BODY_BYTES_IN_FLIGHT)"
                        )
                    self.bytes_left -= size
                    held += size
                    complete = not message.get("more_body", False)
                return message
            raise BodyTimeout(
                f"the request body did not arrive within {self.timeout_s:g} s (CDS_BODY_TIMEOUT_S)"
            )

        try:
            await self.app(scope, bounded_receive, send)
        finally:
            self.bytes_left += held
