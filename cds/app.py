"""The FastAPI application factory: lifespan-owned resources and error handling."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import date
from typing import Any, TypedDict

import anyio
import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cds import __version__, schemas
from cds.api import router
from cds.auth import JWTVerifier
from cds.body_budget import BodyBudgetMiddleware
from cds.call import CallEnv
from cds.errors import Busy, CDSError, ConfigError, Issue, StoreUnavailable
from cds.fhir.conformance import warm_up
from cds.fhir_fetch import OutboundGate
from cds.logs import silence_url_loggers
from cds.metrics import STORE_ERRORS, CallMetrics
from cds.openapi import install as install_openapi
from cds.services import Knowledge, load_knowledge
from cds.settings import Settings
from cds.store import Store, open_configured

log = logging.getLogger(__name__)


# Evaluations at once in worker threads of one process (large or fetched charts; typical ones
# run on the event loop, one call a turn: cds.call): the work holds the GIL, so a second would only
# take turns with the first and with the event loop (measured: /health p99 under saturation
# 7 ms with one, 11 ms with two, 30 ms with four).
EVALUATION_THREADS = 1


class State(TypedDict):
    settings: Settings
    knowledge: Knowledge
    store: Store
    verifier: JWTVerifier
    env: CallEnv  # what each call runs with (cds.call)


def outcome(status: int, issues: tuple[Issue, ...]) -> JSONResponse:
    body = schemas.OperationOutcome(
        issue=[
            schemas.Issue(
                severity=i.severity,
                code=i.code,
                diagnostics=i.diagnostics,
                expression=[i.expression] if i.expression else None,
            )
            for i in issues
        ]
    )
    return JSONResponse(body.wire(), status_code=status, media_type="application/fhir+json")


def _lifespan(
    settings: Settings,
    knowledge: Knowledge,
    http_client: httpx.AsyncClient | None,
    store: Store | None,
    verifier_clock: Any,
    today: Callable[[], date],
) -> Callable[[FastAPI], AbstractAsyncContextManager[State]]:
    """What the app holds while it serves: the outbound HTTP client, the store, the JWT
    verifier and what every call runs with; those it created it closes."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        if knowledge.checker.mode == "full":
            warm_up()
        silence_url_loggers()
        own_client = http_client is None
        client = http_client or httpx.AsyncClient(
            follow_redirects=False,  # SSRF: never follow a FHIR server's redirect elsewhere
            timeout=settings.fhir_timeout_s,
            # Room for every host's share (OutboundGate bounds each host), keep-alive modest.
            limits=httpx.Limits(
                max_connections=max(100, 4 * settings.fhir_connections_per_host),
                max_keepalive_connections=20,
                keepalive_expiry=5.0,
            ),
        )
        own_store = store is None
        shared = store or open_configured(settings)
        kwargs: dict[str, Any] = {"clock": verifier_clock} if verifier_clock is not None else {}
        gate = OutboundGate(settings.fhir_connections_per_host)
        evaluations = anyio.CapacityLimiter(EVALUATION_THREADS)
        try:
            yield {
                "settings": settings,
                "knowledge": knowledge,
                "store": shared,
                # The replay cache is shared state: in the store, so every worker and
                # instance sees every jti.
                "verifier": JWTVerifier(settings, client, replay=shared.first_use, **kwargs),
                "env": CallEnv(
                    knowledge=knowledge,
                    settings=settings,
                    http=client,
                    gate=gate,
                    store=shared,
                    evaluations=evaluations,
                    today=today,
                ),
            }
        finally:
            if own_client:
                await client.aclose()
            if own_store:
                shared.close()

    return lifespan


def create_app(
    settings: Settings | None = None,
    *,
    knowledge: Knowledge | None = None,
    http_client: httpx.AsyncClient | None = None,
    store: Store | None = None,
    verifier_clock: Any = None,
    today: Callable[[], date] = date.today,
) -> FastAPI:
    """Build the app. Everything stateful is created in the lifespan, nothing at import.
    `today`: the evaluation date's source (the server's local date; tests fix it)."""
    settings = settings or Settings()
    knowledge = knowledge or load_knowledge(
        settings.cards_dir, settings.parameters, settings.validation
    )
    if settings.mode == "production":
        refuse_unreviewed(knowledge, settings.allow_unreviewed)

    lifespan = _lifespan(settings, knowledge, http_client, store, verifier_clock, today)

    docs = settings.docs_enabled
    app = FastAPI(
        title="CDS Hooks service: metastatic breast cancer with bone metastases",
        version=__version__,
        lifespan=lifespan,
        # Off in production unless CDS_API_DOCS=true: the API's shape is no one else's business.
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    # A trailing slash is a 404, never a redirect built from the caller's Host header.
    app.router.redirect_slashes = False
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        max_age=600,
    )
    app.add_middleware(
        BodyBudgetMiddleware,
        max_bytes_in_flight=max(settings.max_body_bytes, settings.max_body_bytes_in_flight),
        timeout_s=settings.body_timeout_s,
    )
    if settings.metrics_address:
        # Outermost: every answer to a call is counted, whichever layer gave it.
        app.add_middleware(
            CallMetrics, hooks={sid: s.hook for sid, s in knowledge.services.items()}
        )
    app.include_router(router)
    if docs:
        install_openapi(app, list(knowledge.services))

    app.add_exception_handler(CDSError, _cds_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(RecursionError, _too_deep)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
    return app


# Every error is a FHIR OperationOutcome with the status its cause calls for.
async def _cds_error(request: Request, exc: CDSError) -> JSONResponse:
    response = outcome(exc.http_status, exc.issues)
    if exc.http_status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, Busy):
        response.headers["Retry-After"] = "1"  # bodies in flight end within seconds
    if isinstance(exc, StoreUnavailable):
        STORE_ERRORS.inc()
    return response


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    issues = tuple(
        Issue("invalid", str(e.get("msg")), ".".join(str(p) for p in e.get("loc", ())))
        for e in exc.errors()
    )
    return outcome(400, issues or (Issue("invalid", "invalid request"),))


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {404: "not-found", 405: "not-supported"}.get(exc.status_code, "processing")
    response = outcome(exc.status_code, (Issue(code, str(exc.detail)),))
    response.headers.update(exc.headers or {})  # e.g. Allow on 405 (RFC 9110)
    return response


async def _too_deep(request: Request, exc: RecursionError) -> JSONResponse:
    # The backstop behind the parser's depth bound: input nested too deeply is the
    # caller's problem (400), never a 500.
    log.warning("input nested too deeply on %s", request.url.path)
    return outcome(400, (Issue("invalid", "the input is nested too deeply"),))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s", request.url.path)
    return outcome(500, (Issue("exception", "internal error; see the service log"),))


def refuse_unreviewed(knowledge: Knowledge, allowed: tuple[str, ...]) -> None:
    """Production runs only rules clinicians have signed in their current version (cds.review),
    and those an operator lists on purpose in CDS_ALLOW_UNREVIEWED."""
    unknown = sorted(set(allowed) - set(knowledge.rules))
    if unknown:
        raise ConfigError(f"CDS_ALLOW_UNREVIEWED names unknown rules: {', '.join(unknown)}")
    missing = {
        rule_id: review
        for rule_id, review in knowledge.reviews.items()
        if not review.reviewed and rule_id not in allowed
    }
    if missing:
        detail = "".join(
            f"\n  {rule_id} {r.version} ({r.state}: needs {', '.join(r.missing_roles)})"
            for rule_id, r in missing.items()
        )
        raise ConfigError(
            "production runs only rules reviewed in their current version; not reviewed "
            f"({len(missing)}):{detail}\nSign each with `cds review --sign RULE --by NAME "
            "--role ROLE` after review, or list it in CDS_ALLOW_UNREVIEWED"
        )


def from_environment() -> FastAPI:
    """The app as each worker process builds it (`cds serve --workers N`): settings from the
    environment, JSON logs."""
    from cds.logs import configure
    from cds.server import tune_for_serving

    settings = Settings()
    configure(settings.log_level)
    app = create_app(settings)
    tune_for_serving()
    return app
