"""The card knowledge: cards/rules/*.yaml (card texts, citations, override reasons), common
texts, orders and override reasons - loaded, validated and cross-checked with the rule registry
at start-up.

Everything a clinician reads comes from these files. Every rule has a card file whose variants
match, every template placeholder is a binding the rule provides, every suggestion, note and
order a rule can name exists, no text writes out a threshold a parameter holds, and every
emitted code is a verified or seen code of the terminology.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Literal

from pydantic import Field

from cds.errors import ConfigError
from cds.facts.lab_results import READ_UNITS
from cds.fhir.screening import CONDITION_SETS
from cds.knowledge_file import KnowledgeFile, read_model, read_yaml
from cds.parameters import Parameters
from cds.rules import Rule
from cds.rules.oral_doses import DOSE_PARTNER_CLASSES
from cds.said import Sentences, check, sayings
from cds.terminology import Terminology


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
    # A variant whose evidence is not the card's (a trial's dose where the US label gives none)
    # cites its own source, before the drug's and the card's.
    source: SourceSpec | None = None


class CardFile(KnowledgeFile):
    rule: str
    title: str
    topic: Topic
    source: SourceSpec
    # A card about one of several drugs cites that drug's own label (its `drug` binding); the
    # source above is the rest's.
    source_by_drug: dict[str, SourceSpec] = Field(default_factory=dict)
    evidence: str
    selection: Literal["at-most-one", "any"]
    override_reasons: list[str] = Field(min_length=1)
    links: list[LinkSpec] = Field(default_factory=list)
    variants: dict[str, VariantSpec]
    suggestions: dict[str, str] = Field(default_factory=dict)
    notes: dict[str, str] = Field(default_factory=dict)
    # The card's subject is the resources left out (R0b): the frame's note on them is not repeated.
    names_left_out: bool = False


class FrameTexts(KnowledgeFile):
    """What every card says around its rule's own text: the detail's headings, the note on
    resources left out, and the description of each kind of action."""

    patient_data: str
    missing_data: str
    notes: str
    evidence: str  # $evidence
    left_out: str  # $count, $kinds
    propose_medication: str  # $medication, $dose
    order_service: str  # $service
    update_dose: str  # $draft, $dose
    delete_draft: str  # $draft


# The placeholders each frame text may use (checked at start-up).
FRAME_PLACEHOLDERS = {
    "evidence": {"evidence"},
    "left_out": {"count", "kinds"},
    "propose_medication": {"medication", "dose"},
    "order_service": {"service"},
    "update_dose": {"draft", "dose"},
    "delete_draft": {"draft"},
}


class CommonFile(KnowledgeFile):
    disclaimer: str
    suggestions: dict[str, str]
    notes: dict[str, str]
    card: FrameTexts


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
    sentences: Sentences

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
        sentences=Sentences(read_sentences(cards_dir / "sentences.yaml")),
    )
    problems = cross_check(book, rules)
    problems += check(book.sentences.templates, sayings(speaking_modules()))
    if problems:
        raise ConfigError("knowledge files do not match the rules:\n  " + "\n  ".join(problems))
    return book


def read_sentences(path: Path) -> dict[str, str]:
    """cards/sentences.yaml: key → template (str.format placeholders, `{value:g}`)."""
    data = read_yaml(path)
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise ConfigError(f"{path}: must map each sentence key to its text")
    return data


def speaking_modules() -> list[Path]:
    """The modules whose say() calls the sentences are checked against: rules, facts, the
    FHIR reader and snoozing (a card shown again says why)."""
    package = Path(__file__).parent
    return [
        *(m for part in ("rules", "facts", "fhir") for m in sorted((package / part).glob("*.py"))),
        package / "snooze.py",
    ]


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
    """Every mismatch between the knowledge files and the rule registry, in words."""
    problems: list[str] = []
    for rid, r in rules.items():
        card = book.cards.get(rid)
        if card is None:
            problems.append(f"rule {rid} has no cards/rules/{rid}.yaml")
            continue
        problems += _card_problems(book, rid, r, card) + _uses_problems(book, rid, r, card)
    for rid in set(book.cards) - set(rules):
        problems.append(f"cards/rules/{rid}.yaml has no rule")
    problems += _regimen_problems(book) + _code_problems(book) + _frame_problems(book)
    problems += _dose_table_problems(book)
    problems += _ingredient_list_problems(book)
    return problems + _confirmation_problems(book) + _read_range_problems(book)


def _ingredient_list_problems(book: CardBook) -> list[str]:
    """Each ingredient a parameter lists is one cards/medications.yaml knows: a misspelt one
    would never match a record, silently."""
    known = book.terminology.medications.classes
    p = book.parameters
    lists = {
        "metastatic_setting_agents": p.metastatic_setting_agents,
        "metastatic_setting_pairs": tuple(i for pair in p.metastatic_setting_pairs for i in pair),
        "dose_charted_ingredients": p.dose_charted_ingredients,
    }
    return [
        f"{name}: {ingredient!r} is not in cards/medications.yaml"
        for name, ingredients in lists.items()
        for ingredient in ingredients
        if ingredient not in known
    ]


def _dose_table_problems(book: CardBook) -> list[str]:
    """Each oral drug's label dose (R6l, R6m), and each partner that changes it, is a medication
    the terminology knows, a partner of a class the rule looks for on the chart (a misspelt or
    unlooked-for one would never count, silently), and a trial's dose belongs to a rule whose
    card can say so."""
    known = book.terminology.medications.classes
    p = book.parameters
    tables = {
        **{
            f"kinase_inhibitor_doses.{key}": ("R6l", t)
            for key, t in p.kinase_inhibitor_doses.items()
        },
        "capecitabine_dose": ("R6m", p.capecitabine_dose),
    }
    problems = []
    for where, (rid, table) in tables.items():
        problems += [
            f"{where}: {name!r} is not in cards/medications.yaml"
            for name in (table.drug, *(pd.partner for pd in table.with_partner))
            if name not in known
        ]
        problems += [
            f"{where}: partner {pd.partner!r} ({known[pd.partner]}) is not of a class in "
            "cds.rules.oral_doses.DOSE_PARTNER_CLASSES"
            for pd in table.with_partner
            if pd.partner in known and known[pd.partner] not in DOSE_PARTNER_CLASSES
        ]
        # What the table asks its rule's card to say.
        needs = {
            "above-trial-dose": any(pd.trial for pd in table.with_partner),
            "divided-daily-dose": table.once_daily_only,
        }
        card = book.cards.get(rid)
        problems += [
            f"{where}: needs a {variant!r} variant, which cards/rules/{rid}.yaml lacks"
            for variant, needed in needs.items()
            if needed and card is not None and variant not in card.variants
        ]
    return problems


def _read_range_problems(book: CardBook) -> list[str]:
    """A read range is for a lab the facts read into a unit, and is given in that unit."""
    problems = []
    for vs_id, r in book.parameters.lab_read_ranges.items():
        unit = READ_UNITS.get(vs_id)
        if unit is None:
            problems.append(f"lab_read_ranges: {vs_id!r} is not a lab read into a unit")
        elif r.unit != unit:
            problems.append(f"lab_read_ranges: {vs_id} is read in {unit}, not {r.unit}")
    return problems


def _confirmation_problems(book: CardBook) -> list[str]:
    """`confirmed_only` acts where Conditions are screened: on another set it would do nothing."""
    return [
        f"valuesets/{vs_id}.yaml: confirmed_only, but Conditions are not screened by it"
        for vs_id, vs in book.terminology.value_sets.items()
        if vs.confirmed_only and vs_id not in CONDITION_SETS
    ]


def _card_problems(book: CardBook, rid: str, r: Rule, card: CardFile) -> list[str]:
    """A rule's card file: its variants, placeholders, thresholds, override reasons."""
    problems = []
    params = book.parameters
    if card.rule != rid:
        problems.append(f"cards/rules/{rid}.yaml says rule {card.rule}")
    if set(card.variants) != set(r.variants):
        problems.append(
            f"{rid}: card variants {sorted(card.variants)} != rule variants {sorted(r.variants)}"
        )
    allowed = set(r.bindings) | set(parameter_bindings(params, r.uses.parameters))
    for where, text in _texts(card):
        extra = _placeholders(text) - allowed
        if extra and not where.startswith("suggestions."):
            problems.append(f"{rid}.{where}: placeholders {sorted(extra)} are not bindings")
        for hit in restated_literals(text, params, r.uses.parameters):
            problems.append(f"{rid}.{where}: restates a parameter ({hit}); use a placeholder")
    if card.source_by_drug and "drug" not in r.bindings:
        problems.append(f"{rid}: source_by_drug, but the rule binds no drug")
    for drug in sorted(set(card.source_by_drug) - r.uses.ingredients):
        problems.append(f"{rid}: source_by_drug names {drug!r}, which the rule does not read")
    for code in card.override_reasons:
        if code not in book.overrides.codes:
            problems.append(f"{rid}: unknown override reason {code!r}")
    both = set(card.suggestions) & set(book.common.suggestions)
    both |= set(card.notes) & set(book.common.notes)
    if both:
        problems.append(f"{rid}: keys defined in both the card file and common.yaml: {both}")
    return problems


def _uses_problems(book: CardBook, rid: str, r: Rule, card: CardFile) -> list[str]:
    """Everything the rule declares must resolve (rule-engine style: at load, not per call)."""
    t, params, u = book.terminology, book.parameters, r.uses
    labelled = set(book.common.suggestions).union(*(c.suggestions for c in book.cards.values()))
    unresolved = (
        ("value set", u.valuesets - set(t.value_sets), "is not in cards/valuesets/"),
        (
            "ingredient",
            u.ingredients - set(t.medications.classes),
            "is not in cards/medications.yaml",
        ),
        (
            "parameter",
            u.parameters - set(type(params).model_fields),
            "is not in cards/parameters.yaml",
        ),
        ("order", u.orders - set(book.orders.services), "is not a service in cards/orders.yaml"),
        ("medication", u.medications - set(book.orders.medications), "is not in cards/orders.yaml"),
        ("regimen", u.regimens - set(params.regimens), "is not in cards/regimens.yaml"),
        ("suggestion", u.suggestions - labelled, "has no label"),
        (
            "note",
            u.notes - set(card.notes) - set(book.common.notes),
            "is not in its card file or common.yaml",
        ),
    )
    return [
        f"{rid}: {kind} {key!r} {why}" for kind, keys, why in unresolved for key in sorted(keys)
    ]


def _regimen_problems(book: CardBook) -> list[str]:
    """Every regimen drug is a medication order of a known ingredient; $dose only with a
    default; capecitabine has its renal dose (D8); every dose is orderable as written."""
    problems = []
    t = book.terminology
    for key, reg in book.parameters.regimens.items():
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
    return problems


def _frame_problems(book: CardBook) -> list[str]:
    """Each frame text uses exactly the placeholders the renderer fills."""
    frame = book.common.card
    return [
        f"common.yaml card.{name}: placeholders {sorted(_placeholders(text))}, "
        f"expected {sorted(FRAME_PLACEHOLDERS.get(name, set()))}"
        for name, text in frame.model_dump().items()
        if _placeholders(text) != FRAME_PLACEHOLDERS.get(name, set())
    ]


def _code_problems(book: CardBook) -> list[str]:
    """Every emitted code must be verified or seen, never UNVERIFIED (terminology.md)."""
    problems = []
    t = book.terminology
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
