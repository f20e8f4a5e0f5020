"""The CDS Services (cards/services.yaml) and the knowledge they run on, loaded once at start-up.

The evaluation of one call is `cds.call`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from cds import schemas
from cds.card_book import CardBook, load_cards
from cds.cards import Renderer
from cds.errors import ConfigError
from cds.facts import FACT_VALUESETS
from cds.fhir.conformance import Checker, Mode
from cds.knowledge_file import KnowledgeFile, read_model
from cds.parameters import Parameters, load_parameters
from cds.review import RuleReview, review_states
from cds.rules import Rule, load_rules
from cds.terminology import Terminology
from cds.terminology_files import load_terminology

_VS = re.compile(r"\$\{vs:([a-z0-9,-]+)\}")


class ServiceSpec(KnowledgeFile):
    id: str = Field(pattern=r"^[A-Za-z0-9._-]+$")
    hook: str
    title: str
    description: str
    prefetch: dict[str, str]


class ServicesFile(KnowledgeFile):
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
    # Each rule's clinician review against its current content digest (cards/reviews.yaml).
    reviews: Mapping[str, RuleReview]
    # GET /cds-services, built once: the services with each rule's version and review date.
    discovery: Mapping[str, Any]
    # How resources are checked before they are read (CDS_VALIDATION), and its R4B verdict memo.
    checker: Checker


def load_knowledge(
    cards_dir: Path,
    overrides: Mapping[str, object] | None = None,
    validation: Mode = "fields",
) -> Knowledge:
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
    spec = read_model(ServicesFile, path)
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
    reviews = review_states(rules, book, params, cards_dir)
    described = [_describe(s, rules, reviews) for s in services.values()]
    return Knowledge(
        terminology=t,
        parameters=params,
        rules=rules,
        cards=book,
        renderer=Renderer(book, rules, {r: (v.version, v.review_date) for r, v in reviews.items()}),
        services=services,
        reviews=reviews,
        discovery=schemas.Discovery(services=described).wire(),
        checker=Checker(validation),
    )


EXT_RULES = "org.cds-mbc-bone.rules"


def _describe(
    service: Service, rules: Mapping[str, Rule], reviews: Mapping[str, RuleReview]
) -> schemas.ServiceDescription:
    """A service with the version and review date of each rule it runs (cds.review)."""
    entries = []
    for rule_id, rule in rules.items():
        if service.hook in rule.hooks:
            when = reviews[rule_id].review_date
            entries.append(
                {
                    "rule": rule_id,
                    "version": reviews[rule_id].version,
                    "reviewed": when.isoformat() if when else None,
                }
            )
    described = service.describe()
    described.extension = {EXT_RULES: entries}
    return described
