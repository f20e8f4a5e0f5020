"""Decision → Card: a rule's decision rendered as the CDS Hooks card an EHR shows, from the
card knowledge (cds.card_book) and the patient's facts."""

from __future__ import annotations

import copy
import functools
import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from string import Template
from typing import Any

from cds import schemas
from cds.card_book import CardBook, CardFile, SourceSpec, VariantSpec, parameter_bindings
from cds.facts import PatientFacts
from cds.facts.orders import DraftOrders
from cds.fhir.elements import json_list
from cds.rules import Decision, DeleteDraft, Order, Proposal, RegimenOrder, Rule, UpdateDraft
from cds.terminology import Coding

TOPIC_SYSTEM = "https://cds-mbc-bone.example.org/CodeSystem/card-topic"
CARD_NAMESPACE = uuid.UUID("6f1c3a52-8c1e-4a57-9a77-3f1d1f0a9b21").bytes
# Card extension keys (CDS Hooks reserves `extension`; names are reverse-domain style).
EXT_RULE = "org.cds-mbc-bone.rule"
EXT_VARIANT = "org.cds-mbc-bone.variant"
EXT_RULE_VERSION = "org.cds-mbc-bone.rule-version"  # cds.review: the content digest's prefix
EXT_REVIEWED = "org.cds-mbc-bone.reviewed"  # the date clinicians signed this rule version
EXT_EVIDENCE = "org.cds-mbc-bone.evidence"
UCUM = "http://unitsofmeasure.org"
# The first mass dose written in a dosage text ("4 mg", "4.0 mg"), which an update replaces.
_DOSE_IN_TEXT = re.compile(r"(?<![\w.])\d+(?:\.\d+)?\s*mg(?![\w/])", re.IGNORECASE)


def _uuid5(namespace: bytes, name: str) -> bytes:
    """`uuid.uuid5(UUID(bytes=namespace), name).bytes` without building UUID objects: a card
    and each of its suggestions need one, and the objects cost more than the hash."""
    h = bytearray(hashlib.sha1(namespace + name.encode()).digest()[:16])  # noqa: S324 - RFC 4122
    h[6] = (h[6] & 0x0F) | 0x50  # version 5
    h[8] = (h[8] & 0x3F) | 0x80  # the RFC 4122 variant
    return bytes(h)


def _suggestion_names(proposals: Sequence[Proposal]) -> list[str]:
    """What names each suggestion in its card's uuid namespace: its key, and the key with its
    count when a card offers the same kind again ("keep-one" for each of two products). The
    spec's suggestion uuid identifies the one accepted: one name for two gave both one uuid."""
    seen: dict[str, int] = {}
    names = []
    for p in proposals:
        seen[p.key] = seen.get(p.key, 0) + 1
        names.append(p.key if seen[p.key] == 1 else f"{p.key}/{seen[p.key]}")
    return names


def _uuid_text(b: bytes) -> str:
    """The 8-4-4-4-12 text of a uuid, as str(uuid.UUID(bytes=b))."""
    x = b.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


_Run = str | tuple[str, str]  # literal text, or (placeholder name, the placeholder as written)


@functools.lru_cache(maxsize=1024)
def _runs(text: str) -> tuple[_Run, ...] | None:
    """A string.Template text split once into literal runs and placeholders; None when it
    holds an ill-formed `$` (string.Template then says what is wrong)."""
    runs: list[_Run] = []
    at = 0
    for mo in Template.pattern.finditer(text):
        if mo.group("invalid") is not None:
            return None
        runs.append(text[at : mo.start()])
        at = mo.end()
        name = mo.group("named") or mo.group("braced")
        runs.append("$" if name is None else (name, mo.group()))
    runs.append(text[at:])
    return tuple(r for r in runs if r)


def _fill(text: str, values: Mapping[str, object], *, safe: bool = False) -> str:
    """`Template(text).substitute(values)` (`safe`: safe_substitute, which leaves a
    placeholder without a value as written), from the runs of the text split once instead of
    matching its pattern again for every card and action (with the uuids above, a fifteenth
    of the typical chart's evaluation)."""
    runs = _runs(text)
    if runs is None:
        return Template(text).safe_substitute(values) if safe else Template(text).substitute(values)
    out = []
    for run in runs:
        if isinstance(run, str):
            out.append(run)
        elif run[0] in values:
            out.append(str(values[run[0]]))
        elif safe:
            out.append(run[1])
        else:
            raise KeyError(run[0])
    return "".join(out)


def _sentence(text: str) -> str:
    """A summary that opens with a drug name ('zoledronic acid ...') starts with a capital."""
    return text[:1].upper() + text[1:]


# CDS Hooks 2.0: a card's summary SHALL be under 140 characters. Templates are checked at start-
# up, but a binding listing drugs can take a filled one past it (seven HER2 drugs drafted).
SUMMARY_LIMIT = 139


def _summary_within_limit(summary: str) -> str:
    """The summary cut at a word boundary with an ellipsis when the filled text is too long;
    the detail then opens with the whole of it (`_detail`), so nothing is lost."""
    if len(summary) <= SUMMARY_LIMIT:
        return summary
    cut = summary[: SUMMARY_LIMIT - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > 0 else cut).rstrip(" ,:;-") + "\u2026"


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
    """What a rule's cards say whatever the patient, as wire JSON, validated once."""

    source: dict[str, Any]
    override_reasons: list[dict[str, Any]]
    links: list[dict[str, Any]]


class Renderer:
    def __init__(
        self,
        book: CardBook,
        rules: Mapping[str, Rule],
        versions: Mapping[str, tuple[str, date | None]] | None = None,
    ) -> None:
        self.book = book
        self.text = book.sentences.text  # a Said line of a decision as the clinician reads it
        self._frame = book.common.card  # headings, the left-out note, action descriptions
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
        self._static_by_drug = {
            (rid, drug): self._card_parts(spec, source)
            for rid, spec in book.cards.items()
            for drug, source in spec.source_by_drug.items()
        }
        self._static_by_variant = {
            (rid, name): self._card_parts(spec, variant.source)
            for rid, spec in book.cards.items()
            for name, variant in spec.variants.items()
            if variant.source is not None
        }
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

    def _card_parts(self, spec: CardFile, source: SourceSpec | None = None) -> _CardParts:
        source = source or spec.source
        return _CardParts(
            source=schemas.Source(
                label=source.label,
                url=source.url,
                topic=schemas.Coding(
                    system=TOPIC_SYSTEM, code=spec.topic.code, display=spec.topic.display
                ),
            ).wire(),
            override_reasons=[
                schemas.OverrideReason(
                    system=self.book.overrides.system,
                    code=code,
                    display=self.book.overrides.codes[code],
                ).wire()
                for code in spec.override_reasons
            ],
            links=[
                schemas.Link(label=li.label, url=li.url, type="absolute").wire()
                for li in spec.links
            ],
        )

    def render(self, decision: Decision, ctx: RenderContext) -> dict[str, Any]:
        """The card as wire JSON (the field order of schemas.Card, absent fields left out):
        built as plain data, a third of the cost of building the models and dumping them; the
        scenario library validates every card against schemas.Card in the tests."""
        spec = self.book.cards[decision.rule]
        variant = spec.variants[decision.variant]
        card_id = _uuid5(
            CARD_NAMESPACE, f"{ctx.patient_key}|{ctx.hook_instance}|{decision.concern}"
        )
        text = self.text
        bindings = {
            **self._params[decision.rule],
            **{k: v if isinstance(v, str) else text(v) for k, v in decision.bindings.items()},
        }
        names = _suggestion_names(decision.proposals)
        suggestions = [
            self._suggestion(decision.rule, p, ctx, _uuid5(card_id, name))
            for p, name in zip(decision.proposals, names, strict=True)
        ]
        parts = self._static[decision.rule]
        drug = decision.bindings.get("drug")
        if isinstance(drug, str):  # a card about one drug of several cites its own label
            parts = self._static_by_drug.get((decision.rule, drug), parts)
        parts = self._static_by_variant.get((decision.rule, decision.variant), parts)
        summary = _sentence(_fill(variant.summary, bindings))
        card: dict[str, Any] = {
            "uuid": _uuid_text(card_id),
            "summary": _summary_within_limit(summary),
            "detail": self._detail(decision, spec, variant, bindings, ctx.facts, summary),
            "indicator": decision.indicator,
            "source": parts.source,
        }
        if suggestions:
            card["suggestions"] = suggestions
            card["selectionBehavior"] = spec.selection
        card["overrideReasons"] = parts.override_reasons
        if parts.links:
            card["links"] = parts.links
        card["extension"] = {
            EXT_RULE: decision.rule,
            EXT_VARIANT: decision.variant,
            **self._review_ext.get(decision.rule, {}),
            **({EXT_EVIDENCE: list(dict.fromkeys(decision.refs))} if decision.refs else {}),
        }
        return card

    def _detail(
        self,
        d: Decision,
        spec: CardFile,
        variant: VariantSpec,
        bindings: Mapping[str, str],
        facts: PatientFacts,
        summary: str,
    ) -> str:
        parts = [_fill(variant.detail, bindings).strip()]
        if len(summary) > SUMMARY_LIMIT:
            parts.insert(0, f"**{summary}**")
        text, frame = self.text, self._frame
        if d.data:
            parts.append(frame.patient_data + "\n" + "\n".join(f"- {text(x)}" for x in d.data))
        if d.missing:
            parts.append(frame.missing_data + "\n" + "\n".join(f"- {text(x)}" for x in d.missing))
        notes = [_fill(self.book.note(d.rule, k), bindings, safe=True) for k in d.note_keys] + [
            text(x) for x in d.notes
        ]
        if facts.excluded and not spec.names_left_out:
            kinds = ", ".join(sorted({f"{e.resource_type} ({e.location})" for e in facts.excluded}))
            notes.append(_fill(frame.left_out, {"count": len(facts.excluded), "kinds": kinds}))
        if notes:
            parts.append(frame.notes + "\n" + "\n".join(f"- {n}" for n in notes))
        parts.append(_fill(frame.evidence, {"evidence": spec.evidence}))
        if d.rule not in self._reviewed:
            parts.append(f"_{self.book.common.disclaimer}_")
        return "\n\n".join(parts)

    def _suggestion(
        self, rule: str, p: Proposal, ctx: RenderContext, suggestion_id: bytes
    ) -> dict[str, Any]:
        label = _fill(
            self.book.suggestion_label(rule, p.key),
            {"dose": self._regimen_dose(p), **p.label_bindings},
            safe=True,
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
                    actions.append(self._create_medication(order, _fill(text, {"dose": dose}), ctx))
            elif isinstance(a, UpdateDraft):
                actions.append(self._update(a, ctx))
            elif isinstance(a, DeleteDraft):
                actions.append(
                    {
                        "type": "delete",
                        "description": _fill(self._frame.delete_draft, {"draft": a.draft_ref}),
                        "resourceId": a.draft_ref,
                    }
                )
        suggestion: dict[str, Any] = {"label": label, "uuid": _uuid_text(suggestion_id)}
        if actions:
            suggestion["actions"] = actions
        return suggestion

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

    def _create_medication(self, key: str, dose: str, ctx: RenderContext) -> dict[str, Any]:
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
        return {
            "type": "create",
            "description": _fill(
                self._frame.propose_medication, {"medication": med.name, "dose": dose}
            ),
            "resource": resource,
        }

    def _create(self, order: Order, ctx: RenderContext) -> dict[str, Any]:
        svc = self.book.orders.services[order.key]
        resource = {
            "resourceType": "ServiceRequest",
            **self._base(ctx),
            "code": self._service_codes[order.key],
        }
        reason = self._reason(ctx)
        if reason:
            resource["reasonReference"] = reason
        description = _fill(self._frame.order_service, {"service": svc.name})
        return {"type": "create", "description": description, "resource": resource}

    def _update(self, a: UpdateDraft, ctx: RenderContext) -> dict[str, Any]:
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
        # As the draft was read: one rate sent as an object is a list of one; a value that is
        # neither carries no dose to keep.
        rates = [dict(r) for r in json_list(first.get("doseAndRate")) if isinstance(r, dict)]
        replaced = False
        for rate in rates:
            if "doseQuantity" in rate:
                rate["doseQuantity"] = quantity
                replaced = True
        first["doseAndRate"] = rates if replaced else [{"doseQuantity": quantity}, *rates]
        resource["dosageInstruction"] = [first, *dosage[1:]]
        if a.recode_order is not None:
            _name_medicine(resource, self._medication_concepts[a.recode_order])
        return {
            "type": "update",
            "description": _fill(self._frame.update_dose, {"draft": a.draft_ref, "dose": new_dose}),
            "resource": resource,
        }


def _name_medicine(resource: dict[str, Any], medicine: dict[str, Any]) -> None:
    """The order's medicine named by `medicine` in place of what named it: medication[x] is
    one element, so a draft that named its Medication by reference loses the reference, and a
    Medication contained for it alone goes too (FHIR R4 dom-3: a contained resource is
    referenced from its container)."""
    reference = resource.pop("medicationReference", None)
    resource["medicationCodeableConcept"] = medicine
    target = reference.get("reference") if isinstance(reference, dict) else None
    contained = resource.get("contained")
    if not (isinstance(target, str) and target.startswith("#") and isinstance(contained, list)):
        return
    if _refers_to(resource, target):
        return  # still referenced from elsewhere in the order
    kept = [c for c in contained if not (isinstance(c, dict) and c.get("id") == target[1:])]
    if kept:
        resource["contained"] = kept
    else:
        del resource["contained"]


def _refers_to(value: object, target: str) -> bool:
    """Whether a Reference in `value` names `target`."""
    if isinstance(value, dict):
        return value.get("reference") == target or any(
            _refers_to(v, target) for v in value.values()
        )
    return isinstance(value, list) and any(_refers_to(v, target) for v in value)
