"""Clinician sign-off of each rule, bound to exactly what was reviewed.

Every rule has a content digest of everything that decides its cards: its code (the source of
its rule module and of the rule modules it draws on), its card file, the value sets and
medication entries it reads, the values of its parameters (configuration overrides included),
its regimens and orders, the shared suggestion and note texts it names, and its override
reasons. The rule's version is the
digest's first 12 hex digits.

`cards/reviews.yaml` records reviews: who (name and role), when, of which digest, with a note.
A rule is reviewed when every role in `required_roles` has signed its current digest; a change
to anything in the digest makes its earlier reviews stale. Shared fact extraction
(`cds/facts`) is not in any rule's digest: it is held to the reviewed cards by the scenario
library (`cds replay`), which the review site shows beside each rule.

Production refuses to start while an enabled rule is not reviewed, unless it is listed in
CDS_ALLOW_UNREVIEWED; cards of unreviewed rules carry the research-draft banner.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import sys
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from cds.card_book import CardBook, speaking_modules
from cds.errors import ConfigError
from cds.knowledge_file import read_model, read_yaml
from cds.parameters import Parameters
from cds.rules import Rule
from cds.said import sayings

REVIEWS_FILE = "reviews.yaml"
VERSION_DIGITS = 12
_HEADER = """\
# Clinician sign-off of each rule (cds/review.py). Written by `cds review --sign RULE --by NAME
# --role ROLE`; one entry per review, never edited by hand. A review holds for the digest it
# names: any change to the rule's code, card text, value sets, parameters, regimens or orders
# gives the rule a new digest, and the rule needs reviewing again.
"""


class ReviewEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(pattern=r"^[0-9a-f]{12}$")
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    reviewed_by: str = Field(min_length=1, max_length=200)
    role: str = Field(min_length=1, max_length=100)
    date: date
    note: str = Field(default="", max_length=4000)


class ReviewsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    required_roles: list[str] = Field(min_length=1)
    reviews: dict[str, list[ReviewEntry]] = Field(default_factory=dict)


State = Literal["reviewed", "stale", "unreviewed"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RuleReview:
    rule: str
    digest: str
    current: tuple[ReviewEntry, ...]  # reviews of this digest
    earlier: tuple[ReviewEntry, ...]  # reviews of other digests (stale)
    missing_roles: tuple[str, ...]  # required roles that have not signed this digest

    @property
    def version(self) -> str:
        return self.digest.removeprefix("sha256:")[:VERSION_DIGITS]

    @property
    def reviewed(self) -> bool:
        return not self.missing_roles

    @property
    def state(self) -> State:
        if self.reviewed:
            return "reviewed"
        return "stale" if self.earlier else "unreviewed"

    @property
    def review_date(self) -> date | None:
        """When the last required signature of this version was given (reviewed rules)."""
        return max(e.date for e in self.current) if self.reviewed and self.current else None


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


class _Files:
    """Knowledge files parsed once for all the rules' digests."""

    def __init__(self, cards_dir: Path) -> None:
        self.cards_dir = cards_dir
        self._valuesets: dict[str, Any] = {}
        self.ingredients: dict[str, Any] = (read_yaml(cards_dir / "medications.yaml") or {}).get(
            "ingredients", {}
        )

    def valueset(self, vs_id: str) -> Any:
        if vs_id not in self._valuesets:
            self._valuesets[vs_id] = read_yaml(self.cards_dir / "valuesets" / f"{vs_id}.yaml")
        return self._valuesets[vs_id]


def digest_inputs(rule: Rule, book: CardBook, params: Parameters, files: _Files) -> dict[str, Any]:
    """Everything that decides the rule's cards, as plain data (what the digest covers)."""
    card = book.cards[rule.id]
    uses = rule.uses
    ingredients = files.ingredients
    common = book.common
    code = rule_code(rule)
    return {
        "rule": rule.id,
        "hooks": list(rule.hooks),
        "variants": sorted(rule.variants),
        "bindings": sorted(rule.bindings),
        "code": code,
        "card": _plain(card),
        # Parsed, so a comment or layout change is not a content change.
        "valuesets": {v: files.valueset(v) for v in sorted(uses.valuesets)},
        "ingredients": {i: ingredients.get(i) for i in sorted(uses.ingredients)},
        "parameters": {p: _plain(getattr(params, p)) for p in sorted(uses.parameters)},
        "regimens": {r: _plain(params.regimens[r]) for r in sorted(uses.regimens)},
        "orders": {o: _plain(book.orders.services[o]) for o in sorted(uses.orders)},
        "medications": {m: _plain(book.orders.medications[m]) for m in sorted(uses.medications)},
        "shared_suggestions": {
            s: common.suggestions[s] for s in sorted(uses.suggestions) if s in common.suggestions
        },
        "shared_notes": {n: common.notes[n] for n in sorted(uses.notes) if n in common.notes},
        "sentences": {k: book.sentences.templates[k] for k in rule_sentences(code)},
        "frame": common.card.model_dump(),  # headings and action descriptions of every card
        "override_reasons": {
            "system": book.overrides.system,
            "codes": {c: book.overrides.codes[c] for c in card.override_reasons},
        },
    }


def rule_sentences(code: Mapping[str, str]) -> list[str]:
    """The keys of the lines a rule's cards can show (cards/sentences.yaml): those its rule
    modules (`rule_code`) say, and - shared, so conservatively - those facts and snoozing say."""
    shared = [p for p in speaking_modules() if p.parent.name != "rules"]
    own = [Path(str(sys.modules[n].__file__)) for n in code]
    return sorted(set().union(*(_said_in(p) for p in (*own, *shared))))


def _said_in(path: Path) -> frozenset[str]:
    return frozenset(s.key for s in sayings([path]))


def rule_code(rule: Rule) -> dict[str, str]:
    """The source of the rule's module and of every rule module it draws on (the shared bone
    predicates, the label dose checks): a rule's variants are helper functions beside it, so a
    change anywhere in those modules makes the review stale. Conservative on purpose: a review
    may go stale for a change that did not touch the rule, never stay current when it did."""
    module = inspect.getmodule(inspect.unwrap(rule.fn))
    if module is None:
        raise ConfigError(f"rule {rule.id}: its code cannot be found for the review digest")
    names = {module.__name__}
    for value in vars(module).values():
        # an imported function or class names its module; an imported module names itself
        origin = str(getattr(value, "__module__", None) or getattr(value, "__name__", ""))
        if origin.startswith("cds.rules."):
            names.add(origin)
    return {n: inspect.getsource(sys.modules[n]) for n in sorted(names) if n in sys.modules}


def rule_digest(rule: Rule, book: CardBook, params: Parameters, files: _Files) -> str:
    canonical = json.dumps(
        digest_inputs(rule, book, params, files), sort_keys=True, ensure_ascii=False
    )
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def load_reviews_file(cards_dir: Path) -> ReviewsFile:
    path = cards_dir / REVIEWS_FILE
    if not path.exists():
        raise ConfigError(f"{path} is missing: it records clinician reviews of the rules")
    return read_model(ReviewsFile, path)


def review_states(
    rules: Mapping[str, Rule], book: CardBook, params: Parameters, cards_dir: Path
) -> dict[str, RuleReview]:
    """Each rule's review state against its current digest."""
    spec = load_reviews_file(cards_dir)
    unknown = sorted(set(spec.reviews) - set(rules))
    if unknown:
        raise ConfigError(f"{cards_dir / REVIEWS_FILE}: reviews of unknown rules {unknown}")
    out = {}
    files = _Files(cards_dir)
    for rule_id in sorted(rules):
        digest = rule_digest(rules[rule_id], book, params, files)
        entries = spec.reviews.get(rule_id, [])
        current = tuple(e for e in entries if e.digest == digest)
        signed = {e.role for e in current}
        out[rule_id] = RuleReview(
            rule=rule_id,
            digest=digest,
            current=current,
            earlier=tuple(e for e in entries if e.digest != digest),
            missing_roles=tuple(r for r in spec.required_roles if r not in signed),
        )
    return out


def sign(
    cards_dir: Path, review: RuleReview, *, by: str, role: str, on: date, note: str = ""
) -> ReviewEntry:
    """Record a review of the rule's current digest in reviews.yaml (the file is rewritten
    whole, entries in order; its header comment is kept)."""
    spec = load_reviews_file(cards_dir)
    if role not in spec.required_roles:
        raise ConfigError(f"role {role!r} is not one of the required roles {spec.required_roles}")
    entry = ReviewEntry(
        version=review.version,
        digest=review.digest,
        reviewed_by=by,
        role=role,
        date=on,
        note=note,
    )
    spec.reviews.setdefault(review.rule, []).append(entry)
    data = spec.model_dump(mode="json")
    data["reviews"] = {k: data["reviews"][k] for k in sorted(data["reviews"])}
    text = _HEADER + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    (cards_dir / REVIEWS_FILE).write_text(text, encoding="utf-8")
    return entry
