"""One CDS Hooks call, from the bytes of its body to the bytes of its answer.

parse and check the request (hook, context, limits, the evaluation date) → resolve the prefetch
(fetching what is missing) → read → facts → rules → snoozes → cards (with a local store, the
snooze lookup and the issued-card record) → the store → the log line and metrics. The routes
(cds.api) only read the body and hand it here; `evaluate_call` is the pure middle part,
synchronous, which the benchmarks and tests also drive directly.

Where the work runs: a typical call (its prefetch all sent, a chart of at most
CDS_EVALUATE_ON_LOOP_MAX_RESOURCES, 300: ~1-2 ms of evaluation, a local store) runs on the
event loop from parse to answer in one turn, one call's turn at a time (CallEnv.turn), so
/health and other calls' I/O go between two calls, never wait behind fifty; handing it to a
worker thread cost more than the whole request path (context switches, the parsed body gone
cold while calls queued for the one evaluation slot). A call that fetches from the EHR's FHIR
server, a large chart or a body over 256 KB is evaluated in the worker thread (one at a time
per process), as its evaluation would hold the loop for longer than a few milliseconds.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import anyio
import httpx
import orjson

from cds import jsonsafe, metrics, schemas, snooze
from cds.auth import ClientIdentity
from cds.cards import RenderContext
from cds.errors import Issue, PayloadTooLarge, RequestInvalid
from cds.facts import facts_from_records
from cds.facts.orders import NO_DRAFTS, DraftOrders, read_draft_orders
from cds.fhir.elements import FIRST_DATE, LAST_DATE, json_list
from cds.fhir.reading import read_records
from cds.fhir_fetch import FetchLimits, OutboundGate
from cds.prefetch import Resolved, WouldFetch, is_operation_outcome, resolve
from cds.rules import evaluate
from cds.services import Knowledge, Service
from cds.settings import Settings
from cds.snooze import patient_key
from cds.store import IssuedCard, Snooze, Store, caller
from cds.terminology import Terminology

log = logging.getLogger("cds.calls")
AS_OF_EXTENSION = "cds-mbc-bone.as-of"


@dataclass(frozen=True, slots=True)
class CallEnv:
    """What every call runs with, built once at start-up (cds.app's lifespan)."""

    knowledge: Knowledge
    settings: Settings
    http: httpx.AsyncClient
    gate: OutboundGate
    store: Store
    evaluations: anyio.CapacityLimiter  # one evaluation at a time per process
    # The evaluation date: the server's local calendar date (tests give a fixed one).
    today: Callable[[], date] = date.today
    # One call's turn on the event loop at a time: calls waiting for it are suspended, so a
    # loop iteration runs at most one call's parse-to-answer and /health goes between two.
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(slots=True)
class Timings:
    stages: dict[str, float] = field(default_factory=dict)
    _t: float = field(default_factory=time.perf_counter)

    def mark(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages[stage] = round((now - self._t) * 1000, 2)
        self._t = now


@dataclass(frozen=True, slots=True)
class Outcome:
    cards: list[dict[str, Any]]  # as wire JSON (cds.cards.Renderer)
    rules: tuple[str, ...]
    excluded: int
    unchecked_orders: int = 0  # draft orders that could not be read (each named in an R0 card)
    issued: tuple[IssuedCard, ...] = ()  # what each card was about, for snoozing
    snoozed: int = 0  # cards left out because their rule is snoozed for this patient


def evaluate_call(
    k: Knowledge,
    service: Service,
    request: schemas.HookRequest,
    context: Mapping[str, Any],
    data: Mapping[str, Any],
    *,
    as_of: date,
    timings: Timings | None = None,
    snoozes: Mapping[str, Snooze] | None = None,
    patient_key: str = "",
    caller: str = "|",
    now: float = 0.0,
) -> Outcome:
    """Facts → rules → (snoozes) → cards for one call; `data` is the resolved prefetch
    (key → JSON | None); `snoozes` are this patient's, keyed by concern."""
    timings = timings or Timings()
    t = k.terminology
    patient_id = str(context["patientId"])
    records = read_records(data.values(), t, k.checker, patient_id=patient_id)
    facts = facts_from_records(records, t, k.parameters, as_of=as_of)
    drafts = _drafts(service.hook, context, t, data, patient_id)
    timings.mark("facts")
    decisions = evaluate(service.hook, facts, drafts, k.parameters)
    shown = snooze.apply(decisions, snoozes or {}, now, k.renderer.text)
    timings.mark("rules")
    ctx = RenderContext(
        hook_instance=request.hookInstance,
        patient_id=patient_id,
        patient_key=patient_key,
        encounter_id=context.get("encounterId"),
        facts=facts,
        drafts=drafts,
    )
    cards = [k.renderer.render(d, ctx) for d, _ in shown]
    timings.mark("cards")
    return Outcome(
        cards=cards,
        rules=tuple(d.concern for d, _ in shown),
        excluded=len(facts.excluded),
        unchecked_orders=len(drafts.unreadable),
        issued=tuple(
            IssuedCard(
                card=c["uuid"],
                rule=d.rule,
                patient_key=patient_key,
                evidence=digest,
                service_id=service.id,
                caller=caller,
                suggestions=tuple(s["uuid"] for s in c.get("suggestions", ())),
                variant=d.variant,
                indicator=d.indicator,
                concern=d.concern,
            )
            for c, (d, digest) in zip(cards, shown, strict=True)
        ),
        snoozed=len(decisions) - len(shown),
    )


def _drafts(
    hook: str, context: Mapping[str, Any], t: Terminology, data: Mapping[str, Any], patient_id: str
) -> DraftOrders:
    """An order hook's draft orders, read for the patient in context; none for patient-view."""
    if hook not in ("order-select", "order-sign"):
        return NO_DRAFTS
    return read_draft_orders(context["draftOrders"], context.get("selections"), t, data, patient_id)


def caller_of(client: ClientIdentity | None) -> str:
    """Who called, as the store keeps it with each card (JWT issuer and tenant)."""
    return caller(client.iss, client.tenant) if client else caller(None, None)


async def answer(
    env: CallEnv,
    service: Service,
    raw: bytes,
    client: ClientIdentity | None,
    as_of: date,
    timings: Timings,
) -> bytes:
    """The answer to one call (its body's bytes), as JSON bytes; a CDSError (4xx/5xx) when it
    cannot be given."""
    settings = env.settings
    if len(raw) < jsonsafe.PARSE_ON_LOOP_BYTES:
        async with env.turn:
            # Step aside once holding the turn: the calls that are ready meanwhile find it
            # taken and wait suspended, so the next loop iteration runs this call alone
            # (with /health and I/O), and each later one runs one more.
            await asyncio.sleep(0)
            body = parse_body(raw)
            hook_request, as_of, sent = checked_request(service, body, settings, as_of)
            timings.mark("parse")
            done = None
            if _inline(env, service, hook_request, sent):
                done = await _in_this_turn(env, service, hook_request, client, as_of, timings)
        if done is not None:
            resolved, result, recorded = done
            if not recorded:  # the store was busy: its cards are recorded off the loop
                await anyio.to_thread.run_sync(env.store.record_issued, result.issued)
                timings.mark("store")
            return _respond(service, hook_request, result, resolved, timings)
    else:
        try:
            body = await jsonsafe.loads_off_loop(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestInvalid(f"the body is not valid JSON: {exc}") from None
        hook_request, as_of, _ = checked_request(service, body, settings, as_of)
        timings.mark("parse")
    resolved = await _resolve(env, service, hook_request, client)
    timings.mark("prefetch")
    key = _patient_key(env, hook_request, client)
    result = await _evaluate_and_store(
        env, service, hook_request, resolved.data, as_of, timings, key, caller_of(client)
    )
    return _respond(service, hook_request, result, resolved, timings)


async def _in_this_turn(
    env: CallEnv,
    service: Service,
    hook_request: schemas.HookRequest,
    client: ClientIdentity | None,
    as_of: date,
    timings: Timings,
) -> tuple[Resolved, Outcome, bool] | None:
    """The call evaluated on the event loop: (the prefetch, the outcome, whether its cards were
    recorded); None, having done nothing, when the store would make the loop wait for this
    patient's snoozes (the worker thread then does it all)."""
    key = _patient_key(env, hook_request, client)
    store = env.store if env.settings.snooze_days else None
    snoozes = store.snoozes_now(key) if store is not None else {}
    if snoozes is None:
        return None
    # Every key was sent: resolving fetches nothing, so no await suspends and the whole call
    # is this one turn - unless a key is a first page or a record names a Medication not sent,
    # which the worker thread then fetches, the turn given back.
    try:
        resolved = await _resolve(env, service, hook_request, client, offline=True)
    except WouldFetch:
        return None
    timings.mark("prefetch")
    result = evaluate_call(
        env.knowledge,
        service,
        hook_request,
        hook_request.context,
        resolved.data,
        as_of=as_of,
        timings=timings,
        snoozes=snoozes,
        patient_key=key,
        caller=caller_of(client),
        now=time.time(),
    )
    recorded = store is None or store.record_issued_now(result.issued)
    if recorded and store is not None and result.issued:
        timings.mark("store")
    return resolved, result, recorded


def parse_body(raw: bytes) -> Any:
    """A request body as JSON within the depth limit; RequestInvalid when it is not JSON."""
    try:
        return jsonsafe.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestInvalid(f"the body is not valid JSON: {exc}") from None


def _inline(env: CallEnv, service: Service, hook_request: schemas.HookRequest, sent: int) -> bool:
    """Whether the call is evaluated on the event loop in one turn: nothing to fetch, a chart
    of at most CDS_EVALUATE_ON_LOOP_MAX_RESOURCES (`sent`; 0: never), and a store on this
    machine (or no snoozing)."""
    prefetch = hook_request.prefetch or {}
    if any(k not in prefetch or is_operation_outcome(prefetch[k]) for k in service.prefetch):
        return False
    if env.settings.snooze_days and not env.store.local:
        return False  # a remote store is waited for off the loop
    limit = env.settings.evaluate_on_loop_max_resources
    return limit > 0 and sent <= limit


async def _resolve(
    env: CallEnv,
    service: Service,
    hook_request: schemas.HookRequest,
    client: ClientIdentity | None,
    *,
    offline: bool = False,
) -> Resolved:
    settings = env.settings
    return await resolve(
        service.prefetch,
        hook_request,
        hook_request.context,
        env.http,
        FetchLimits(
            timeout_s=settings.fhir_timeout_s,
            deadline_s=settings.fetch_deadline_s,
            max_pages=settings.max_pages,
            max_resources=settings.max_resources,
            max_bytes=settings.max_fetch_bytes,
        ),
        settings.fetch_allowlist(client.fhir_servers if client else ()),
        env.gate,
        offline=offline,
    )


def _patient_key(
    env: CallEnv, hook_request: schemas.HookRequest, client: ClientIdentity | None
) -> str:
    return patient_key(
        env.settings.patient_key_secret.get_secret_value(),
        str(hook_request.context["patientId"]),
        iss=client.iss if client else "",
        tenant=(client.tenant or "") if client else "",
        fhir_server=hook_request.fhirServer or "",
    )


def _respond(
    service: Service,
    hook_request: schemas.HookRequest,
    result: Outcome,
    resolved: Resolved,
    timings: Timings,
) -> bytes:
    wire = orjson.dumps({"cards": result.cards})
    timings.mark("serialize")
    metrics.observe_call(timings.stages, ((c.rule, c.indicator) for c in result.issued))
    _log_call(service, hook_request, result, len(resolved.fetched), timings)
    return wire


def checked_request(
    service: Service, body: Any, settings: Settings, as_of: date
) -> tuple[schemas.HookRequest, date, int]:
    """The body as a request for this service, the evaluation date (the as-of extension where
    development allows it) and the resources it holds, within the limit; RequestInvalid or
    PayloadTooLarge naming what is wrong."""
    hook_request: schemas.HookRequest = schemas.parse(schemas.HookRequest, body)
    if hook_request.hook != service.hook:
        raise RequestInvalid(
            f"service {service.id} answers the {service.hook} hook, not {hook_request.hook}",
            issues=(Issue("invalid", f"hook must be {service.hook}", "hook"),),
        )
    schemas.parse(schemas.CONTEXT_MODELS[service.hook], hook_request.context, "context")
    ext = hook_request.extension or {}
    if settings.allow_as_of_extension and isinstance(ext.get(AS_OF_EXTENSION), str):
        try:
            as_of = date.fromisoformat(ext[AS_OF_EXTENSION])
        except ValueError:
            raise RequestInvalid(
                f"extension {AS_OF_EXTENSION} must be a date (YYYY-MM-DD)",
                issues=(Issue("invalid", "not a date", f"extension.{AS_OF_EXTENSION}"),),
            ) from None
        if not FIRST_DATE <= as_of <= LAST_DATE:  # the rules count days back and ahead of it
            raise RequestInvalid(
                f"extension {AS_OF_EXTENSION} must be a date between {FIRST_DATE} and {LAST_DATE}",
                issues=(Issue("invalid", "out of range", f"extension.{AS_OF_EXTENSION}"),),
            )
    sent = resources_sent(hook_request)
    if sent > settings.max_resources:
        raise PayloadTooLarge(
            f"the prefetch holds {sent} resources; this service accepts at most "
            f"{settings.max_resources} (CDS_MAX_RESOURCES)"
        )
    return hook_request, as_of, sent


def resources_sent(hook_request: schemas.HookRequest) -> int:
    """Resources the client sent, prefetch and draft orders alike (both are read and checked:
    issue 28); a prefetch value that is neither a resource, a Bundle nor null is refused."""
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
    context = hook_request.context
    drafts = context.get("draftOrders") if isinstance(context, dict) else None
    if isinstance(drafts, dict):
        sent += len(json_list(drafts.get("entry"))) if drafts.get("resourceType") == "Bundle" else 1
    return sent


async def _evaluate_and_store(
    env: CallEnv,
    service: Service,
    hook_request: schemas.HookRequest,
    data: Mapping[str, Any],
    as_of: date,
    timings: Timings,
    key: str,
    who: str,
) -> Outcome:
    """Facts, rules and cards are CPU work: in a worker thread (one evaluation at a time per
    process), so the event loop keeps serving /health, other calls' FHIR fetches and I/O. A
    local store's snoozes and issued-card record go in the same hop (microseconds); a remote
    one is waited for outside the evaluation slot."""
    store, snoozing = env.store, bool(env.settings.snooze_days)
    local = store if snoozing and store.local else None
    remote = store if snoozing and local is None else None
    snoozes = await anyio.to_thread.run_sync(remote.snoozes, key) if remote else {}
    result: Outcome = await anyio.to_thread.run_sync(
        functools.partial(
            _evaluate,
            env.knowledge,
            local,
            service,
            hook_request,
            hook_request.context,
            data,
            as_of=as_of,
            timings=timings,
            patient_key=key,
            caller=who,
            snoozes=snoozes,
        ),
        limiter=env.evaluations,
    )
    if remote is not None and result.issued:
        await anyio.to_thread.run_sync(remote.record_issued, result.issued)
        timings.mark("store")
    return result


def _log_call(
    service: Service,
    hook_request: schemas.HookRequest,
    result: Outcome,
    fetched: int,
    timings: Timings,
) -> None:
    """The call's one log line: ids, counts and stage times, never patient data."""
    log.info(
        "call",
        extra={
            "event": "call",
            "service": service.id,
            "hook": service.hook,
            "hookInstance": hook_request.hookInstance,
            "cards": len(result.cards),
            "rules": list(result.rules),
            "fetched": fetched,
            "excluded": result.excluded,
            "unchecked_orders": result.unchecked_orders,
            "snoozed": result.snoozed,
            "ms": timings.stages,
            "total_ms": round(sum(timings.stages.values()), 2),
        },
    )


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
