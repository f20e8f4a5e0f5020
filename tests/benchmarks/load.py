"""Load generation for the benchmarks: wrk (Debian's package) where installed, else asyncio.

Both post a rotation of pre-built bodies (each with new resource ids and hookInstance), so no
cache can answer from an earlier call; with tokens, each request carries the next one as its
Bearer token (a token is used once: a second use is a replay, and fails). wrk needs little CPU,
which matters on a 2-core machine; the asyncio client competes with the server for its core and
understates its throughput.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

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


async def _asyncio(
    url: str, bodies: Sequence[bytes], seconds: float, clients: int, tokens: Iterator[str]
) -> float:
    done = 0
    end = time.perf_counter() + seconds
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=clients)) as c:

        async def client(i: int) -> None:
            nonlocal done
            n = i
            while time.perf_counter() < end:
                headers = {"content-type": "application/json"}
                if (token := next(tokens, None)) is not None:
                    headers["authorization"] = f"Bearer {token}"
                r = await c.post(url, content=bodies[n % len(bodies)], headers=headers)
                assert r.status_code == 200, r.text[:300]
                done += 1
                n += clients

        await asyncio.gather(*(client(i) for i in range(clients)))
    return done / seconds


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
) -> float:
    """Throughput at `clients` concurrent connections for `seconds`, after a one-second
    warm-up. With `tokens`, one per request, shared between the two by their length."""
    cut = round(len(tokens) / (1 + seconds))
    warm, run = tokens[:cut], tokens[cut:]
    if shutil.which("wrk"):
        folder.mkdir(parents=True, exist_ok=True)
        for i, body in enumerate(bodies):
            (folder / f"{i}.json").write_bytes(body)
        _wrk(url, folder, 1, clients, _token_file(folder / "warm-tokens.txt", warm))
        return _wrk(url, folder, seconds, clients, _token_file(folder / "run-tokens.txt", run))
    asyncio.run(_asyncio(url, bodies, 1.0, clients, iter(warm)))
    return asyncio.run(_asyncio(url, bodies, seconds, clients, iter(run)))
