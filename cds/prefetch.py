"""Prefetch or fetch: render templates, classify each key, fetch what is missing, or 412.

A key the client sent is data (a resource or a searchset Bundle; one with a `next` link has
the pages after it fetched, one with fewer results than its `total` is fetched whole); `null`
means "no data" and is not refetched; an omitted key, an OperationOutcome (the client's fetch
failed) or a Bundle holding one with an error issue (its search failed in part) is fetched from
`fhirServer` with the `fhirAuthorization` bearer token. All fetches run in parallel, each with
a timeout and all under one deadline; Bundle `next` links are followed up to a page limit, on
the same server only. Data that can be neither prefetched nor fetched is a 412 naming the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

import anyio
import httpx

from cds import medication_references, schemas
from cds.errors import Issue, PrefetchUnavailable
from cds.fhir_fetch import (
    FetchLimits,
    OutboundGate,
    fetch_all,
    next_link,
    reports_an_error,
    server_allowed,
)

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
                return quote(str(v), safe="")  # a value never adds a path or a parameter
            raise TokenMissing(f"context field {name.removeprefix('context.')!r} is not available")
        if name in _USER_TOKENS:
            user = str(context.get("userId") or "")
            rtype, _, uid = user.partition("/")
            if rtype == _USER_TOKENS[name] and uid:
                return quote(uid, safe="")
            raise TokenMissing(f"{name} does not apply to userId {rtype or '(none)'}")
        raise TokenMissing(f"unsupported prefetch token {{{{{name}}}}}")

    return _TOKEN.sub(value, template)


def is_operation_outcome(value: object) -> bool:
    return isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"


@dataclass(frozen=True, slots=True)
class Resolved:
    data: dict[str, Any]  # key → resource | Bundle | None (no data)
    fetched: tuple[str, ...]


class WouldFetch(Exception):
    """`resolve(..., offline=True)` found something to fetch; it fetched nothing."""


def _fewer_than_total(bundle: Mapping[str, Any]) -> tuple[int, int] | None:
    """(results sent, Bundle.total) for a sent searchset with no next link that holds fewer
    results than its total says (a client that dropped the pages after the first, or their
    links): read as the whole chart, it could hide a bone agent. None otherwise."""
    total = bundle.get("total")
    if type(total) is not int:
        return None
    entries = bundle.get("entry")
    entries = entries if isinstance(entries, list) else [] if entries is None else [entries]
    results = len(entries) - _not_results(entries)
    return (results, total) if results < total else None


def _not_results(entries: list[Any]) -> int:
    """Entries that are not results: included resources and outcomes (their search.mode)."""
    n = 0
    for e in entries:  # every entry of every call: operators, no calls, in the loop
        if type(e) is dict and "search" in e and type(search := e["search"]) is dict:
            n += "mode" in search and search["mode"] not in (None, "match")
    return n


@dataclass(slots=True)
class _Sorted:
    """A call's keys sorted: the data sent, the sent first pages whose next pages are to be
    fetched, the queries to fetch (with why a sent key is fetched again), and what cannot even
    be asked."""

    data: dict[str, Any] = field(default_factory=dict)
    paged: dict[str, str | dict[str, Any]] = field(default_factory=dict)
    to_fetch: dict[str, str] = field(default_factory=dict)
    short: dict[str, tuple[int, int]] = field(default_factory=dict)  # (results sent, total)
    failed: set[str] = field(default_factory=set)  # searches whose Bundle reports an error
    issues: list[Issue] = field(default_factory=list)


def _sort_keys(
    templates: Mapping[str, str], sent: Mapping[str, Any], context: Mapping[str, Any]
) -> _Sorted:
    out = _Sorted()
    for key, template in templates.items():
        value = sent.get(key, _NOT_SENT)
        kind = value.get("resourceType") if isinstance(value, dict) else None
        # A client may send a search's first page (spec 2.0.1, Prefetch: "MAY paginate"): the
        # rest is fetched, and a chart is never read as if its first page were all of it.
        if value is _NOT_SENT or kind == "OperationOutcome":
            pass  # fetched (an OperationOutcome: the client's own fetch failed)
        elif kind == "Bundle" and next_link(value):
            out.data[key] = out.paged[key] = value  # the pages after it are fetched
            continue
        elif kind == "Bundle" and (counts := _fewer_than_total(value)) is not None:
            out.short[key] = counts  # fetched whole, as if it had not been sent
        elif kind == "Bundle" and reports_an_error(value.get("entry")):
            out.failed.add(key)  # the client's search failed in part: fetched whole
        else:
            out.data[key] = value  # a resource, a Bundle, or None ("no data")
            continue
        try:
            out.to_fetch[key] = render_template(template, context)
        except TokenMissing as exc:
            out.issues.append(Issue("incomplete", f"prefetch {key}: {exc}", f"prefetch.{key}"))
    return out


_NOT_SENT = object()


def _unfetchable(keys: _Sorted, paged: Mapping[str, object], why: str) -> list[Issue]:
    """An Issue for each key that had to be fetched, with no server to fetch it from."""
    issues = []
    for k in keys.to_fetch:
        if k in keys.short:
            sent, total = keys.short[k]
            text = (
                f"prefetch {k} holds {sent} of the {total} results its Bundle.total counts, "
                f"and {why} to fetch them all"
            )
        elif k in keys.failed:
            text = (
                f"prefetch {k} holds an OperationOutcome saying its search failed (an error "
                f"issue), and {why} to fetch it again"
            )
        else:
            text = f"prefetch {k} was not sent and {why}"
        issues.append(Issue("incomplete", text, f"prefetch.{k}"))
    for k in paged:
        text = (
            f"prefetch {k} was sent as the first page of its results (a next link) and {why} "
            "to fetch the rest"
        )
        issues.append(Issue("incomplete", text, f"prefetch.{k}"))
    return issues


async def resolve(
    templates: Mapping[str, str],
    request: schemas.HookRequest,
    context: Mapping[str, Any],
    client: httpx.AsyncClient,
    limits: FetchLimits,
    fhir_allowlist: Sequence[str],
    gate: OutboundGate | None = None,
    *,
    offline: bool = False,
) -> Resolved:
    """Prefetched data for every template key, fetching what the client did not send.

    `offline`: WouldFetch, before any request, when anything is to be fetched (a call that
    holds the event loop's turn never waits on the network)."""
    started = anyio.current_time()
    keys = _sort_keys(templates, request.prefetch or {}, context)
    data, paged, to_fetch, issues = keys.data, keys.paged, keys.to_fetch, keys.issues
    server = request.fhirServer
    allowed = server is not None and server_allowed(server, fhir_allowlist)
    if (to_fetch or paged) and server is not None and allowed:
        if offline:
            raise WouldFetch
        issues += await fetch_all(
            server.rstrip("/"),
            request,
            context,
            client,
            gate or OutboundGate(),
            limits,
            {**to_fetch, **paged},
            data,
        )
    elif to_fetch or paged:
        if server is None:
            issues += _unfetchable(keys, paged, "no fhirServer was given")
        else:
            issues += _unfetchable(keys, paged, "fhirServer is not on this service's allowlist")
    if issues:
        raise PrefetchUnavailable(
            "data the rules need could not be prefetched or fetched", issues=tuple(issues)
        )
    if server is not None and allowed:
        spent = anyio.current_time() - started
        await _fetch_referenced_medications(
            server.rstrip("/"),
            request,
            context,
            client,
            gate,
            replace(limits, deadline_s=limits.deadline_s - spent),
            data,
            templates,
            offline=offline,
        )
    return Resolved(data=data, fetched=(*to_fetch, *paged))


async def _fetch_referenced_medications(
    server: str,
    request: schemas.HookRequest,
    context: Mapping[str, Any],
    client: httpx.AsyncClient,
    gate: OutboundGate | None,
    limits: FetchLimits,
    data: dict[str, Any],
    templates: Mapping[str, str],
    *,
    offline: bool,
) -> None:
    """The Medications the records name by reference and no key brought, in one search, in
    what is left of the call's fetch deadline (`limits`: CDS_FETCH_DEADLINE_S covers both
    rounds). Not fetched, the records stay unread and are named on a card: the call goes on."""
    keys = [k for k, template in templates.items() if template.startswith("Medication")]
    drafts = {"draftOrders": context.get("draftOrders")}  # an order's Medication, too
    ids = medication_references.missing_medication_ids(data | drafts, [*keys, "draftOrders"])
    if ids and offline:
        raise WouldFetch
    if ids and limits.deadline_s > 0:
        query = {medication_references.KEY: medication_references.search_query(ids)}
        await fetch_all(
            server, request, context, client, gate or OutboundGate(), limits, query, data
        )
