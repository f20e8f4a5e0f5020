"""The benchmark's asyncio load generator (what `dev.py bench` uses where wrk is not installed)
against a small HTTP/1.1 server: every token goes out once, answers are read by length, in
chunks or up to a closed connection, and an error answer stops the run instead of counting."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.benchmarks import load

_ANSWERS = {
    "/length": b'HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n{"cards":[]}',
    "/chunked": b'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{"car\r\n'
    b'7\r\nds":[]}\r\n0\r\n\r\n',
    "/close": b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}",
    "/fail": b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy",
}


class _Server:
    """Answers each path its fixed way and keeps what every request carried."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bytes]] = []  # path, Authorization, body
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                path = head.split(" ", 2)[1]
                fields = dict(
                    line.lower().split(":", 1) for line in head.split("\r\n")[1:] if ":" in line
                )
                body = await reader.readexactly(int(fields["content-length"]))
                auth = (
                    head.split("Authorization: ", 1)[1].split("\r\n")[0] if "Bearer" in head else ""
                )
                self.seen.append((path, auth, body))
                writer.write(_ANSWERS[path])
                await writer.drain()
                if path == "/close":
                    break
        except asyncio.IncompleteReadError:
            pass  # the client closed its connection
        finally:
            writer.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        self._loop.run_until_complete(server.wait_closed())
        self._loop.close()

    async def _stop(self) -> None:
        handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in handlers:
            t.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        self._loop.stop()

    def __enter__(self) -> _Server:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop)
        self._thread.join(10)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda n: None if n == "wrk" else real_which(n))
    with _Server() as s:
        yield s


BODIES = [b'{"hookInstance": "a"}', b'{"hookInstance": "b"}', b'{"hookInstance": "c"}']


@pytest.mark.parametrize("path", ["/length", "/chunked", "/close"])
def test_every_answer_is_read_whatever_its_framing(
    server: _Server, tmp_path: Path, path: str
) -> None:
    rps = load.requests_per_second(
        f"http://127.0.0.1:{server.port}{path}", BODIES, tmp_path, seconds=0.5, clients=3
    )
    assert rps > 0
    assert len(server.seen) > 3  # the warm-up and the run, on three connections
    assert {body for _, _, body in server.seen} == set(BODIES)
    assert {p for p, _, _ in server.seen} == {path}


def test_each_token_is_sent_once_and_the_run_ends_when_they_are_used_up(
    server: _Server, tmp_path: Path
) -> None:
    tokens = [f"token-{i}" for i in range(40)]
    load.requests_per_second(
        f"http://127.0.0.1:{server.port}/length",
        BODIES,
        tmp_path,
        seconds=30,  # ends long before: 40 requests
        clients=4,
        tokens=tokens,
    )
    sent = [auth for _, auth, _ in server.seen]
    assert sorted(sent) == sorted(f"Bearer {t}" for t in tokens)


def test_an_error_answer_fails_the_run_and_names_it(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="answered 503"):
        load.requests_per_second(
            f"http://127.0.0.1:{server.port}/fail", BODIES, tmp_path, seconds=0.5, clients=2
        )
