"""Card knowledge (cards/rules/*.yaml, orders, override reasons) and Decision → Card rendering.

Everything a clinician reads comes from these files. At start-up they are validated and
cross-checked with the rule registry: every rule has a card file whose variants match, every
template placeholder is a binding the rule provides, every suggestion, note and order a rule can
name exists, and every emitted code is a verified or seen code of the terminology.
"""

from __future__ import annotations

import copy
import inspect
import re
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cds import schemas
from cds.errors import ConfigError
from cds.facts import PatientFacts
from cds.facts.orders import DraftOrders
from cds.rules import Decision, DeleteDraft, Order, Proposal, Rule, UpdateDraft
from cds.terminology import Coding, Terminology

TOPIC_SYSTEM = "https://cds-mbc-bone.example.org/CodeSystem/card-topic"
CARD_NAMESPACE = uuid.UUID("6f1c3a52-8c1e-4a57-9a77-3f1d1f0a9b21")
# Card extension keys (CDS Hooks reserves `extension`; names are reverse-domain style).
EXT_RULE = "org.cds-mbc-bone.rule"
EXT_VARIANT = "org.cds-mbc-bone.variant"
EXT_EVIDENCE = "org.cds-mbc-bone.evidence"


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Topic(_File):
    code: str
    display: str


class SourceSpec(_File):
    label: str
    url: str


class LinkSpec(_File):
    label: str
    url: str


class VariantSpec(_File):
    summary: str = Field(max_length=139)
    detail: str


class CardFile(_File):
    rule: str
    title: str
    topic: Topic
    source: SourceSpec
    evidence: str
    selection: Literal["at-most-one", "any"]
    override_reasons: list[str] = Field(min_length=1)
    links: list[LinkSpec] = Field(default_factory=list)
    variants: dict[str, VariantSpec]
    suggestions: dict[str, str] = Field(default_factory=dict)
    notes: dict[str, str] = Field(default_factory=dict)


class CommonFile(_File):
    disclaimer: str
    suggestions: dict[str, str]
    notes: dict[str, str]


class MedicationOrder(_File):
    name: str
    dose: str
    rxnorm: str | None = None
    default_dose: str | None = None


class ServiceOrder(_File):
    name: str
    valueset: str | None = None
    code: str | None = None


class IntentSpec(_File):
    url: str
    valueset: str
    code: str


class OrdersFile(_File):
    treatment_intent: IntentSpec
    medications: dict[str, MedicationOrder]
    services: dict[str, ServiceOrder]


class OverrideFile(_File):
    system: str
    codes: dict[str, str]


def _yaml(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _model(cls: type[_File], path: Path) -> Any:
    try:
        return cls.model_validate(_yaml(path))
    except ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _placeholders(text: str) -> set[str]:
    return set(Template(text).get_identifiers())


@dataclass(frozen=True, slots=True)
class CardBook:
    cards: Mapping[str, CardFile]
    common: CommonFile
    orders: OrdersFile
    overrides: OverrideFile
    terminology: Terminology

    def suggestion_label(self, rule: str, key: str) -> str:
        own = self.cards[rule].suggestions
        return own[key] if key in own else self.common.suggestions[key]

    def note(self, rule: str, key: str) -> str:
        own = self.cards[rule].notes
        return own[key] if key in own else self.common.notes[key]


def load_cards(cards_dir: Path, terminology: Terminology, rules: Mapping[str, Rule]) -> CardBook:
    files = {p.stem: _model(CardFile, p) for p in sorted((cards_dir / "rules").glob("*.yaml"))}
    book = CardBook(
        cards=files,
        common=_model(CommonFile, cards_dir / "common.yaml"),
        orders=_model(OrdersFile, cards_dir / "orders.yaml"),
        overrides=_model(OverrideFile, cards_dir / "override-reasons.yaml"),
        terminology=terminology,
    )
    problems = cross_check(book, rules)
    if problems:
        raise ConfigError("knowledge files do not match the rules:\n  " + "\n  ".join(problems))
    return book


_KEY = re.compile(r"\b(Order|Proposal)\(\s*key=f?\"([^\"{]+)\"")


def _keys_in_source(rule: Rule) -> tuple[set[str], set[str]]:
    """Order and Proposal keys a rule module names literally (checked against the files)."""
    source = inspect.getsource(sys.modules[rule.fn.__module__])
    orders = {m.group(2) for m in _KEY.finditer(source) if m.group(1) == "Order"}
    proposals = {m.group(2) for m in _KEY.finditer(source) if m.group(1) == "Proposal"}
    return orders, proposals


def cross_check(book: CardBook, rules: Mapping[str, Rule]) -> list[str]:
    problems: list[str] = []
    t = book.terminology
    for rid, r in rules.items():
        card = book.cards.get(rid)
        if card is None:
            problems.append(f"rule {rid} has no cards/rules/{rid}.yaml")
            continue
        if card.rule != rid:
            problems.append(f"cards/rules/{rid}.yaml says rule {card.rule}")
        if set(card.variants) != set(r.variants):
            problems.append(
                f"{rid}: card variants {sorted(card.variants)} != "
                f"rule variants {sorted(r.variants)}"
            )
        for name, v in card.variants.items():
            extra = (_placeholders(v.summary) | _placeholders(v.detail)) - r.bindings
            if extra:
                problems.append(f"{rid}.{name}: placeholders {sorted(extra)} are not rule bindings")
        for code in card.override_reasons:
            if code not in book.overrides.codes:
                problems.append(f"{rid}: unknown override reason {code!r}")
        both = set(card.suggestions) & set(book.common.suggestions)
        both |= set(card.notes) & set(book.common.notes)
        if both:
            problems.append(f"{rid}: keys defined in both the card file and common.yaml: {both}")
    for rid in set(book.cards) - set(rules):
        problems.append(f"cards/rules/{rid}.yaml has no rule")
    # Keys named literally in rule modules must exist in the files.
    for r in rules.values():
        orders, proposals = _keys_in_source(r)
        for key in orders:
            if key not in book.orders.medications and key not in book.orders.services:
                problems.append(f"{r.id}: order {key!r} is not in cards/orders.yaml")
        labelled = set(book.common.suggestions).union(*(c.suggestions for c in book.cards.values()))
        for key in proposals - labelled:
            problems.append(f"{r.id}: suggestion {key!r} has no label")
    # Every emitted code must be verified or seen, never UNVERIFIED (terminology.md).
    for key, med in book.orders.medications.items():
        if med.rxnorm is not None and med.rxnorm not in t.medications.displays:
            problems.append(f"orders.{key}: RxNorm {med.rxnorm} is not in medications.yaml")
        if _placeholders(med.dose) - {"dose"}:
            problems.append(f"orders.{key}: unknown placeholder in dose")
        if "dose" in _placeholders(med.dose) and med.default_dose is None:
            problems.append(f"orders.{key}: dose has $dose but no default_dose")
    for key, svc in book.orders.services.items():
        if (svc.valueset is None) != (svc.code is None):
            problems.append(f"orders.{key}: valueset and code go together")
        elif svc.valueset is not None and svc.code is not None:
            try:
                t[svc.valueset].coding(svc.code)
            except (KeyError, ConfigError) as exc:
                problems.append(f"orders.{key}: {exc}")
    intent = book.orders.treatment_intent
    try:
        t[intent.valueset].coding(intent.code)
    except (KeyError, ConfigError) as exc:
        problems.append(f"orders.treatment_intent: {exc}")
    return problems


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderContext:
    hook_instance: str
    patient_id: str
    encounter_id: str | None
    facts: PatientFacts
    drafts: DraftOrders


def _coding(c: Coding) -> dict[str, str]:
    out = {"system": c.system, "code": c.code}
    if c.display:
        out["display"] = c.display
    return out


class Renderer:
    def __init__(self, book: CardBook) -> None:
        self.book = book
        intent = book.orders.treatment_intent
        self._intent = {
            "url": intent.url,
            "valueCodeableConcept": {
                "coding": [_coding(book.terminology[intent.valueset].coding(intent.code))]
            },
        }

    def render(self, decision: Decision, ctx: RenderContext) -> schemas.Card:
        spec = self.book.cards[decision.rule]
        variant = spec.variants[decision.variant]
        card_id = uuid.uuid5(CARD_NAMESPACE, f"{ctx.hook_instance}|{decision.concern}")
        bindings = dict(decision.bindings)
        suggestions = [self._suggestion(decision.rule, p, ctx, card_id) for p in decision.proposals]
        return schemas.Card(
            uuid=str(card_id),
            summary=Template(variant.summary).substitute(bindings),
            detail=self._detail(decision, spec, variant, bindings, ctx.facts),
            indicator=decision.indicator,
            source=schemas.Source(
                label=spec.source.label,
                url=spec.source.url,
                topic=schemas.Coding(
                    system=TOPIC_SYSTEM, code=spec.topic.code, display=spec.topic.display
                ),
            ),
            suggestions=suggestions or None,
            selectionBehavior=spec.selection if suggestions else None,
            overrideReasons=[
                schemas.OverrideReason(
                    system=self.book.overrides.system,
                    code=code,
                    display=self.book.overrides.codes[code],
                )
                for code in spec.override_reasons
            ],
            links=[schemas.Link(label=li.label, url=li.url, type="absolute") for li in spec.links]
            or None,
            extension={
                EXT_RULE: decision.rule,
                EXT_VARIANT: decision.variant,
                **({EXT_EVIDENCE: list(dict.fromkeys(decision.refs))} if decision.refs else {}),
            },
        )

    def _detail(
        self,
        d: Decision,
        spec: CardFile,
        variant: VariantSpec,
        bindings: Mapping[str, str],
        facts: PatientFacts,
    ) -> str:
        parts = [Template(variant.detail).substitute(bindings).strip()]
        if d.data:
            parts.append("**Patient data**\n" + "\n".join(f"- {x}" for x in d.data))
        if d.missing:
            parts.append("**Missing data**\n" + "\n".join(f"- {x}" for x in d.missing))
        notes = [self.book.note(d.rule, k) for k in d.note_keys] + list(d.notes)
        if facts.excluded:
            kinds = ", ".join(sorted({f"{e.resource_type} ({e.location})" for e in facts.excluded}))
            notes.append(
                f"{len(facts.excluded)} resource(s) could not be read and were left out: {kinds}. "
                "This recommendation may be incomplete."
            )
        if notes:
            parts.append("**Notes**\n" + "\n".join(f"- {n}" for n in notes))
        parts.append(f"**Evidence**: {spec.evidence}")
        parts.append(f"_{self.book.common.disclaimer}_")
        return "\n\n".join(parts)

    def _suggestion(
        self, rule: str, p: Proposal, ctx: RenderContext, card_id: uuid.UUID
    ) -> schemas.Suggestion:
        label = Template(self.book.suggestion_label(rule, p.key)).substitute(p.label_bindings)
        actions = []
        for a in p.actions:
            if isinstance(a, Order):
                actions.append(self._create(a, ctx))
            elif isinstance(a, UpdateDraft):
                actions.append(self._update(a, ctx))
            elif isinstance(a, DeleteDraft):
                actions.append(
                    schemas.Action(
                        type="delete",
                        description=f"Remove the draft order {a.draft_ref}",
                        resourceId=a.draft_ref,
                    )
                )
        return schemas.Suggestion(
            label=label,
            uuid=str(uuid.uuid5(card_id, p.key)),
            actions=actions or None,
        )

    def _reason(self, ctx: RenderContext) -> list[dict[str, str]]:
        refs = ctx.facts.disease.breast_cancer.refs
        return [{"reference": refs[0]}] if refs else []

    def _create(self, order: Order, ctx: RenderContext) -> schemas.Action:
        orders = self.book.orders
        base: dict[str, Any] = {
            "status": "draft",
            "intent": "proposal",
            "subject": {"reference": f"Patient/{ctx.patient_id}"},
        }
        if ctx.encounter_id:
            base["encounter"] = {"reference": f"Encounter/{ctx.encounter_id}"}
        reason = self._reason(ctx)
        if order.key in orders.medications:
            med = orders.medications[order.key]
            dose = Template(med.dose).substitute(dose=order.dose or med.default_dose or "")
            concept: dict[str, Any] = {"text": med.name}
            if med.rxnorm is not None:
                t = self.book.terminology
                concept["coding"] = [_coding(t.medications.rxnorm_coding(med.rxnorm, t.rxnorm))]
            resource = {
                "resourceType": "MedicationRequest",
                **base,
                "medicationCodeableConcept": concept,
                "dosageInstruction": [{"text": dose}],
                "extension": [self._intent],
            }
            if reason:
                resource["reasonReference"] = reason
            return schemas.Action(
                type="create", description=f"Propose {med.name}: {dose}", resource=resource
            )
        svc = orders.services[order.key]
        code: dict[str, Any] = {"text": svc.name}
        if svc.valueset is not None and svc.code is not None:
            code["coding"] = [_coding(self.book.terminology[svc.valueset].coding(svc.code))]
        resource = {"resourceType": "ServiceRequest", **base, "code": code}
        if reason:
            resource["reasonReference"] = reason
        return schemas.Action(type="create", description=f"Order {svc.name}", resource=resource)

    def _update(self, a: UpdateDraft, ctx: RenderContext) -> schemas.Action:
        draft = next((m for m in ctx.drafts.medications if m.ref == a.draft_ref), None)
        resource: dict[str, Any] = copy.deepcopy(draft.raw) if draft else {}
        dosage = resource.get("dosageInstruction") or [{}]
        first = dict(dosage[0]) if isinstance(dosage[0], dict) else {}
        first["text"] = f"{a.dose} (adjusted for creatinine clearance)"
        mg = float(a.dose.split()[0])
        rates = [dict(r) for r in first.get("doseAndRate") or () if isinstance(r, dict)]
        for rate in rates:
            if isinstance(rate.get("doseQuantity"), dict):
                rate["doseQuantity"] = {**rate["doseQuantity"], "value": mg, "unit": "mg"}
        if rates:
            first["doseAndRate"] = rates
        resource["dosageInstruction"] = [first, *dosage[1:]]
        return schemas.Action(
            type="update",
            description=f"Change the dose of {a.draft_ref} to {a.dose}",
            resource=resource,
        )
