"""Guideline rules: small pure functions (facts, parameters, as_of) → Decisions.

A rule never reads the clock, does no I/O and holds no literal threshold or code: thresholds are
Parameters, codes are value sets and order templates in cards/, sentences are card templates.
Every rule function's docstring cites its guideline section; the catalog renders it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from cds.facts import PatientFacts
from cds.facts.orders import DraftOrders
from cds.parameters import Parameters

Indicator = Literal["info", "warning", "critical"]
Hook = Literal["patient-view", "order-select", "order-sign"]
PATIENT_VIEW: tuple[Hook, ...] = ("patient-view",)
ORDER_HOOKS: tuple[Hook, ...] = ("order-select", "order-sign")
INDICATOR_RANK: Mapping[Indicator, int] = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    """A proposed order from cards/orders.yaml: `key` names the template, `dose` may override."""

    key: str
    dose: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateDraft:
    """Change the dose of a draft MedicationRequest (order hooks)."""

    draft_ref: str
    dose: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteDraft:
    draft_ref: str


Action = Order | UpdateDraft | DeleteDraft


@dataclass(frozen=True, slots=True, kw_only=True)
class Proposal:
    """One suggestion: its label template key and its actions (AND'ed, as in CDS Hooks)."""

    key: str
    actions: tuple[Action, ...]
    label_bindings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    rule: str
    variant: str
    indicator: Indicator
    bindings: Mapping[str, str] = field(default_factory=dict)
    data: tuple[str, ...] = ()  # the patient's own data that triggered it, with dates
    missing: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # caveats computed from the data (renal, cardiac, discordance)
    refs: tuple[str, ...] = ()
    proposals: tuple[Proposal, ...] = ()
    note_keys: tuple[str, ...] = ()  # extra detail paragraphs from the card file

    @property
    def concern(self) -> str:
        return f"{self.rule}:{self.variant}"


RuleFn = Callable[[PatientFacts, DraftOrders, Parameters], list[Decision]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    id: str
    hooks: tuple[Hook, ...]
    variants: frozenset[str]
    bindings: frozenset[str]
    fn: RuleFn

    @property
    def doc(self) -> str:
        return self.fn.__doc__ or ""


RULES: dict[str, Rule] = {}


def rule(
    rule_id: str,
    *,
    hooks: tuple[Hook, ...],
    variants: tuple[str, ...],
    bindings: tuple[str, ...] = (),
) -> Callable[[RuleFn], RuleFn]:
    """Register a rule; its variants and bindings are cross-checked with its card file."""

    def register(fn: RuleFn) -> RuleFn:
        if rule_id in RULES:
            raise ValueError(f"rule {rule_id} registered twice")
        RULES[rule_id] = Rule(
            id=rule_id,
            hooks=hooks,
            variants=frozenset(variants),
            bindings=frozenset(bindings),
            fn=fn,
        )
        return fn

    return register


def load_rules() -> Mapping[str, Rule]:
    """Import the rule modules (their decorators fill RULES) and return the registry."""
    from cds.rules import bone, cardiac, her2, receptors, spine  # noqa: F401

    return RULES


def evaluate(
    hook: str, facts: PatientFacts, drafts: DraftOrders, params: Parameters
) -> list[Decision]:
    """All rules for the hook, gated on F1; one decision per concern, critical first."""
    if not facts.disease.breast_cancer.present:
        return []
    seen: dict[str, Decision] = {}
    for r in load_rules().values():
        if hook not in r.hooks:
            continue
        for d in r.fn(facts, drafts, params):
            seen.setdefault(d.concern, d)
    return sorted(seen.values(), key=lambda d: (INDICATOR_RANK[d.indicator], d.rule, d.variant))


def on(value: object) -> str:
    """A date or value for card text; 'date unknown' rather than an empty string."""
    if value is None:
        return "date unknown"
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)
