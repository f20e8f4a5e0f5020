"""Card knowledge (cards/rules/*.yaml, orders, override reasons) and Decision → Card rendering.

Everything a clinician reads comes from these files. At start-up they are validated and
cross-checked with the rule registry: every rule has a card file whose variants match, every
template placeholder is a binding the rule provides, every suggestion, note and order a rule can
name exists, and every emitted code is a verified or seen code of the terminology.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from string import Template
from typing import Any, Literal

from pydantic import Field

from cds import schemas
from cds.errors import ConfigError
from cds.facts import PatientFacts
from cds.facts.orders import DraftOrders
from cds.knowledge_file import KnowledgeFile, read_model
from cds.parameters import Parameters
from cds.rules import Decision, DeleteDraft, Order, Proposal, RegimenOrder, Rule, UpdateDraft
from cds.terminology import Coding, Terminology

TOPIC_SYSTEM = "https://cds-mbc-bone.example.org/CodeSystem/card-topic"
CARD_NAMESPACE = uuid.UUID("6f1c3a52-8c1e-4a57-9a77-3f1d1f0a9b21")
# Card extension keys (CDS Hooks reserves `extension`; names are reverse-domain style).
EXT_RULE = "org.cds-mbc-bone.rule"
EXT_VARIANT = "org.cds-mbc-bone.variant"
EXT_RULE_VERSION = "org.cds-mbc-bone.rule-version"  # cds.review: the content digest's prefix
EXT_REVIEWED = "org.cds-mbc-bone.reviewed"  # the date clinicians signed this rule version
EXT_EVIDENCE = "org.cds-mbc-bone.evidence"
UCUM = "http://unitsofmeasure.org"
# The first mass dose written in a dosage text ("4 mg", "4.0 mg"), which an update replaces.
_DOSE_IN_TEXT = re.compile(r"(?<![\w.])\d+(?:\.\d+)?\s*mg(?![\w/])", re.IGNORECASE)


class Topic(KnowledgeFile):
    code: str
    display: str


class SourceSpec(KnowledgeFile):
    label: str
    url: str


class LinkSpec(KnowledgeFile):
    label: str
    url: str


class VariantSpec(KnowledgeFile):
    summary: str = Field(max_length=139)
    detail: str


class CardFile(KnowledgeFile):
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


class CommonFile(KnowledgeFile):
    disclaimer: str
    suggestions: dict[str, str]
    notes: dict[str, str]


class MedicationOrder(KnowledgeFile):
    name: str
    rxnorm: str | None = None


class ServiceOrder(KnowledgeFile):
    name: str
    valueset: str | None = None
    code: str | None = None


class IntentSpec(KnowledgeFile):
    url: str
    valueset: str
    code: str


class OrdersFile(KnowledgeFile):
    treatment_intent: IntentSpec
    medications: dict[str, MedicationOrder]
    services: dict[str, ServiceOrder]


class OverrideFile(KnowledgeFile):
    system: str
    codes: dict[str, str]


def _sentence(text: str) -> str:
    """A summary that opens with a drug name ('zoledronic acid ...') starts with a capital."""
    return text[:1].upper() + text[1:]


def _placeholders(text: str) -> set[str]:
    return set(Template(text).get_identifiers())


@dataclass(frozen=True, slots=True)
class CardBook:
    cards: Mapping[str, CardFile]
    common: CommonFile
    orders: OrdersFile
    overrides: OverrideFile
    terminology: Terminology
    parameters: Parameters

    def suggestion_label(self, rule: str, key: str) -> str:
        own = self.cards[rule].suggestions
        if key in own:
            return own[key]
        if key in self.common.suggestions:
            return self.common.suggestions[key]
        return self.parameters.regimens[key].label

    def note(self, rule: str, key: str) -> str:
        own = self.cards[rule].notes
        return own[key] if key in own else self.common.notes[key]


def load_cards(
    cards_dir: Path, terminology: Terminology, rules: Mapping[str, Rule], parameters: Parameters
) -> CardBook:
    files = {p.stem: read_model(CardFile, p) for p in sorted((cards_dir / "rules").glob("*.yaml"))}
    book = CardBook(
        cards=files,
        common=read_model(CommonFile, cards_dir / "common.yaml"),
        orders=read_model(OrdersFile, cards_dir / "orders.yaml"),
        overrides=read_model(OverrideFile, cards_dir / "override-reasons.yaml"),
        terminology=terminology,
        parameters=parameters,
    )
    problems = cross_check(book, rules)
    if problems:
        raise ConfigError("knowledge files do not match the rules:\n  " + "\n  ".join(problems))
    return book


def parameter_bindings(p: Parameters, names: frozenset[str]) -> dict[str, str]:
    """Card-text values of the parameters a rule declares: `$dental_lookback_days`, and for
    day windows also `$..._weeks` and `$..._months`, so no card restates a threshold."""
    out: dict[str, str] = {}
    for name in names:
        value = getattr(p, name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        out[name] = f"{value:g}"
        if name.endswith("_days"):
            out[f"{name[:-5]}_weeks"] = f"{round(value / 7):g}"
            out[f"{name[:-5]}_months"] = f"{round(value / 30.44):g}"
    return out


# How a threshold would be restated in card text, by the parameter's name.
_RESTATED = (
    ("_days", ("days?",)),
    ("_percent", ("%",)),
    ("_minutes", ("min(?:utes?)?",)),
    ("_mg_dl", ("mg/dL",)),
    ("crcl", ("mL/min",)),
    ("creatinine_rise", ("mg/dL",)),
    ("creatinine_abnormal_baseline", ("mg/dL",)),
)


def restated_literals(text: str, p: Parameters, names: frozenset[str]) -> list[str]:
    """Parameters whose value a card text writes out as a literal instead of a placeholder."""
    found = []
    for name in sorted(names):
        value = getattr(p, name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        units = [u for suffix, us in _RESTATED if suffix in name for u in us]
        forms = [(f"{value:g}", u) for u in units]
        if name.endswith("_days"):
            # 183 days is also written "6 months", 35 days "5 weeks": only near-exact ones.
            for per, unit in ((30.44, "months?"), (7.0, "weeks?")):
                n = value / per
                if n >= 1 and abs(n - round(n)) < 0.1:
                    forms.append((f"{round(n):g}", unit))
        for form, unit in forms:
            # Not a range's upper end ("4-6 months" is not "6 months").
            pattern = rf"(?<![\d.$\-–]){re.escape(form)}(?:-(?:day|week|month))?\s*{unit}(?!\w)"
            if re.search(pattern, text, flags=re.IGNORECASE):
                found.append(f"{name}={value:g} written as '{form} {unit.rstrip('?')}'")
    return found


def _texts(card: CardFile) -> list[tuple[str, str]]:
    """Every sentence of a card file a clinician reads, except the quoted evidence."""
    out = []
    for name, v in card.variants.items():
        out += [(f"{name}.summary", v.summary), (f"{name}.detail", v.detail)]
    out += [(f"suggestions.{k}", v) for k, v in card.suggestions.items()]
    out += [(f"notes.{k}", v) for k, v in card.notes.items()]
    return out


def cross_check(book: CardBook, rules: Mapping[str, Rule]) -> list[str]:
    problems: list[str] = []
    t = book.terminology
    params = book.parameters
    regimens = params.regimens
    labelled = set(book.common.suggestions).union(*(c.suggestions for c in book.cards.values()))
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
        allowed = set(r.bindings) | set(parameter_bindings(params, r.uses.parameters))
        for where, text in _texts(card):
            extra = _placeholders(text) - allowed
            if extra and not where.startswith("suggestions."):
                problems.append(f"{rid}.{where}: placeholders {sorted(extra)} are not bindings")
            for hit in restated_literals(text, params, r.uses.parameters):
                problems.append(f"{rid}.{where}: restates a parameter ({hit}); use a placeholder")
        for code in card.override_reasons:
            if code not in book.overrides.codes:
                problems.append(f"{rid}: unknown override reason {code!r}")
        both = set(card.suggestions) & set(book.common.suggestions)
        both |= set(card.notes) & set(book.common.notes)
        if both:
            problems.append(f"{rid}: keys defined in both the card file and common.yaml: {both}")
        # Everything the rule declares must resolve (rule-engine style: at load, not per call).
        u = r.uses
        for vs in sorted(u.valuesets - set(t.value_sets)):
            problems.append(f"{rid}: value set {vs!r} is not in cards/valuesets/")
        for ing in sorted(u.ingredients - set(t.medications.classes)):
            problems.append(f"{rid}: ingredient {ing!r} is not in cards/medications.yaml")
        for name in sorted(u.parameters - set(type(params).model_fields)):
            problems.append(f"{rid}: parameter {name!r} is not in cards/parameters.yaml")
        for key in sorted(u.orders - set(book.orders.services)):
            problems.append(f"{rid}: order {key!r} is not a service in cards/orders.yaml")
        for key in sorted(u.medications - set(book.orders.medications)):
            problems.append(f"{rid}: medication {key!r} is not in cards/orders.yaml")
        for key in sorted(u.regimens - set(regimens)):
            problems.append(f"{rid}: regimen {key!r} is not in cards/regimens.yaml")
        for key in sorted(u.suggestions - labelled):
            problems.append(f"{rid}: suggestion {key!r} has no label")
        own_notes = set(card.notes) | set(book.common.notes)
        for key in sorted(u.notes - own_notes):
            problems.append(f"{rid}: note {key!r} is not in its card file or common.yaml")
    for rid in set(book.cards) - set(rules):
        problems.append(f"cards/rules/{rid}.yaml has no rule")
    # Regimens: every drug is a medication order; $dose only with a default.
    for key, reg in regimens.items():
        for drug in reg.drugs:
            for order in (drug.order, drug.reduced_order):
                if order is not None and order not in book.orders.medications:
                    problems.append(f"regimens.{key}: {order!r} is not in cards/orders.yaml")
            for ingredient in (drug.ingredient, *drug.also):
                if ingredient is not None and ingredient not in t.medications.classes:
                    problems.append(f"regimens.{key}: unknown ingredient {ingredient!r}")
            if drug.ingredient == "capecitabine" and drug.renal_reduced_dose is None:
                problems.append(f"regimens.{key}: capecitabine needs a renal_reduced_dose (D8)")
            if _placeholders(drug.dose) - {"dose"}:
                problems.append(f"regimens.{key}: unknown placeholder in a dose")
            if "dose" in _placeholders(drug.dose) and reg.default_dose is None:
                problems.append(f"regimens.{key}: a dose has $dose but no default_dose")
            if re.search(r"\blabel\b|\bor every\b", drug.dose, flags=re.IGNORECASE):
                problems.append(f"regimens.{key}: {drug.order} dose is not orderable as written")
    # Every emitted code must be verified or seen, never UNVERIFIED (terminology.md).
    for key, med in book.orders.medications.items():
        if med.rxnorm is not None and med.rxnorm not in t.medications.displays:
            problems.append(f"orders.{key}: RxNorm {med.rxnorm} is not in medications.yaml")
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
    # The caller-scoped, secret-keyed patient key (cds.snooze.patient_key): card uuids derive
    # from it, so no other caller can compute them (issue 28 item 1) and a hookInstance reused
    # for another patient gives other cards (item 4). Deterministic per call all the same.
    patient_key: str = ""
    encounter_id: str | None
    facts: PatientFacts
    drafts: DraftOrders


def _coding(c: Coding) -> dict[str, str]:
    out = {"system": c.system, "code": c.code}
    if c.display:
        out["display"] = c.display
    return out


@dataclass(frozen=True, slots=True)
class _CardParts:
    source: schemas.Source
    override_reasons: tuple[schemas.OverrideReason, ...]
    links: tuple[schemas.Link, ...]


class Renderer:
    def __init__(
        self,
        book: CardBook,
        rules: Mapping[str, Rule],
        versions: Mapping[str, tuple[str, date | None]] | None = None,
    ) -> None:
        self.book = book
        # Each card names its rule's version and, once clinicians have signed that version,
        # the review date (cds.review); only unreviewed rules carry the research-draft banner.
        self._review_ext: dict[str, dict[str, str]] = {}
        self._reviewed: set[str] = set()
        for rid, (version, reviewed) in (versions or {}).items():
            ext = {EXT_RULE_VERSION: version}
            if reviewed is not None:
                ext[EXT_REVIEWED] = reviewed.isoformat()
                self._reviewed.add(rid)
            self._review_ext[rid] = ext
        # Built once: the parameter values each rule's card texts may name.
        self._params = {
            rid: parameter_bindings(book.parameters, r.uses.parameters) for rid, r in rules.items()
        }
        intent = book.orders.treatment_intent
        self._intent = {
            "url": intent.url,
            "valueCodeableConcept": {
                "coding": [_coding(book.terminology[intent.valueset].coding(intent.code))]
            },
        }
        # What a card or an order says whatever the patient: built (and validated) once, then
        # shared by every response, which only ever reads them.
        self._static = {rid: self._card_parts(spec) for rid, spec in book.cards.items()}
        t = book.terminology
        self._medication_concepts: dict[str, dict[str, Any]] = {}
        for key, med in book.orders.medications.items():
            concept: dict[str, Any] = {"text": med.name}
            if med.rxnorm is not None:
                concept["coding"] = [_coding(t.medications.rxnorm_coding(med.rxnorm, t.rxnorm))]
            self._medication_concepts[key] = concept
        self._service_codes: dict[str, dict[str, Any]] = {}
        for key, svc in book.orders.services.items():
            code: dict[str, Any] = {"text": svc.name}
            if svc.valueset is not None and svc.code is not None:
                code["coding"] = [_coding(t[svc.valueset].coding(svc.code))]
            self._service_codes[key] = code

    def _card_parts(self, spec: CardFile) -> _CardParts:
        return _CardParts(
            source=schemas.Source(
                label=spec.source.label,
                url=spec.source.url,
                topic=schemas.Coding(
                    system=TOPIC_SYSTEM, code=spec.topic.code, display=spec.topic.display
                ),
            ),
            override_reasons=tuple(
                schemas.OverrideReason(
                    system=self.book.overrides.system,
                    code=code,
                    display=self.book.overrides.codes[code],
                )
                for code in spec.override_reasons
            ),
            links=tuple(
                schemas.Link(label=li.label, url=li.url, type="absolute") for li in spec.links
            ),
        )

    def render(self, decision: Decision, ctx: RenderContext) -> schemas.Card:
        spec = self.book.cards[decision.rule]
        variant = spec.variants[decision.variant]
        card_id = uuid.uuid5(
            CARD_NAMESPACE, f"{ctx.patient_key}|{ctx.hook_instance}|{decision.concern}"
        )
        bindings = {**self._params[decision.rule], **decision.bindings}
        suggestions = [self._suggestion(decision.rule, p, ctx, card_id) for p in decision.proposals]
        parts = self._static[decision.rule]
        return schemas.Card(
            uuid=str(card_id),
            summary=_sentence(Template(variant.summary).substitute(bindings)),
            detail=self._detail(decision, spec, variant, bindings, ctx.facts),
            indicator=decision.indicator,
            source=parts.source,
            suggestions=suggestions or None,
            selectionBehavior=spec.selection if suggestions else None,
            overrideReasons=list(parts.override_reasons),
            links=list(parts.links) or None,
            extension={
                EXT_RULE: decision.rule,
                EXT_VARIANT: decision.variant,
                **self._review_ext.get(decision.rule, {}),
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
        notes = [
            Template(self.book.note(d.rule, k)).safe_substitute(bindings) for k in d.note_keys
        ] + list(d.notes)
        if facts.excluded:
            kinds = ", ".join(sorted({f"{e.resource_type} ({e.location})" for e in facts.excluded}))
            notes.append(
                f"{len(facts.excluded)} resource(s) could not be read and were left out: {kinds}. "
                "This recommendation may be incomplete."
            )
        if notes:
            parts.append("**Notes**\n" + "\n".join(f"- {n}" for n in notes))
        parts.append(f"**Evidence**: {spec.evidence}")
        if d.rule not in self._reviewed:
            parts.append(f"_{self.book.common.disclaimer}_")
        return "\n\n".join(parts)

    def _suggestion(
        self, rule: str, p: Proposal, ctx: RenderContext, card_id: uuid.UUID
    ) -> schemas.Suggestion:
        label = Template(self.book.suggestion_label(rule, p.key)).safe_substitute(
            {"dose": self._regimen_dose(p), **p.label_bindings}
        )
        actions = []
        for a in p.actions:
            if isinstance(a, Order):
                actions.append(self._create(a, ctx))
            elif isinstance(a, RegimenOrder):
                regimen = self.book.parameters.regimens[a.key]
                dose = a.dose or regimen.default_dose or ""
                reduced = dose != (regimen.default_dose or "")
                for drug in regimen.drugs:
                    order = drug.reduced_order if reduced and drug.reduced_order else drug.order
                    text = drug.dose
                    if a.renal_reduced and drug.renal_reduced_dose is not None:
                        text = drug.renal_reduced_dose
                    actions.append(
                        self._create_medication(order, Template(text).substitute(dose=dose), ctx)
                    )
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

    def _regimen_dose(self, p: Proposal) -> str:
        for a in p.actions:
            if isinstance(a, RegimenOrder):
                return a.dose or self.book.parameters.regimens[a.key].default_dose or ""
        return ""

    def _base(self, ctx: RenderContext) -> dict[str, Any]:
        base: dict[str, Any] = {
            "status": "draft",
            "intent": "proposal",
            "subject": {"reference": f"Patient/{ctx.patient_id}"},
        }
        if ctx.encounter_id:
            base["encounter"] = {"reference": f"Encounter/{ctx.encounter_id}"}
        return base

    def _create_medication(self, key: str, dose: str, ctx: RenderContext) -> schemas.Action:
        med = self.book.orders.medications[key]
        resource = {
            "resourceType": "MedicationRequest",
            **self._base(ctx),
            "medicationCodeableConcept": self._medication_concepts[key],
            "dosageInstruction": [{"text": dose}],
            "extension": [self._intent],
        }
        reason = self._reason(ctx)
        if reason:
            resource["reasonReference"] = reason
        return schemas.Action(
            type="create", description=f"Propose {med.name}: {dose}", resource=resource
        )

    def _create(self, order: Order, ctx: RenderContext) -> schemas.Action:
        svc = self.book.orders.services[order.key]
        resource = {
            "resourceType": "ServiceRequest",
            **self._base(ctx),
            "code": self._service_codes[order.key],
        }
        reason = self._reason(ctx)
        if reason:
            resource["reasonReference"] = reason
        return schemas.Action(type="create", description=f"Order {svc.name}", resource=resource)

    def _update(self, a: UpdateDraft, ctx: RenderContext) -> schemas.Action:
        """The draft as sent with only its dose changed: route, infusion time and interval stay
        (clinical-logic §3b C2)."""
        draft = next((m for m in ctx.drafts.medications if m.ref == a.draft_ref), None)
        resource: dict[str, Any] = copy.deepcopy(draft.raw) if draft else {}
        dosage = resource.get("dosageInstruction")
        dosage = list(dosage) if isinstance(dosage, list) and dosage else [{}]
        first = dict(dosage[0]) if isinstance(dosage[0], dict) else {}
        new_dose = f"{a.dose_mg:g} mg"
        text = first.get("text")
        if isinstance(text, str) and _DOSE_IN_TEXT.search(text):
            first["text"] = _DOSE_IN_TEXT.sub(new_dose, text, count=1)
        elif isinstance(text, str) and text.strip():
            first["text"] = f"{new_dose}; {text}"
        else:
            first["text"] = new_dose
        quantity = {"value": a.dose_mg, "unit": "mg", "system": UCUM, "code": "mg"}
        rates = [dict(r) for r in first.get("doseAndRate") or () if isinstance(r, dict)]
        replaced = False
        for rate in rates:
            if "doseQuantity" in rate:
                rate["doseQuantity"] = quantity
                replaced = True
        first["doseAndRate"] = rates if replaced else [{"doseQuantity": quantity}, *rates]
        resource["dosageInstruction"] = [first, *dosage[1:]]
        if a.recode_order is not None:
            resource["medicationCodeableConcept"] = self._medication_concepts[a.recode_order]
        return schemas.Action(
            type="update",
            description=f"Change the dose of {a.draft_ref} to {new_dose} (nothing else changes)",
            resource=resource,
        )
