"""Value sets and the medication table, matched by system and code (read from cards/ by
cds.terminology_files)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from cds.errors import ConfigError
from cds.knowledge_file import KnowledgeFile

Level = Literal["V", "S", "UNVERIFIED"]
MedClass = Literal[
    "HER2_MAB",
    "HER2_ADC_TDM1",
    "HER2_ADC_TDXD",
    "HER2_TKI_TUC",
    "HER2_TKI_NER",
    "HER2_TKI_LAP",
    "TAXANE",
    "CAPE",
    "VINORELBINE",
    "OTHER_CHEMO",
    "ANTHRACYCLINE",
    "ENDOCRINE_AI",
    "ENDOCRINE_SERD",
    "ENDOCRINE_SERM",
    "CDK46",
    "BMA",
    "CALCIUM",
    "VITD",
    "ANTIDIARRHEAL",
]


class Coding(NamedTuple):
    # A NamedTuple, not a frozen dataclass: as immutable, and built in a third of the time (a
    # chart's read builds hundreds of codings).
    system: str
    code: str
    display: str | None = None


_ALL_TEXT = "all_text"


@dataclass(frozen=True, slots=True)
class Concept:
    """A CodeableConcept reduced to what matching needs."""

    codings: tuple[Coding, ...] = ()
    text: str | None = None
    # What matching worked out about this concept (its text, the value sets its codes are in):
    # the facts test one concept against many sets, and one concept read from JSON is shared by
    # every resource (in any call) that sends the same CodeableConcept. Keyed by the CodeIndex
    # object itself, never its id(): a memo can outlive one loaded knowledge.
    _memo: dict[object, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def named(self) -> str | None:
        """The concept as its sender names it: its text, else the first coding's display."""
        return self.text or next((c.display for c in self.codings if c.display), None)

    def all_text(self) -> str:
        text = self._memo.get(_ALL_TEXT)
        if text is None:
            parts = [self.text or ""] + [c.display or "" for c in self.codings]
            text = self._memo[_ALL_TEXT] = " ".join(p for p in parts if p).lower()
        return str(text)


@dataclass(frozen=True, slots=True, eq=False)  # identity: one per loaded terminology
class CodeIndex:
    """(system, code) → the ids of the value sets holding it, and the prefixes, built once."""

    by_code: Mapping[tuple[str, str], frozenset[str]]
    prefixes: tuple[tuple[str, str, str], ...]  # (system, prefix, value set id)
    # Every value set's text patterns in one: a text none of them finds is in no set by text.
    any_text: re.Pattern[str] | None = None
    # Systems whose codes decide membership (clinical-logic §3c D11): a concept coded in one of
    # them is classified by its codes, and text patterns apply only to text-only concepts.
    deciding: frozenset[str] = frozenset()

    def sets_of(self, concept: Concept) -> frozenset[str]:
        """The value sets any of the concept's codes belongs to (worked out once a concept)."""
        found = concept._memo.get(self)
        if found is None:
            ids: set[str] = set()
            for c in concept.codings:
                ids.update(self.by_code.get((c.system, c.code), ()))
                for system, prefix, vs_id in self.prefixes:
                    if c.system == system and c.code.startswith(prefix):
                        ids.add(vs_id)
            found = concept._memo[self] = frozenset(ids)
        return found

    def deciding_codes(self, concept: Concept) -> tuple[Coding, ...]:
        """The concept's codings in a deciding system (worked out once a concept)."""
        key = (self, "deciding")
        found = concept._memo.get(key)
        if found is None:
            found = concept._memo[key] = tuple(
                c for c in concept.codings if c.system in self.deciding
            )
        return tuple(found)

    def text_may_match(self, concept: Concept) -> bool:
        """Whether any set's text patterns could match the concept (worked out once)."""
        key = (self, _ALL_TEXT)
        hit = concept._memo.get(key)
        if hit is None:
            text = concept.all_text()
            hit = concept._memo[key] = bool(
                text and self.any_text is not None and self.any_text.search(text)
            )
        return bool(hit)


@dataclass(frozen=True, slots=True, eq=False)  # identity: a concept's memo is keyed by it
class Screen:
    """The union of several value sets, for a cheap first pass over raw resources.

    One set lookup per coding; prefixes and text patterns (each with its own exclusions) are
    only tried when no code matches, and the text sets one by one only when their union matches.
    Most of a chart is screened out, and most of it repeats a few codes (vital signs, routine
    labs): concepts read from the same JSON are one object, and each remembers its verdict.
    """

    codes: frozenset[tuple[str, str]]
    prefixes: tuple[tuple[str, str], ...]
    text_sets: tuple[ValueSet, ...]
    any_text: re.Pattern[str] | None

    def matches(self, concept: Concept) -> bool:
        hit = concept._memo.get(self)
        if hit is None:
            hit = concept._memo[self] = self._matches(concept)
        return bool(hit)

    def _matches(self, concept: Concept) -> bool:
        for c in concept.codings:
            if (c.system, c.code) in self.codes:
                return True
            if any(c.system == s and c.code.startswith(p) for s, p in self.prefixes):
                return True
        return self._text_matches(concept.all_text())

    def _text_matches(self, text: str) -> bool:
        if not text or self.any_text is None or not self.any_text.search(text):
            return False
        return any(vs.matches_text_str(text) for vs in self.text_sets)


class CodeEntry(KnowledgeFile):
    system: str
    code: str
    display: str
    level: Level
    source: str


@dataclass(frozen=True, slots=True)
class ValueSet:
    """Membership by (system, code); ICD-10-CM by prefix; text only where codes are UNVERIFIED.

    UNVERIFIED entries are kept in the files for the record but are never matched or emitted.
    """

    id: str
    title: str
    codes: frozenset[tuple[str, str]]
    prefixes: tuple[tuple[str, str], ...]
    text_patterns: tuple[str, ...]
    entries: tuple[CodeEntry, ...]
    index: CodeIndex = field(compare=False, repr=False)
    # Codes this set lists as UNVERIFIED: held for the record, they neither include nor exclude
    # (a concept coded only with one of them is judged by its text).
    unverified: frozenset[tuple[str, str]] = frozenset()
    confirmed_only: bool = False
    _text_re: re.Pattern[str] | None = field(default=None, compare=False)
    _exclude_re: re.Pattern[str] | None = field(default=None, compare=False)

    def matches_code(self, concept: Concept) -> bool:
        return self.id in self.index.sets_of(concept)

    def matches_text(self, concept: Concept) -> bool:
        if self._text_re is None or not self.index.text_may_match(concept):
            return False
        return self.matches_text_str(concept.all_text())

    def matches_text_str(self, text: str) -> bool:
        if self._text_re is None:
            return False
        if self._exclude_re is not None and self._exclude_re.search(text):
            return False
        return bool(self._text_re.search(text))

    def matches(self, concept: Concept) -> bool:
        """Codes decide (D11): a concept coded in a known system (ICD-10-CM, SNOMED CT, LOINC,
        RxNorm) is a member only by its codes, so a skin cancer of the breast (C44.5x) or a lung
        cancer whose text names the breast is never breast cancer. Text patterns are the last
        resort for concepts sent as text only (or coded only in local or unverified codes),
        and for sets that hold no verified code yet (their codes go out as text only).

        Worked out once a concept and set: the facts ask the same question of the same concept
        many times a call. Keyed by the set's index object and id, never id(self); three parts,
        so never one of the index's own two-part keys."""
        key = (self.index, "member", self.id)
        hit = concept._memo.get(key)
        if hit is None:
            hit = concept._memo[key] = self._matches(concept)
        return bool(hit)

    def _matches(self, concept: Concept) -> bool:
        if self.matches_code(concept):
            return True
        if (self.codes or self.prefixes) and any(
            (c.system, c.code) not in self.unverified for c in self.index.deciding_codes(concept)
        ):
            return False
        return self.matches_text(concept)

    def coding(self, code: str) -> Coding:
        """The emitted Coding for a code of this set (verified or seen only; never UNVERIFIED)."""
        for e in self.entries:
            if e.code == code and e.level != "UNVERIFIED":
                return Coding(system=e.system, code=e.code, display=e.display)
        raise KeyError(f"{code} is not an emittable code of value set {self.id}")


@dataclass(frozen=True, slots=True)
class DrugMatch:
    ingredient: str
    med_class: MedClass
    bma_dose: Literal["onc", "osteo"] | None
    by_text: bool


@dataclass(frozen=True, slots=True)
class MedicationTable:
    """RxNorm code → ingredient(s); names as a last resort (longest first, whole words)."""

    by_code: Mapping[str, tuple[DrugMatch, ...]]
    classes: Mapping[str, MedClass]
    displays: Mapping[str, str]
    name_re: re.Pattern[str]
    by_name: Mapping[str, tuple[str, ...]]
    name_strengths: Mapping[str, Literal["onc", "osteo"]]
    allergy_classes: Mapping[str, tuple[str, ...]]  # an allergy's words → the drugs they name
    allergy_class_re: re.Pattern[str] | None
    tablet_mg: Mapping[str, float] = field(default_factory=dict)  # clinical drug code → mg
    name_tablet_mg: Mapping[str, float] = field(default_factory=dict)  # one-strength brand → mg

    def match(self, concept: Concept, rxnorm: str) -> tuple[DrugMatch, ...]:
        found: dict[str, DrugMatch] = {}
        for c in concept.codings:
            if c.system == rxnorm:
                for m in self.by_code.get(c.code, ()):
                    found.setdefault(m.ingredient, m)
        if found:
            return tuple(found.values())
        # Last resort: names in the text. The alternation is longest-first, so a name that
        # contains another ("ado-trastuzumab emtansine" ⊃ "trastuzumab") consumes it.
        # A brand's strength is kept when the ingredient's name comes first ("denosumab
        # (Prolia)"); the first name with a strength decides.
        for hit in self.name_re.finditer(concept.all_text()):
            name = hit.group(0)
            strength = self.name_strengths.get(name)
            for ingredient in self.by_name[name]:
                prior = found.get(ingredient)
                if prior is None or (prior.bma_dose is None and strength is not None):
                    found[ingredient] = DrugMatch(
                        ingredient, self.classes[ingredient], strength, by_text=True
                    )
        return tuple(found.values())

    def tablet_strength(self, concept: Concept, rxnorm: str) -> float | None:
        """The mg in one tablet of the product the concept's RxNorm codes name, when they
        name exactly one strength (an ingredient's code names none; two strengths, no
        product). With no RxNorm code the table knows, a brand sold in one tablet strength
        named in the text (codes decide first, D11)."""
        codes = [c.code for c in concept.codings if c.system == rxnorm]
        found = {self.tablet_mg[c] for c in codes if c in self.tablet_mg}
        if not found and self.name_tablet_mg and not any(c in self.by_code for c in codes):
            names = (hit.group(0) for hit in self.name_re.finditer(concept.all_text()))
            found = {self.name_tablet_mg[n] for n in names if n in self.name_tablet_mg}
        return found.pop() if len(found) == 1 else None

    def rxnorm_coding(self, code: str, rxnorm: str) -> Coding:
        return Coding(system=rxnorm, code=code, display=self.displays[code])


@dataclass(frozen=True, slots=True, eq=False)  # identity equality: loaded once, shared
class Terminology:
    systems: Mapping[str, str]
    value_sets: Mapping[str, ValueSet]
    medications: MedicationTable
    codes: CodeIndex  # (system, code) → value sets, shared by every ValueSet above

    def __getitem__(self, vs_id: str) -> ValueSet:
        try:
            return self.value_sets[vs_id]
        except KeyError:
            raise ConfigError(f"unknown value set {vs_id!r}") from None

    @property
    def rxnorm(self) -> str:
        return self.systems["rxnorm"]

    def screen(self, vs_ids: Iterable[str]) -> Screen:
        sets = [self[v] for v in vs_ids]
        text_sets = tuple(vs for vs in sets if vs.text_patterns)
        patterns = [p.lower() for vs in text_sets for p in vs.text_patterns]
        return Screen(
            codes=frozenset().union(*(vs.codes for vs in sets)),
            prefixes=tuple(p for vs in sets for p in vs.prefixes),
            text_sets=text_sets,
            any_text=whole_words(patterns, regex=True) if patterns else None,
        )


def whole_words(names: Iterable[str], *, regex: bool = False) -> re.Pattern[str]:
    """Whole-word alternation, longest first; value-set text entries are regular expressions."""
    ordered = sorted(set(names), key=len, reverse=True)
    parts = ordered if regex else [re.escape(n) for n in ordered]
    return re.compile(r"(?<![\w-])(" + "|".join(parts) + r")(?![\w-])")
