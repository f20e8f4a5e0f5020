"""Fetching from the EHR's FHIR server, bounded: which servers may be asked (parsed URLs, never
a prefix), one GET with its timeout, connection slot and share of the call's byte and resource
budget, a search's pages (on the same server only, up to a page limit), and a call's keys in
parallel under one deadline. What cannot be had is an Issue naming its key, never an exception
that escapes."""

from __future__ import annotations

import logging
import re
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any
from urllib.parse import quote, urlsplit

import anyio
import httpx

from cds import jsonsafe, metrics, schemas
from cds.errors import Issue

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FetchLimits:
    timeout_s: float  # one request
    deadline_s: float  # all of a call's fetches, including waits for a connection slot
    max_pages: int
    max_resources: int  # per page, and for all of a call's fetches together
    max_bytes: int = 10_000_000  # all of a call's responses, compressed and decoded


class OutboundGate:
    """At most `per_host` requests in flight to one FHIR server, whoever asks.

    httpx's pool is shared by every call; unbounded, one slow server fills it and every other
    call queues behind it. A slot is waited for inside the caller's deadline, so a call to a
    server that hangs ends on time, and calls to other servers never wait for it.
    """

    def __init__(self, per_host: int = 10) -> None:
        self.per_host = per_host
        self._limiters: dict[tuple[str, str], anyio.CapacityLimiter] = {}

    def limiter(self, url: str) -> anyio.CapacityLimiter:
        origin = _origin(url)
        limiter = self._limiters.get(origin)
        if limiter is None:
            limiter = self._limiters[origin] = anyio.CapacityLimiter(self.per_host)
        return limiter


class _KeyFailed(Exception):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


@dataclass(slots=True)
class _Budget:
    """What one call may still fetch: time, decoded bytes and resources."""

    deadline: float  # anyio clock
    bytes_left: int
    resources_left: int

    def remaining(self) -> float:
        return self.deadline - anyio.current_time()


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


_DOT_SEGMENT = re.compile(r"(^|/)(\.|%2e){1,2}(/|$)", re.IGNORECASE)


def _plain_path(path: str) -> str | None:
    """A URL path with no dot segments (also percent-encoded), no encoded slash and no path
    parameters (';', which Tomcat and Jetty - where HAPI FHIR runs - strip, so that /fhir/..;/x
    is /x there); else None."""
    low = path.lower()
    if _DOT_SEGMENT.search(path) or "%2f" in low or "%5c" in low or "\\" in path:
        return None
    if ";" in path or "%3b" in low:
        return None
    return path.rstrip("/")


def _printable(url: str) -> bool:
    """No control characters or spaces anywhere (they made httpx raise: a 500)."""
    return all(" " < c != "\x7f" for c in url)


def under_base(url: str, base: str) -> bool:
    """Same scheme, host and port as the base, and a path at or below the base path."""
    if not _printable(url):
        return False
    try:
        u, b = urlsplit(url), urlsplit(base)
        same = (u.scheme, u.hostname, u.port) == (b.scheme, b.hostname, b.port)
    except ValueError:
        return False
    path, root = _plain_path(u.path), _plain_path(b.path)
    if not same or u.username is not None or path is None or root is None:
        return False
    return path == root or path.startswith(root + "/")


_ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


async def _read_capped(response: httpx.Response, key: str, budget: _Budget) -> bytes:
    """The decoded body, streamed: never more than the call's byte budget, compressed or not
    (a 2 MB gzip bomb stops at the budget, not at 2.5 GB)."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "", *_ENCODINGS):
        raise _KeyFailed(key, f"the FHIR server used an unsupported content encoding {encoding!r}")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > budget.bytes_left:
        raise _KeyFailed(key, f"the response is larger than the {budget.bytes_left}-byte limit")
    decoder = zlib.decompressobj(_ENCODINGS[encoding]) if encoding in _ENCODINGS else None
    out = bytearray()
    raw = 0

    def take(data: bytes) -> None:
        out.extend(data)
        if len(out) > budget.bytes_left:
            raise _KeyFailed(key, f"the response is larger than the {budget.bytes_left}-byte limit")

    if response.is_stream_consumed:
        # A response built in memory (an in-process transport): its content is already there.
        take(response.content)
        budget.bytes_left -= len(out)
        return bytes(out)
    async for chunk in response.aiter_raw():
        raw += len(chunk)
        if raw > budget.bytes_left:
            raise _KeyFailed(key, f"the response is larger than the {budget.bytes_left}-byte limit")
        if decoder is None:
            take(chunk)
            continue
        try:
            data = chunk
            while data:
                take(decoder.decompress(data, budget.bytes_left - len(out) + 1))
                data = decoder.unconsumed_tail
        except zlib.error:
            raise _KeyFailed(key, "the FHIR server sent a body that does not decompress") from None
    budget.bytes_left -= len(out)
    return bytes(out)


async def _get_json(
    client: httpx.AsyncClient,
    gate: OutboundGate,
    url: str,
    headers: dict[str, str],
    key: str,
    limits: FetchLimits,
    budget: _Budget,
) -> tuple[int, Any]:
    remaining = budget.remaining()
    if remaining <= 0:
        raise _KeyFailed(key, f"fetching did not finish within {limits.deadline_s:g} s")
    limiter = gate.limiter(url)
    with anyio.move_on_after(remaining) as waited:
        await limiter.acquire()
    if waited.cancelled_caught:
        metrics.FHIR_REQUESTS.labels("busy").inc()
        raise _KeyFailed(key, "the FHIR server is busy with other calls; gave up at the deadline")
    outcome = "failed"  # the metric's label; each way out below names its own
    start = time.perf_counter()
    try:
        # The request's own timeout ends inside the call's deadline, so a hanging server is
        # timed out by httpx (which then frees the connection) rather than cancelled mid-way.
        timeout = max(0.05, min(limits.timeout_s, budget.remaining()))
        try:
            async with client.stream(
                "GET", url, headers=headers, timeout=httpx.Timeout(timeout)
            ) as response:
                if response.is_redirect:
                    outcome = "redirect"
                    raise _KeyFailed(
                        key,
                        f"the FHIR server redirected (HTTP {response.status_code}); not followed",
                    )
                if response.status_code >= 400:
                    outcome = f"http_{response.status_code // 100}xx"
                    return response.status_code, None
                outcome = "too_large"  # unless the whole body arrives within the budget
                body = await _read_capped(response, key, budget)
        finally:
            limiter.release()  # the connection is done with; parsing needs no slot
        outcome = "not_json"
        parsed = await jsonsafe.loads_off_loop(body)
        outcome = "ok"
        return response.status_code, parsed
    except httpx.TimeoutException:
        outcome = "timeout"
        raise _KeyFailed(key, "the FHIR server did not answer in time") from None
    except httpx.HTTPError as exc:
        outcome = "unreachable"
        raise _KeyFailed(
            key, f"the FHIR server could not be reached ({type(exc).__name__})"
        ) from None
    except jsonsafe.TooDeep:
        raise _KeyFailed(key, "the FHIR server returned JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise _KeyFailed(key, "the FHIR server returned a body that is not JSON") from None
    finally:
        metrics.FHIR_REQUESTS.labels(outcome).inc()
        metrics.FHIR_SECONDS.labels(outcome).observe(time.perf_counter() - start)


def _count(key: str, entries: object, budget: _Budget, limits: FetchLimits) -> list[Any]:
    """The entries of one page, counted against the call's resource limit (first page too)."""
    page = entries if isinstance(entries, list) else []
    if len(page) > limits.max_resources or len(page) > budget.resources_left:
        raise _KeyFailed(key, f"more than {limits.max_resources} resources")
    budget.resources_left -= len(page)
    return page


async def _fetch_key(
    client: httpx.AsyncClient,
    gate: OutboundGate,
    base: str,
    key: str,
    query: str,
    patient_id: str,
    headers: dict[str, str],
    limits: FetchLimits,
    budget: _Budget,
) -> Any:
    url = f"{base}/{query}"
    status, body = await _get_json(client, gate, url, headers, key, limits, budget)
    patient = f"patient={quote(patient_id, safe='')}"
    if status in (400, 422) and patient in query:
        # Servers differ on patient=<id> versus patient=Patient/<id>: try the other form.
        alt = query.replace(patient, f"patient=Patient/{quote(patient_id, safe='')}")
        status, body = await _get_json(client, gate, f"{base}/{alt}", headers, key, limits, budget)
    if status == 404 and "?" not in query:
        return None  # a read of a resource that does not exist: no data
    if status >= 400:
        reason = {401: "not authorised (401)", 403: "forbidden (403)", 404: "not found (404)"}
        raise _KeyFailed(key, "the FHIR server answered " + reason.get(status, f"HTTP {status}"))
    if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        raise _KeyFailed(key, "the FHIR server did not return a FHIR resource")
    if body["resourceType"] == "OperationOutcome":
        raise _KeyFailed(key, "the FHIR server returned an OperationOutcome")
    if body["resourceType"] != "Bundle":
        _count(key, [body], budget, limits)
        return body
    _count(key, _entries(key, body), budget, limits)
    return await _rest_of_pages(client, gate, base, key, body, headers, limits, budget)


async def _rest_of_pages(
    client: httpx.AsyncClient,
    gate: OutboundGate,
    base: str,
    key: str,
    first: dict[str, Any],
    headers: dict[str, str],
    limits: FetchLimits,
    budget: _Budget,
) -> dict[str, Any]:
    """A searchset whole: the pages its `next` links lead to, after the first (counted by the
    caller), taken into one Bundle without links."""
    entries = list(_entries(key, first))
    pages = 1
    next_url = next_link(first)
    while next_url is not None:
        if pages >= limits.max_pages:
            raise _KeyFailed(key, f"more than {limits.max_pages} pages of results")
        if not under_base(next_url, base):
            raise _KeyFailed(key, "a next link points outside the FHIR server's base; not followed")
        status, page = await _get_json(client, gate, next_url, headers, key, limits, budget)
        if status >= 400 or not isinstance(page, dict) or page.get("resourceType") != "Bundle":
            raise _KeyFailed(key, f"a result page could not be read (HTTP {status})")
        entries.extend(_count(key, _entries(key, page), budget, limits))
        pages += 1
        next_url = next_link(page)
    return {**first, "entry": entries, "link": []}


def _entries(key: str, page: Mapping[str, Any]) -> list[Any]:
    entries = page.get("entry", [])
    if not isinstance(entries, list):
        raise _KeyFailed(key, "a page of results has an entry that is not a list")
    if reports_an_error(entries):
        raise _KeyFailed(key, "the FHIR server's search reported an error (an OperationOutcome)")
    return entries


_FAILED = frozenset({"error", "fatal"})


def reports_an_error(entries: object) -> bool:
    """Whether a searchset's entries hold an OperationOutcome with an error or fatal issue.

    A server may answer 200 with what it could find and say in such an entry that the search
    failed in part (FHIR R4 search: an OperationOutcome with search.mode `outcome`; the mode is
    not relied on). Read as the whole chart, the part left out could hide a bone agent or a
    result: CDS Hooks 2.0.1 asks services to check prefetched data for OperationOutcomes.
    Warnings and information (an unknown parameter ignored) leave the results whole."""
    if type(entries) is not list:
        return False
    try:
        # Every sent search, every call: the types looked up by C-level calls (~50 ns an
        # entry), the entries read one by one only when an OperationOutcome is among them.
        resources: Iterator[Any] = map(dict.get, entries, repeat("resource"))
        types = map(dict.get, resources, repeat("resourceType"))
        if "OperationOutcome" not in types:
            return False
    except TypeError:
        pass  # an entry or its resource is not an object: read one by one
    return any(_failed_search(e) for e in entries)


def _failed_search(entry: object) -> bool:
    return (
        type(entry) is dict
        and type(r := entry.get("resource")) is dict
        and r.get("resourceType") == "OperationOutcome"
        and type(issues := r.get("issue")) is list
        and any(type(i) is dict and i.get("severity") in _FAILED for i in issues)
    )


def next_link(bundle: Mapping[str, Any]) -> str | None:
    for link in bundle.get("link") or ():
        if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None


def server_allowed(server: str, allowlist: Sequence[str]) -> bool:
    """SSRF guard: scheme, host, port and path prefix must match an entry, compared parsed.

    Never a string prefix: userinfo tricks such as http://localhost:@evil.example/ do not pass
    (URLs with userinfo are refused outright), nor dot segments (/fhir/../admin), encoded or
    not. An entry without a port allows any port of that host (the loopback default).
    """
    if not _printable(server):
        return False
    try:
        s = urlsplit(server)
        port = s.port
    except ValueError:
        return False
    path = _plain_path(s.path)
    if s.username is not None or s.password is not None or not s.hostname or path is None:
        return False
    if s.query or s.fragment:
        return False
    for entry in allowlist:
        a = urlsplit(entry)
        if s.scheme != a.scheme or s.hostname != a.hostname:
            continue
        if a.port is not None and port != a.port:
            continue
        root = a.path.rstrip("/")
        if path == root or path.startswith(root + "/"):
            return True
    return False


async def fetch_all(
    server: str,
    request: schemas.HookRequest,
    context: Mapping[str, Any],
    client: httpx.AsyncClient,
    gate: OutboundGate,
    limits: FetchLimits,
    to_fetch: Mapping[str, str | dict[str, Any]],
    data: dict[str, Any],
) -> list[Issue]:
    """Each key's query fetched, or (a Bundle) the pages after the first page a client sent;
    into `data`. What could not be had, an Issue each."""
    headers = {"Accept": "application/fhir+json", "Accept-Encoding": "gzip, deflate"}
    if request.fhirAuthorization is not None:
        headers["Authorization"] = f"Bearer {request.fhirAuthorization.access_token}"
    patient_id = str(context.get("patientId") or "")
    failures: dict[str, str] = {}
    budget = _Budget(
        deadline=anyio.current_time() + limits.deadline_s,
        bytes_left=limits.max_bytes,
        resources_left=limits.max_resources,
    )

    async def one(key: str, query: str | dict[str, Any]) -> None:
        try:
            if isinstance(query, str):
                data[key] = await _fetch_key(
                    client, gate, server, key, query, patient_id, headers, limits, budget
                )
            else:
                data[key] = await _rest_of_pages(
                    client, gate, server, key, query, headers, limits, budget
                )
        except _KeyFailed as exc:
            failures[key] = exc.reason

    # The backstop: whatever the requests do, the call's fetching ends at its deadline.
    with anyio.move_on_after(limits.deadline_s) as scope:
        async with anyio.create_task_group() as tg:
            for key, query in to_fetch.items():
                tg.start_soon(one, key, query)
    if scope.cancelled_caught:
        for key in to_fetch:
            if key not in data and key not in failures:
                failures[key] = f"fetching did not finish within {limits.deadline_s:g} s"
    for key, reason in failures.items():
        log.warning("prefetch key %s not fetched: %s", key, reason)
    return [
        Issue("incomplete", f"prefetch {k} could not be fetched: {r}", f"prefetch.{k}")
        for k, r in sorted(failures.items())
    ]
