"""HTTP routes: discovery, service calls, feedback and health. Thin: the work is elsewhere."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Any, cast

import anyio
import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

from cds import jsonsafe, metrics, schemas
from cds.auth import ClientIdentity, JWTVerifier, request_url
from cds.errors import (
    FeedbackRefused,
    Issue,
    PayloadTooLarge,
    RequestInvalid,
    UnknownService,
    UnsupportedMediaType,
)
from cds.evaluation import Outcome, Timings, evaluate_call
from cds.facts.fhir_json import json_list
from cds.prefetch import FetchLimits, OutboundGate, resolve
from cds.services import Knowledge, Service
from cds.settings import Settings
from cds.snooze import patient_key
from cds.store import Snooze, Store, caller

log = logging.getLogger("cds.calls")
router = APIRouter()
AS_OF_EXTENSION = "cds-mbc-bone.as-of"


# Lifespan state (cds.app.State) is untyped on the request; these accessors give it its types.
# Routes call them directly rather than as dependencies: FastAPI resolves each dependency on
# every call, and runs a plain `def` one in the thread pool (where /health would queue behind
# the evaluations).
def _settings(request: Request) -> Settings:
    return cast(Settings, request.state.settings)


def _knowledge(request: Request) -> Knowledge:
    return cast(Knowledge, request.state.knowledge)


def _http(request: Request) -> httpx.AsyncClient:
    return cast(httpx.AsyncClient, request.state.http)


def _gate(request: Request) -> OutboundGate:
    return cast(OutboundGate, request.state.gate)


def _store(request: Request) -> Store:
    return cast(Store, request.state.store)


async def today() -> date:
    """The evaluation date: the server's local calendar date (overridden in tests)."""
    return datetime.now(UTC).astimezone().date()


async def require_client(request: Request) -> ClientIdentity | None:
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


ClientDep = Annotated[ClientIdentity | None, Depends(require_client)]
TodayDep = Annotated[date, Depends(today)]


def _paths(exc: ValidationError, prefix: str = "") -> tuple[Issue, ...]:
    out = []
    for e in exc.errors()[:20]:
        where = ".".join(str(p) for p in e["loc"])
        where = f"{prefix}.{where}" if prefix and where else (prefix or where or "(body)")
        out.append(Issue("invalid", f"{where}: {e['msg']}", where))
    return tuple(out)


async def _json_body(request: Request, settings: Settings, *, stored: bool = False) -> Any:
    """The body parsed within its bounds. `stored`: its text is kept (feedback), so a NUL
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
    try:
        return await jsonsafe.loads_off_loop(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestInvalid(f"the body is not valid JSON: {exc}") from None


def _parse(model: type[BaseModel], data: Any, prefix: str = "") -> Any:
    if not isinstance(data, dict):
        raise RequestInvalid(f"{prefix or 'the body'} must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestInvalid("invalid request", issues=_paths(exc, prefix)) from None


def _service(k: Knowledge, service_id: str) -> Service:
    service = k.services.get(service_id)
    if service is None:
        raise UnknownService(f"no CDS Service with id {service_id!r}; see GET /cds-services")
    return service


@router.get("/cds-services", response_model=None)
async def discovery(request: Request, client: ClientDep) -> JSONResponse:
    k = _knowledge(request)
    body = schemas.Discovery(services=[_describe(k, s) for s in k.services.values()])
    return JSONResponse(body.wire())


def _describe(k: Knowledge, service: Service) -> schemas.ServiceDescription:
    """A service with the version and review date of each rule it runs (cds.review)."""
    rules = []
    for rule_id, rule in k.rules.items():
        if service.hook in rule.hooks:
            review = k.reviews[rule_id]
            rules.append(
                {
                    "rule": rule_id,
                    "version": review.version,
                    "reviewed": review.review_date.isoformat() if review.review_date else None,
                }
            )
    described = service.describe()
    described.extension = {EXT_RULES: rules}
    return described


EXT_RULES = "org.cds-mbc-bone.rules"


@router.post("/cds-services/{service_id}", response_model=None)
async def call_service(
    service_id: str, request: Request, client: ClientDep, as_of: TodayDep
) -> Response:
    k, settings = _knowledge(request), _settings(request)
    http, gate, store = _http(request), _gate(request), _store(request)
    timings = Timings()
    service = _service(k, service_id)
    body = await _json_body(request, settings)
    hook_request: schemas.HookRequest = _parse(schemas.HookRequest, body)
    if hook_request.hook != service.hook:
        raise RequestInvalid(
            f"service {service.id} answers the {service.hook} hook, not {hook_request.hook}",
            issues=(Issue("invalid", f"hook must be {service.hook}", "hook"),),
        )
    context_model = schemas.CONTEXT_MODELS[service.hook]
    _parse(context_model, hook_request.context, "context")
    context = hook_request.context
    ext = hook_request.extension or {}
    if settings.allow_as_of_extension and isinstance(ext.get(AS_OF_EXTENSION), str):
        try:
            as_of = date.fromisoformat(ext[AS_OF_EXTENSION])
        except ValueError:
            raise RequestInvalid(
                f"extension {AS_OF_EXTENSION} must be a date (YYYY-MM-DD)",
                issues=(Issue("invalid", "not a date", f"extension.{AS_OF_EXTENSION}"),),
            ) from None
    sent = 0
    for key, value in (hook_request.prefetch or {}).items():
        if value is None:
            continue  # "no data" (spec)
        if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
            # Counted in every shape: a plain list would slip past the resource limit.
            raise RequestInvalid(
                f"prefetch {key} must be a FHIR resource or Bundle, or null",
                issues=(Issue("invalid", "not a FHIR resource or Bundle", f"prefetch.{key}"),),
            )
        sent += len(json_list(value.get("entry"))) if value["resourceType"] == "Bundle" else 1
    drafts = context.get("draftOrders") if isinstance(context, dict) else None
    if isinstance(drafts, dict):
        # Draft orders are read and checked like prefetch: they count (issue 28).
        sent += len(json_list(drafts.get("entry"))) if drafts.get("resourceType") == "Bundle" else 1
    if sent > settings.max_resources:
        raise PayloadTooLarge(
            f"the prefetch holds {sent} resources; this service accepts at most "
            f"{settings.max_resources} (CDS_MAX_RESOURCES)"
        )
    timings.mark("parse")
    allowlist = settings.fetch_allowlist(client.fhir_servers if client else ())
    resolved = await resolve(
        service.prefetch,
        hook_request,
        context,
        http,
        FetchLimits(
            timeout_s=settings.fhir_timeout_s,
            deadline_s=settings.fetch_deadline_s,
            max_pages=settings.max_pages,
            max_resources=settings.max_resources,
            max_bytes=settings.max_fetch_bytes,
        ),
        allowlist,
        gate,
    )
    timings.mark("prefetch")
    key = patient_key(
        settings.patient_key_secret.get_secret_value(),
        str(context["patientId"]),
        iss=client.iss if client else "",
        tenant=(client.tenant or "") if client else "",
        fhir_server=hook_request.fhirServer or "",
    )
    # Facts, rules and cards are CPU work: in a worker thread (one evaluation at a time per
    # process), so the event loop keeps serving /health, other calls' FHIR fetches and I/O. The
    # SQLite store's snoozes and issued-card record go in the same hop (microseconds); a
    # PostgreSQL store is waited for outside the evaluation slot.
    local = store if settings.snooze_days and store.local else None
    remote = store if settings.snooze_days and local is None else None
    snoozes = await anyio.to_thread.run_sync(remote.snoozes, key) if remote else {}
    result = await anyio.to_thread.run_sync(
        functools.partial(
            _evaluate,
            k,
            local,
            service,
            hook_request,
            context,
            resolved.data,
            as_of=as_of,
            timings=timings,
            patient_key=key,
            caller=caller(client.iss, client.tenant) if client else caller(None, None),
            snoozes=snoozes,
        ),
        limiter=request.state.evaluations,
    )
    if remote is not None and result.issued:
        await anyio.to_thread.run_sync(remote.record_issued, result.issued)
        timings.mark("store")
    response = Response(result.response.wire_json(), media_type="application/json")
    timings.mark("serialize")
    metrics.observe_call(timings.stages, ((c.rule, c.indicator) for c in result.issued))
    log.info(
        "call",
        extra={
            "event": "call",
            "service": service.id,
            "hook": service.hook,
            "hookInstance": hook_request.hookInstance,
            "cards": len(result.response.cards),
            "rules": list(result.rules),
            "fetched": len(resolved.fetched),
            "excluded": result.excluded,
            "unchecked_orders": result.unchecked_orders,
            "snoozed": result.snoozed,
            "ms": timings.stages,
            "total_ms": round(sum(timings.stages.values()), 2),
        },
    )
    return response


def _evaluate(
    k: Knowledge,
    store: Store | None,
    service: Service,
    request: schemas.HookRequest,
    context: Mapping[str, Any],
    data: Mapping[str, Any],
    *,
    as_of: date,
    timings: Timings,
    patient_key: str,
    caller: str,
    snoozes: Mapping[str, Snooze],
) -> Outcome:
    """One call's work off the event loop; `store` (a local one) reads this patient's snoozes
    and records the cards issued, else `snoozes` are given."""
    if store is not None:
        snoozes = store.snoozes(patient_key)
    result = evaluate_call(
        k,
        service,
        request,
        context,
        data,
        as_of=as_of,
        timings=timings,
        snoozes=snoozes,
        patient_key=patient_key,
        caller=caller,
        now=time.time(),
    )
    if store is not None and result.issued:
        store.record_issued(result.issued)
        timings.mark("store")
    return result


@router.post("/cds-services/{service_id}/feedback", response_model=None)
async def feedback(service_id: str, request: Request, client: ClientDep) -> JSONResponse:
    k, settings, store = _knowledge(request), _settings(request), _store(request)
    _service(k, service_id)
    body = await _json_body(request, settings, stored=True)
    parsed: schemas.FeedbackRequest = _parse(schemas.FeedbackRequest, body)
    start = time.perf_counter()
    # SQLite commits (and fsyncs) off the event loop; the 200 goes out only after the commit.
    who = caller(client.iss, client.tenant) if client else caller(None, None)
    try:
        new = await anyio.to_thread.run_sync(
            functools.partial(store.add, service_id, parsed.feedback, caller=who)
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
