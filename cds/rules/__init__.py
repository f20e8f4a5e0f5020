"""Guideline rules: small pure functions (facts, parameters, as_of) → Decisions.

A rule never reads the clock, does no I/O and holds no literal threshold or code: thresholds are
Parameters, codes are value sets and order templates in cards/, sentences are card templates.
Every rule function's docstring cites its guideline section; the catalog renders it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, NewType

from cds.facts import PatientFacts
from cds.facts.orders import DraftOrders
from cds.parameters import Parameters
from cds.said import Said

Indicator = Literal["info", "warning", "critical"]
Hook = Literal["patient-view", "order-select", "order-sign"]
PATIENT_VIEW: tuple[Hook, ...] = ("patient-view",)
ORDER_HOOKS: tuple[Hook, ...] = ("order-select", "order-sign")
ALL_HOOKS: tuple[Hook, ...] = (*PATIENT_VIEW, *ORDER_HOOKS)
INDICATOR_RANK: Mapping[Indicator, int] = {"critical": 0, "warning": 1, "info": 2}
# A key of a detail paragraph in a card file (or common.yaml). Its own type, so that a key can
# never be rendered as if it were the sentence (and a sentence never looked up as a key).
NoteKey = NewType("NoteKey", str)


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    """A proposed service order (test, referral, imaging) from cards/orders.yaml."""

    key: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RegimenOrder:
    """Every drug of a regimen from cards/regimens.yaml, each with the regimen's own dose.

    `dose` fills a regimen dose written with $dose (the zoledronic acid renal band).
    """

    key: str
    dose: str | None = None
    # Each drug at its renal_reduced_dose where it has one (capecitabine at CrCl 30-50, D8).
    renal_reduced: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateDraft:
    """Change the dose of a draft MedicationRequest, and nothing else (order hooks)."""

    draft_ref: str
    dose_mg: float
    # A medication order of cards/orders.yaml whose coding replaces the draft's: a dose below a
    # product's own strength is coded at ingredient level (clinical-logic §3c D9).
    recode_order: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteDraft:
    draft_ref: str


Action = Order | RegimenOrder | UpdateDraft | DeleteDraft


@dataclass(frozen=True, slots=True, kw_only=True)
class Proposal:
    """One suggestion: its label template key and its actions (AND'ed, as in CDS Hooks)."""

    key: str
    actions: tuple[Action, ...]
    label_bindings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    variant: str
    # Stamped by the rule that returns it (`rule` below): a rule function never types its id.
    rule: str = ""
    indicator: Indicator
    bindings: Mapping[str, str | Said] = field(default_factory=dict)  # card-text values
    data: tuple[Said, ...] = ()  # the patient's own data that triggered it, with dates
    missing: tuple[Said, ...] = ()
    notes: tuple[Said, ...] = ()  # lines computed from the data (left-out regimens)
    refs: tuple[str, ...] = ()
    proposals: tuple[Proposal, ...] = ()
    note_keys: tuple[NoteKey, ...] = ()  # detail paragraphs from the card file
    # The second and later decisions of one concern about other records (two drafts each
    # above its label dose): numbered by `evaluate`, so that each keeps its own card.
    instance: int = 1

    @property
    def concern(self) -> str:
        base = f"{self.rule}:{self.variant}"
        return base if self.instance == 1 else f"{base}#{self.instance}"


RuleFn = Callable[[PatientFacts, DraftOrders, Parameters], list[Decision]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Uses:
    """What a rule reads and names, declared beside it and resolved when knowledge loads.

    Value sets include those behind the facts the rule reads; parameters include thresholds
    the facts apply for it. A name that does not resolve stops the service at start-up (and
    fails `cds check`) instead of failing a call.
    """

    valuesets: frozenset[str] = frozenset()
    ingredients: frozenset[str] = frozenset()
    parameters: frozenset[str] = frozenset()
    orders: frozenset[str] = frozenset()
    medications: frozenset[str] = frozenset()
    regimens: frozenset[str] = frozenset()
    suggestions: frozenset[str] = frozenset()
    notes: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    id: str
    hooks: tuple[Hook, ...]
    variants: frozenset[str]
    bindings: frozenset[str]
    uses: Uses
    fn: RuleFn
    # Runs only for breast cancer (F1), as every rule but R0b: it says when F1's own evidence
    # could not be read, so it runs before F1 is known to hold.
    after_f1: bool = True

    @property
    def doc(self) -> str:
        return self.fn.__doc__ or ""

    def undeclared(self, d: Decision) -> set[str]:
        """Keys a decision names that the rule did not declare (a test runs every scenario)."""
        u = self.uses
        out = {f"note {k}" for k in d.note_keys if k not in u.notes}
        for prop in d.proposals:
            if prop.key not in u.suggestions and prop.key not in u.regimens:
                out.add(f"suggestion {prop.key}")
            for a in prop.actions:
                if isinstance(a, Order) and a.key not in u.orders:
                    out.add(f"order {a.key}")
                if isinstance(a, RegimenOrder) and a.key not in u.regimens:
                    out.add(f"regimen {a.key}")
                if (
                    isinstance(a, UpdateDraft)
                    and a.recode_order is not None
                    and a.recode_order not in u.medications
                ):
                    out.add(f"medication {a.recode_order}")
        if d.variant not in self.variants:
            out.add(f"variant {d.variant}")
        return out


RULES: dict[str, Rule] = {}


def rule(
    rule_id: str,
    *,
    hooks: tuple[Hook, ...],
    variants: tuple[str, ...],
    bindings: tuple[str, ...] = (),
    valuesets: tuple[str, ...] = (),
    ingredients: tuple[str, ...] = (),
    parameters: tuple[str, ...] = (),
    orders: tuple[str, ...] = (),
    medications: tuple[str, ...] = (),
    regimens: tuple[str, ...] = (),
    suggestions: tuple[str, ...] = (),
    notes: tuple[str, ...] = (),
    after_f1: bool = True,
) -> Callable[[RuleFn], RuleFn]:
    """Register a rule with everything it uses; all of it is cross-checked with cards/."""

    def register(fn: RuleFn) -> RuleFn:
        if rule_id in RULES:
            raise ValueError(f"rule {rule_id} registered twice")

        @functools.wraps(fn)
        def decide(facts: PatientFacts, drafts: DraftOrders, params: Parameters) -> list[Decision]:
            return [replace(d, rule=rule_id) for d in fn(facts, drafts, params)]

        RULES[rule_id] = Rule(
            id=rule_id,
            hooks=hooks,
            variants=frozenset(variants),
            bindings=frozenset(bindings),
            uses=Uses(
                valuesets=frozenset(valuesets),
                ingredients=frozenset(ingredients),
                parameters=frozenset(parameters),
                orders=frozenset(orders),
                medications=frozenset(medications),
                regimens=frozenset(regimens),
                suggestions=frozenset(suggestions),
                notes=frozenset(notes),
            ),
            fn=decide,
            after_f1=after_f1,
        )
        return decide

    return register


def load_rules() -> Mapping[str, Rule]:
    """Import the rule modules (their decorators fill RULES) and return the registry."""
    from cds.rules import (  # noqa: F401
        anthracycline,
        bisphosphonates,
        bma_orders,
        bma_overlap,
        bone,
        bone_calcium,
        brain,
        chemo_orders,
        dental,
        endocrine,
        her2,
        her2_doses,
        her2_orders,
        her2low,
        ild,
        lvef,
        not_to_give,
        pertuzumab,
        receptors,
        spine,
        tki_orders,
        tki_overlap,
        unread,
    )

    return RULES


def evaluate(
    hook: str, facts: PatientFacts, drafts: DraftOrders, params: Parameters
) -> list[Decision]:
    """All rules for the hook, gated on F1; one decision per concern, critical first."""
    breast_cancer = facts.disease.breast_cancer.present
    if not (breast_cancer or facts.breast_cancer_left_out):
        return []  # most charts an EHR opens: not this service's patients
    if facts.deceased:
        return []  # no treatment is suggested for a patient recorded as deceased
    seen: dict[str, Decision] = {}
    for r in load_rules().values():
        if hook not in r.hooks or (r.after_f1 and not breast_cancer):
            continue
        for d in r.fn(facts, drafts, params):
            _keep(seen, d)
    return sorted(
        seen.values(), key=lambda d: (INDICATOR_RANK[d.indicator], d.rule, d.variant, d.instance)
    )


def _keep(seen: dict[str, Decision], d: Decision) -> None:
    """One card per concern and records: a decision about records an earlier one of its
    concern already names is the same card (R2c seen from each of two drafts); about other
    records (a second draft above its own label dose) it is numbered and kept, never dropped."""
    concern = d.concern
    if concern not in seen:  # the common case, decided in one look-up
        seen[concern] = d
        return
    kept = [k for k in seen.values() if k.rule == d.rule and k.variant == d.variant]
    if any(set(d.refs) <= set(k.refs) for k in kept):
        return
    d = replace(d, instance=len(kept) + 1)
    seen[d.concern] = d
