"""The CDS Services: definitions from cards/services.yaml and the evaluation of one call."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cds import schemas, snooze
from cds.cards import CardBook, RenderContext, Renderer, load_cards
from cds.errors import ConfigError
from cds.facts import FACT_VALUESETS, facts_from_records
from cds.facts.orders import NO_DRAFTS, read_draft_orders
from cds.facts.records import ValidationCache, read_records
from cds.parameters import Parameters, load_parameters
from cds.rules import Rule, evaluate, load_rules
from cds.store import IssuedCard, Snooze
from cds.terminology import Terminology, load_terminology

_VS = re.compile(r"\$\{vs:([a-z0-9,-]+)\}")


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceSpec(_File):
    id: str = Field(pattern=r"^[A-Za-z0-9._-]+$")
    hook: str
    title: str
    description: str
    prefetch: dict[str, str]


class ServicesFile(_File):
    common_prefetch: dict[str, str]
    usage_requirements: str
    services: list[ServiceSpec]


@dataclass(frozen=True, slots=True)
class Service:
    id: str
    hook: str
    title: str
    description: str
    prefetch: Mapping[str, str]
    usage_requirements: str

    def describe(self) -> schemas.ServiceDescription:
        return schemas.ServiceDescription(
            hook=self.hook,
            title=self.title,
            description=self.description,
            id=self.id,
            prefetch=dict(self.prefetch),
            usageRequirements=self.usage_requirements,
        )


def _expand(template: str, t: Terminology) -> str:
    def codes(m: re.Match[str]) -> str:
        out = []
        for vs_id in m.group(1).split(","):
            out += [f"{s}|{c}" for s, c in sorted(t[vs_id].codes)]
        return ",".join(out)

    return _VS.sub(codes, template)


@dataclass(frozen=True, slots=True)
class Knowledge:
    """Everything loaded once at start-up and shared read-only by all calls."""

    terminology: Terminology
    parameters: Parameters
    rules: Mapping[str, Rule]
    cards: CardBook
    renderer: Renderer
    services: Mapping[str, Service]
    validation_cache: ValidationCache


def load_knowledge(cards_dir: Path, overrides: Mapping[str, object] | None = None) -> Knowledge:
    t = load_terminology(cards_dir)
    missing = sorted(FACT_VALUESETS - set(t.value_sets))
    if missing:
        raise ConfigError(
            f"{cards_dir / 'valuesets'}: value sets the facts read are missing: {missing}"
        )
    params = load_parameters(
        cards_dir / "parameters.yaml", overrides, regimens=cards_dir / "regimens.yaml"
    )
    rules = load_rules()
    book = load_cards(cards_dir, t, rules, params)
    path = cards_dir / "services.yaml"
    try:
        spec = ServicesFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    services: dict[str, Service] = {}
    for s in spec.services:
        if s.id in services:
            raise ConfigError(f"{path}: service id {s.id} is listed twice")
        if s.hook not in ("patient-view", "order-select", "order-sign"):
            raise ConfigError(f"{path}: service {s.id} has unsupported hook {s.hook}")
        services[s.id] = Service(
            id=s.id,
            hook=s.hook,
            title=s.title,
            description=s.description,
            prefetch={k: _expand(v, t) for k, v in s.prefetch.items()},
            usage_requirements=spec.usage_requirements,
        )
    return Knowledge(
        terminology=t,
        parameters=params,
        rules=rules,
        cards=book,
        renderer=Renderer(book, rules),
        services=services,
        validation_cache=ValidationCache(),
    )


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
    now: float = 0.0,
) -> Outcome:
    """Facts → rules → (snoozes) → cards for one call; `data` is the resolved prefetch
    (key → JSON | None); `snoozes` are this patient's, keyed by rule."""
    timings = timings or Timings()
    t = k.terminology
    records = read_records(data.values(), t, k.validation_cache)
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
            IssuedCard(card=c.uuid, rule=d.rule, patient_key=patient_key, evidence=digest)
            for c, (d, digest) in zip(cards, shown, strict=True)
            if c.uuid is not None
        ),
        snoozed=len(decisions) - len(shown),
    )
