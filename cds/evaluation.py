"""One CDS Hooks call, after its prefetch is resolved: read → facts → rules → snoozes → cards.

Pure and synchronous (the API runs it in a worker thread): the knowledge, the call's data and
the evaluation date go in, the response and what the log and the store need come out.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from cds import schemas, snooze
from cds.cards import RenderContext
from cds.facts import facts_from_records
from cds.facts.orders import NO_DRAFTS, read_draft_orders
from cds.facts.reading import read_records
from cds.rules import evaluate
from cds.services import Knowledge, Service
from cds.store import IssuedCard, Snooze


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
    response: schemas.CDSResponse
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
    (key → JSON | None); `snoozes` are this patient's, keyed by rule."""
    timings = timings or Timings()
    t = k.terminology
    records = read_records(data.values(), t, k.checker)
    facts = facts_from_records(records, t, k.parameters, as_of=as_of)
    drafts = NO_DRAFTS
    if service.hook in ("order-select", "order-sign"):
        drafts = read_draft_orders(context["draftOrders"], context.get("selections") or (), t)
    timings.mark("facts")
    decisions = evaluate(service.hook, facts, drafts, k.parameters)
    shown = snooze.apply(decisions, snoozes or {}, now)
    timings.mark("rules")
    ctx = RenderContext(
        hook_instance=request.hookInstance,
        patient_id=str(context["patientId"]),
        patient_key=patient_key,
        encounter_id=context.get("encounterId"),
        facts=facts,
        drafts=drafts,
    )
    cards = [k.renderer.render(d, ctx) for d, _ in shown]
    timings.mark("cards")
    return Outcome(
        response=schemas.CDSResponse(cards=cards),
        rules=tuple(d.concern for d, _ in shown),
        excluded=len(facts.excluded),
        unchecked_orders=len(drafts.unreadable),
        issued=tuple(
            IssuedCard(
                card=c.uuid,
                rule=d.rule,
                patient_key=patient_key,
                evidence=digest,
                service_id=service.id,
                caller=caller,
                suggestions=tuple(s.uuid for s in c.suggestions or () if s.uuid),
                variant=d.variant,
                indicator=d.indicator,
            )
            for c, (d, digest) in zip(cards, shown, strict=True)
            if c.uuid is not None
        ),
        snoozed=len(decisions) - len(shown),
    )
