"""HTTP routes: discovery, service calls, feedback and health. Thin: the work is elsewhere."""

from __future__ import annotations

import functools
import logging
import time
from typing import Any, cast

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from cds import jsonsafe, metrics, schemas
from cds.auth import ClientIdentity, JWTVerifier, request_url
from cds.call import CallEnv, Timings, answer, caller_of
from cds.errors import (
    FeedbackRefused,
    PayloadTooLarge,
    RequestInvalid,
    UnknownService,
    UnsupportedMediaType,
)
from cds.services import Knowledge, Service
from cds.settings import Settings
from cds.store import Store

log = logging.getLogger("cds.calls")
router = APIRouter()


# Lifespan state (cds.app.State) is untyped on the request; these accessors give it its types.
# Routes call them (and require_client) directly rather than as dependencies: FastAPI resolves
# each dependency on every call (two cost about 7% of the request path in process), and runs a
# plain `def` one in the thread pool (where /health would queue behind the evaluations).
def _settings(request: Request) -> Settings:
    return cast(Settings, request.state.settings)


def _knowledge(request: Request) -> Knowledge:
    return cast(Knowledge, request.state.knowledge)


def _env(request: Request) -> CallEnv:
    return cast(CallEnv, request.state.env)


def _store(request: Request) -> Store:
    return cast(Store, request.state.store)


async def require_client(request: Request) -> ClientIdentity | None:
    """The caller's verified identity, when the deployment requires signed calls (a 401
    otherwise); each route asks first thing, before it reads a byte of the body."""
    settings: Settings = request.state.settings
    if not settings.auth_required:
        return None
    verifier: JWTVerifier = request.state.verifier
    url = request_url(
        request.url.scheme,
        request.headers.get("host", request.url.netloc),
        request.url.path,
        request.headers,
        settings,
    )
    return await verifier.verify(request.headers.get("authorization"), url)


async def _body(request: Request, settings: Settings, *, stored: bool = False) -> bytes:
    """The body's bytes within their bounds. `stored`: its text is kept (feedback), so a NUL
    character - which FHIR and CDS Hooks text may not hold - is refused up front."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("application/json", "application/fhir+json") and not ctype.endswith("+json"):
        raise UnsupportedMediaType(f"Content-Type must be application/json, not {ctype or 'none'}")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.max_body_bytes:
        raise PayloadTooLarge(f"the body is larger than {settings.max_body_bytes} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > settings.max_body_bytes:
            raise PayloadTooLarge(f"the body is larger than {settings.max_body_bytes} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if stored and b"\\u0000" in body:
        # In JSON a NUL can only come escaped; PostgreSQL refused the feedback text it was in,
        # and the call answered 500. (In a hook call it may sit in a resource no rule reads,
        # which costs nothing; the ids a call uses are FHIR ids, which cannot hold it.)
        raise RequestInvalid("the body contains a NUL character (\\u0000), which text may not hold")
    return body


async def _json_body(request: Request, settings: Settings, *, stored: bool = False) -> Any:
    """The body parsed within its bounds (off the loop when large)."""
    body = await _body(request, settings, stored=stored)
    try:
        return await jsonsafe.loads_off_loop(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestInvalid(f"the body is not valid JSON: {exc}") from None


def _service(k: Knowledge, service_id: str) -> Service:
    service = k.services.get(service_id)
    if service is None:
        raise UnknownService(f"no CDS Service with id {service_id!r}; see GET /cds-services")
    return service


@router.get("/cds-services", response_model=None)
async def discovery(request: Request) -> JSONResponse:
    await require_client(request)
    return JSONResponse(_knowledge(request).discovery)


@router.post("/cds-services/{service_id}", response_model=None)
async def call_service(service_id: str, request: Request) -> Response:
    env = _env(request)
    client = await require_client(request)
    as_of = env.today()
    timings = Timings()  # from the first byte: reading the body counts to the first stage
    service = _service(env.knowledge, service_id)
    raw = await _body(request, env.settings)
    return Response(
        await answer(env, service, raw, client, as_of, timings),
        media_type="application/json",
    )


@router.post("/cds-services/{service_id}/feedback", response_model=None)
async def feedback(service_id: str, request: Request) -> JSONResponse:
    client = await require_client(request)
    k, settings, store = _knowledge(request), _settings(request), _store(request)
    _service(k, service_id)
    body = await _json_body(request, settings, stored=True)
    parsed: schemas.FeedbackRequest = schemas.parse(schemas.FeedbackRequest, body)
    start = time.perf_counter()
    # SQLite commits (and fsyncs) off the event loop; the 200 goes out only after the commit.
    try:
        new = await anyio.to_thread.run_sync(
            functools.partial(store.add, service_id, parsed.feedback, caller=caller_of(client))
        )
    except FeedbackRefused:
        metrics.FEEDBACK.labels("refused").inc(len(parsed.feedback))
        raise
    for item in parsed.feedback:
        metrics.FEEDBACK.labels(item.outcome).inc()
    log.info(
        "feedback",
        extra={
            "event": "feedback",
            "service": service_id,
            "items": len(parsed.feedback),
            "new": new,
            "ms": round((time.perf_counter() - start) * 1000, 2),
        },
    )
    return JSONResponse({"received": len(parsed.feedback), "stored": new})


@router.get("/health", response_model=None)
async def health(request: Request) -> JSONResponse:
    k = _knowledge(request)
    return JSONResponse({"status": "ok", "services": len(k.services), "rules": len(k.rules)})
