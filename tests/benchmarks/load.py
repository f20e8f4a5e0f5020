"""Load generation for the benchmarks: wrk (Debian's package) where installed, else asyncio.

Both post a rotation of pre-built bodies (each with new resource ids and hookInstance), so no
cache can answer from an earlier call; with tokens, each request carries the next one as its
Bearer token (a token is used once: a second use is a replay, and fails). wrk needs little CPU,
which matters on a 2-core machine. The asyncio fallback writes pre-built HTTP/1.1 requests on
keep-alive sockets and reads each answer by its length or its chunks, in a process of its own
(the /health prober's thread must not wait for its GIL); an HTTP client library there (httpx:
~100 calls a second at 50 connections) measured itself, not the server. It needs more CPU than
wrk (~15% of a core against the bare endpoint): when it kept its core busy for most of a run,
the figure is its own limit and a warning says so. Either is stopped if it outlives its run by
a minute, so a server that stops answering ends the benchmark instead of hanging it.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

_GRACE_S = 60  # beyond a run's length, before the generator is stopped

WRK_SCRIPT = """
local bodies = {}
local tokens = {}
function init(args)
  local i = 0
  while true do
    local f = io.open(args[1] .. "/" .. i .. ".json", "r")
    if f == nil then break end
    bodies[#bodies + 1] = f:read("*a")
    f:close()
    i = i + 1
  end
  local t = args[2] and io.open(args[2], "r")
  if t then
    for line in t:lines() do tokens[#tokens + 1] = line end
    t:close()
  end
  n = math.random(#bodies)
  used = 0
end
function request()
  n = n % #bodies + 1
  local headers = {["Content-Type"] = "application/json"}
  if #tokens > 0 then
    used = used % #tokens + 1
    headers["Authorization"] = "Bearer " .. tokens[used]
  end
  return wrk.format("POST", nil, headers, bodies[n])
end
"""


def generator() -> str:
    return "wrk" if shutil.which("wrk") else "Python (asyncio)"


def _requests(url: str, bodies: Sequence[bytes], tokens: Sequence[str]) -> list[bytes]:
    """Every request whole, headers and body, in the order they go out: a body rotation, or
    one per token when there are tokens."""
    u = urlsplit(url)
    head = (
        f"POST {u.path or '/'} HTTP/1.1\r\nHost: {u.netloc}\r\nContent-Type: application/json\r\n"
    )
    count = len(tokens) or len(bodies)
    out = []
    for i in range(count):
        body = bodies[i % len(bodies)]
        auth = f"Authorization: Bearer {tokens[i]}\r\n" if tokens else ""
        out.append(f"{head}{auth}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return out


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """One HTTP/1.1 response: its status, its body, and whether the server keeps the
    connection open."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
    status = int(head[9:12])
    fields = dict(line.split(":", 1) for line in head.split("\r\n")[1:] if ":" in line)
    if "chunked" in fields.get("transfer-encoding", ""):
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")
    else:
        body = await reader.readexactly(int(fields.get("content-length", "0")))
    return status, body, "close" not in fields.get("connection", "")


async def _asyncio(
    url: str, requests: Sequence[bytes], seconds: float, clients: int, *, once: bool
) -> int:
    """Requests answered in `seconds` by `clients` keep-alive connections: `requests` in
    rotation, or with `once` (each carries its own token) each sent once, the run ending early
    when they are used up."""
    u = urlsplit(url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    done, sent = 0, 0
    end = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done, sent
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < end and not (once and sent == len(requests)):
                writer.write(requests[sent % len(requests)])
                sent += 1
                status, body, keep = await _answer(reader)
                if status != 200:
                    raise AssertionError(f"{url} answered {status}: {body[:300]!r}")
                done += 1
                if not keep:
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return done


def _python(url: str, folder: Path, seconds: float, clients: int, tokens: Path | None) -> float:
    """The asyncio generator in a process of its own, given what wrk is given: the folder of
    bodies and the token file."""
    out = subprocess.run(  # noqa: S603
        [sys.executable, __file__, url, str(folder), str(seconds), str(clients), str(tokens or "")],
        capture_output=True,
        text=True,
        timeout=seconds + _GRACE_S,
    )
    if out.returncode:
        raise AssertionError(f"the load generator failed against {url}:\n{out.stderr[-2000:]}")
    rps, busy = map(float, out.stdout.split())
    if busy > 0.9:
        print(
            f"warning: the asyncio load generator kept its core {busy:.0%} busy against {url}: "
            f"{rps:.0f} requests/s may be its limit, not the server's (install wrk)",
            file=sys.stderr,
        )
    return rps


def _load_process(url: str, folder: Path, seconds: float, clients: int, tokens: str) -> None:
    """The asyncio generator's process: prints requests per second and the share of the run
    it kept its own core busy. Every request is built before the clock starts."""
    bodies = [b.read_bytes() for b in sorted(folder.glob("*.json"), key=lambda b: int(b.stem))]
    sent = Path(tokens).read_text().split() if tokens else []
    requests = _requests(url, bodies, sent)
    wall, cpu = time.perf_counter(), time.process_time()
    done = asyncio.run(_asyncio(url, requests, seconds, clients, once=bool(sent)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{done / wall} {cpu / wall}")


def _wrk(url: str, folder: Path, seconds: float, clients: int, tokens: Path | None) -> float:
    script = folder / "post.lua"
    script.write_text(WRK_SCRIPT)
    out = subprocess.run(  # noqa: S603
        [
            shutil.which("wrk") or "wrk",
            "-t1",
            f"-c{clients}",
            f"-d{max(1, round(seconds))}s",
            "-s",
            str(script),
            url,
            "--",
            str(folder),
            *([str(tokens)] if tokens else []),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + _GRACE_S,
    ).stdout
    if "Non-2xx" in out:
        raise AssertionError(f"wrk saw error responses from {url}:\n{out}")
    line = next(x for x in out.splitlines() if x.startswith("Requests/sec:"))
    return float(line.split()[1])


def _token_file(path: Path, tokens: Sequence[str]) -> Path | None:
    if not tokens:
        return None
    path.write_text("\n".join(tokens) + "\n")
    return path


def requests_per_second(
    url: str,
    bodies: Sequence[bytes],
    folder: Path,
    *,
    seconds: float,
    clients: int,
    tokens: Sequence[str] = (),
    measured: Callable[[bool], None] | None = None,
) -> float:
    """Throughput at `clients` concurrent connections for `seconds`, after a one-second
    warm-up. With `tokens`, one per request, shared between the two by their length.
    `measured(True)` is called as the measured run starts, `measured(False)` as it ends."""
    cut = round(len(tokens) / (1 + seconds))
    warm, run = tokens[:cut], tokens[cut:]
    folder.mkdir(parents=True, exist_ok=True)
    for i, body in enumerate(bodies):
        (folder / f"{i}.json").write_bytes(body)
    drive = _wrk if shutil.which("wrk") else _python
    drive(url, folder, 1, clients, _token_file(folder / "warm-tokens.txt", warm))
    tokens_file = _token_file(folder / "run-tokens.txt", run)
    if measured:
        measured(True)
    try:
        return drive(url, folder, seconds, clients, tokens_file)
    finally:
        if measured:
            measured(False)


if __name__ == "__main__":
    _load_process(sys.argv[1], Path(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
