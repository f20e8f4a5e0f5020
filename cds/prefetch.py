"""Prefetch or fetch: render templates, classify each key, fetch what is missing, or 412.

A key the client sent is data (a resource or a searchset Bundle); `null` means "no data" and is
not refetched; an omitted key or an OperationOutcome (the client's fetch failed) is fetched from
`fhirServer` with the `fhirAuthorization` bearer token. All fetches run in parallel, each with a
timeout and all under one deadline; Bundle `next` links are followed up to a page limit, on the
same server only. Data that can be neither prefetched nor fetched is a 412 naming the key.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx

from cds import schemas
from cds.errors import Issue, PrefetchUnavailable

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")
_USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


class TokenMissing(ValueError):
    pass


def render_template(template: str, context: Mapping[str, Any]) -> str:
    """Substitute {{context.x}} (root-level primitives) and the user tokens (spec 2.0.1)."""

    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        if name.startswith("context."):
            v = context.get(name.removeprefix("context."))
            if isinstance(v, str | int | float) and not isinstance(v, bool):
                return str(v)
            raise TokenMissing(f"context field {name.removeprefix('context.')!r} is not available")
        if name in _USER_TOKENS:
            user = str(context.get("userId") or "")
            rtype, _, uid = user.partition("/")
            if rtype == _USER_TOKENS[name] and uid:
                return uid
            raise TokenMissing(f"{name} does not apply to userId {rtype or '(none)'}")
        raise TokenMissing(f"unsupported prefetch token {{{{{name}}}}}")

    return _TOKEN.sub(value, template)


def is_operation_outcome(value: object) -> bool:
    return isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"


@dataclass(frozen=True, slots=True)
class FetchLimits:
    timeout_s: float
    deadline_s: float
    max_pages: int
    max_resources: int


@dataclass(frozen=True, slots=True)
class Resolved:
    data: dict[str, Any]  # key → resource | Bundle | None (no data)
    fetched: tuple[str, ...]


class _KeyFailed(Exception):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


async def _get_json(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], key: str, timeout_s: float
) -> tuple[int, Any]:
    try:
        response = await client.get(url, headers=headers, timeout=timeout_s)
    except httpx.TimeoutException:
        raise _KeyFailed(key, "the FHIR server did not answer in time") from None
    except httpx.HTTPError as exc:
        raise _KeyFailed(
            key, f"the FHIR server could not be reached ({type(exc).__name__})"
        ) from None
    if response.is_redirect:
        raise _KeyFailed(
            key, f"the FHIR server redirected (HTTP {response.status_code}); not followed"
        )
    if response.status_code >= 400:
        return response.status_code, None
    try:
        return response.status_code, response.json()
    except ValueError:
        raise _KeyFailed(key, "the FHIR server returned a body that is not JSON") from None


async def _fetch_key(
    client: httpx.AsyncClient,
    base: str,
    key: str,
    query: str,
    patient_id: str,
    headers: dict[str, str],
    limits: FetchLimits,
) -> Any:
    url = f"{base}/{query}"
    status, body = await _get_json(client, url, headers, key, limits.timeout_s)
    if status in (400, 422) and f"patient={patient_id}" in query:
        # Servers differ on patient=<id> versus patient=Patient/<id>: try the other form.
        alt = query.replace(f"patient={patient_id}", f"patient=Patient/{patient_id}")
        status, body = await _get_json(client, f"{base}/{alt}", headers, key, limits.timeout_s)
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
        return body
    entries: list[Any] = list(body.get("entry") or [])
    pages = 1
    next_url = _next_link(body)
    while next_url is not None:
        if pages >= limits.max_pages:
            raise _KeyFailed(key, f"more than {limits.max_pages} pages of results")
        if _origin(next_url) != _origin(base):
            raise _KeyFailed(key, "a next link points to another server; not followed")
        status, page = await _get_json(client, next_url, headers, key, limits.timeout_s)
        if status >= 400 or not isinstance(page, dict) or page.get("resourceType") != "Bundle":
            raise _KeyFailed(key, f"a result page could not be read (HTTP {status})")
        entries.extend(page.get("entry") or [])
        if len(entries) > limits.max_resources:
            raise _KeyFailed(key, f"more than {limits.max_resources} resources")
        pages += 1
        next_url = _next_link(page)
    return {**body, "entry": entries, "link": []}


def _next_link(bundle: Mapping[str, Any]) -> str | None:
    for link in bundle.get("link") or ():
        if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None


def server_allowed(server: str, allowlist: Sequence[str]) -> bool:
    """SSRF guard: scheme and host must match an entry (and its port and path, if it has them).

    URLs are compared parsed, never as string prefixes, so userinfo tricks such as
    http://localhost:@evil.example/ do not pass; URLs with userinfo are refused outright.
    """
    try:
        s = urlsplit(server)
        port = s.port
    except ValueError:
        return False
    if s.username is not None or s.password is not None or not s.hostname:
        return False
    for entry in allowlist:
        a = urlsplit(entry)
        if s.scheme != a.scheme or s.hostname != a.hostname:
            continue
        if a.port is not None and port != a.port:
            continue
        if (s.path.rstrip("/") + "/").startswith(a.path.rstrip("/") + "/"):
            return True
    return False


async def resolve(
    templates: Mapping[str, str],
    request: schemas.HookRequest,
    context: Mapping[str, Any],
    client: httpx.AsyncClient,
    limits: FetchLimits,
    fhir_allowlist: Sequence[str],
) -> Resolved:
    """Prefetched data for every template key, fetching what the client did not send."""
    sent = request.prefetch or {}
    data: dict[str, Any] = {}
    to_fetch: dict[str, str] = {}
    issues: list[Issue] = []
    for key, template in templates.items():
        if key in sent and not is_operation_outcome(sent[key]):
            data[key] = sent[key]  # a resource, a Bundle, or None ("no data")
            continue
        try:
            to_fetch[key] = render_template(template, context)
        except TokenMissing as exc:
            issues.append(Issue("incomplete", f"prefetch {key}: {exc}", f"prefetch.{key}"))
    if to_fetch:
        if request.fhirServer is None:
            issues += [
                Issue(
                    "incomplete",
                    f"prefetch {k} was not sent and no fhirServer was given",
                    f"prefetch.{k}",
                )
                for k in to_fetch
            ]
        elif not server_allowed(request.fhirServer, fhir_allowlist):
            issues += [
                Issue(
                    "incomplete",
                    f"prefetch {k} was not sent and fhirServer is not on this service's allowlist",
                    f"prefetch.{k}",
                )
                for k in to_fetch
            ]
        else:
            issues += await _fetch_all(
                request.fhirServer, request, context, client, limits, to_fetch, data
            )
    if issues:
        raise PrefetchUnavailable(
            "data the rules need could not be prefetched or fetched", issues=tuple(issues)
        )
    return Resolved(
        data=data,
        fetched=tuple(to_fetch),
    )


async def _fetch_all(
    server: str,
    request: schemas.HookRequest,
    context: Mapping[str, Any],
    client: httpx.AsyncClient,
    limits: FetchLimits,
    to_fetch: Mapping[str, str],
    data: dict[str, Any],
) -> list[Issue]:
    headers = {"Accept": "application/fhir+json"}
    if request.fhirAuthorization is not None:
        headers["Authorization"] = f"Bearer {request.fhirAuthorization.access_token}"
    patient_id = str(context.get("patientId") or "")
    failures: dict[str, str] = {}

    async def one(key: str, query: str) -> None:
        try:
            data[key] = await _fetch_key(client, server, key, query, patient_id, headers, limits)
        except _KeyFailed as exc:
            failures[key] = exc.reason

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
