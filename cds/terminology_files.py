"""The value-set and medication files of cards/ read into a Terminology: each file's schema,
its UNVERIFIED codes kept for the record and never matched, its text compiled once."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from cds.errors import ConfigError
from cds.knowledge_file import KnowledgeFile, read_yaml
from cds.terminology import (
    CodeEntry,
    CodeIndex,
    DrugMatch,
    Level,
    MedClass,
    MedicationTable,
    Terminology,
    ValueSet,
    whole_words,
)


class PrefixEntry(KnowledgeFile):
    system: str
    prefix: str
    display: str
    level: Level
    source: str


class ValueSetFile(KnowledgeFile):
    title: str
    use: str
    codes: list[CodeEntry] = Field(default_factory=list)
    prefixes: list[PrefixEntry] = Field(default_factory=list)
    text: list[str] = Field(default_factory=list)
    text_exclude: list[str] = Field(default_factory=list)
    # A Condition in this set is read only once confirmed (not unconfirmed, provisional or a
    # differential): a diagnosis a treatment card starts from (cds.fhir.modifiers).
    confirmed_only: bool = False


class MedCode(KnowledgeFile):
    code: str
    display: str
    level: Level
    source: str
    bma_dose: Literal["onc", "osteo"] | None = None
    # The mg in one tablet of a clinical drug code; its RxNorm name must say the same.
    tablet_mg: float | None = Field(default=None, gt=0)


class Ingredient(KnowledgeFile):
    names: list[str]
    codes: list[MedCode]
    class_: MedClass = Field(alias="class")
    # Brands sold in one strength only (Xgeva 120 mg, Prolia 60 mg): the dose a record that
    # names the brand implies when it gives none.
    name_strengths: dict[Literal["onc", "osteo"], list[str]] = Field(default_factory=dict)
    # Brands sold in one tablet strength only (Tykerb 250 mg): the mg a tablet of a record
    # that names the brand, and no product code, holds.
    name_tablet_mg: dict[str, float] = Field(default_factory=dict)


class Combination(KnowledgeFile):
    code: str
    display: str
    ingredients: list[str]
    level: Level
    source: str


class CombinationName(KnowledgeFile):
    name: str
    ingredients: list[str]


class AllergyClass(KnowledgeFile):
    words: list[str]  # how an allergy to the class is written
    ingredients: tuple[str, ...]


class MedicationFile(KnowledgeFile):
    ingredients: dict[str, Ingredient]
    combinations: list[Combination]
    combination_names: list[CombinationName]
    allergy_classes: dict[str, AllergyClass] = Field(default_factory=dict)


def load_terminology(cards_dir: Path) -> Terminology:
    raw_systems = read_yaml(cards_dir / "code-systems.yaml")
    if not isinstance(raw_systems, dict) or not isinstance(raw_systems.get("systems"), dict):
        raise ConfigError(f"{cards_dir / 'code-systems.yaml'}: expected a 'systems' mapping")
    systems = {str(k): str(v) for k, v in raw_systems["systems"].items()}
    deciding_aliases = raw_systems.get("codes_decide", [])
    if not isinstance(deciding_aliases, list):
        raise ConfigError(f"{cards_dir / 'code-systems.yaml'}: codes_decide must be a list")

    def uri(alias: str, where: Path) -> str:
        if alias not in systems:
            raise ConfigError(f"{where}: unknown code system alias {alias!r}")
        return systems[alias]

    specs = {
        path.stem: _valueset_fields(path, uri)
        for path in sorted((cards_dir / "valuesets").glob("*.yaml"))
    }
    by_code: dict[tuple[str, str], set[str]] = {}
    for vs_id, fields in specs.items():
        for key in fields["codes"]:
            by_code.setdefault(key, set()).add(vs_id)
    patterns = [p.lower() for fields in specs.values() for p in fields["text_patterns"]]
    index = CodeIndex(
        deciding=frozenset(uri(str(a), cards_dir / "code-systems.yaml") for a in deciding_aliases),
        any_text=whole_words(patterns, regex=True) if patterns else None,
        by_code={k: frozenset(v) for k, v in by_code.items()},
        prefixes=tuple(
            (system, prefix, vs_id)
            for vs_id, fields in specs.items()
            for system, prefix in fields["prefixes"]
        ),
    )
    value_sets = {
        vs_id: ValueSet(id=vs_id, index=index, **fields) for vs_id, fields in specs.items()
    }
    return Terminology(
        systems=systems,
        value_sets=value_sets,
        medications=_load_medications(cards_dir / "medications.yaml"),
        codes=index,
    )


def _valueset_fields(path: Path, uri: Callable[[str, Path], str]) -> dict[str, Any]:
    """A value set file as ValueSet fields: its usable codes and prefixes (UNVERIFIED ones
    kept only to be shown, never matched) and its compiled text patterns."""
    try:
        spec = ValueSetFile.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    entries = tuple(e.model_copy(update={"system": uri(e.system, path)}) for e in spec.codes)
    usable = [e for e in entries if e.level != "UNVERIFIED"]
    try:
        text_re = whole_words((t.lower() for t in spec.text), regex=True) if spec.text else None
        exclude_re = (
            whole_words((t.lower() for t in spec.text_exclude), regex=True)
            if spec.text_exclude
            else None
        )
    except re.error as exc:
        raise ConfigError(f"{path}: bad text pattern: {exc}") from exc
    return {
        "title": spec.title,
        "codes": frozenset((e.system, e.code) for e in usable),
        "prefixes": tuple(
            (uri(p.system, path), p.prefix) for p in spec.prefixes if p.level != "UNVERIFIED"
        ),
        "text_patterns": tuple(spec.text),
        "entries": entries,
        "unverified": frozenset((e.system, e.code) for e in entries if e.level == "UNVERIFIED"),
        "confirmed_only": spec.confirmed_only,
        "_text_re": text_re,
        "_exclude_re": exclude_re,
    }


# An RxNorm clinical drug name giving one tablet's strength: "Tucatinib 150 MG Oral Tablet".
_TABLET_NAME = re.compile(r"\b(\d+(?:\.\d+)?) MG Oral Tablet$")


def _read_names(
    path: Path,
    name: str,
    ing: Ingredient,
    by_name: dict[str, list[str]],
    name_tablet_mg: dict[str, float],
    name_strengths: dict[str, Literal["onc", "osteo"]],
) -> None:
    """An ingredient's names, and what a brand name fixes (a tablet's strength, a bone agent's
    oncology or osteoporosis strength): each such brand must be one of its names."""
    names = {n.lower() for n in ing.names}
    for n in ing.names:
        by_name.setdefault(n.lower(), []).append(name)
    for brand, mg in ing.name_tablet_mg.items():
        if brand.lower() not in names or mg <= 0:
            raise ConfigError(f"{path}: {name}: {brand!r} has a tablet strength but is no name")
        name_tablet_mg[brand.lower()] = mg
    for strength, brands in ing.name_strengths.items():
        for brand in brands:
            if brand.lower() not in names:
                raise ConfigError(f"{path}: {name}: {brand!r} has a strength but is no name")
            name_strengths[brand.lower()] = strength


def _load_medications(path: Path) -> MedicationTable:
    try:
        spec = MedicationFile.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    by_code: dict[str, list[DrugMatch]] = {}
    displays: dict[str, str] = {}
    by_name: dict[str, list[str]] = {}
    name_strengths: dict[str, Literal["onc", "osteo"]] = {}
    tablet_mg: dict[str, float] = {}
    name_tablet_mg: dict[str, float] = {}
    classes = {name: ing.class_ for name, ing in spec.ingredients.items()}
    for name, ing in spec.ingredients.items():
        for mc in ing.codes:
            if mc.level == "UNVERIFIED":
                continue
            if mc.code in by_code:
                raise ConfigError(f"{path}: RxNorm {mc.code} is listed twice")
            by_code[mc.code] = [DrugMatch(name, ing.class_, mc.bma_dose, by_text=False)]
            displays[mc.code] = mc.display
            named = _TABLET_NAME.search(mc.display)
            if (float(named.group(1)) if named else None) != mc.tablet_mg:
                raise ConfigError(
                    f"{path}: RxNorm {mc.code} {mc.display!r}: tablet_mg {mc.tablet_mg} is not "
                    "the strength its name gives"
                )
            if mc.tablet_mg is not None:
                tablet_mg[mc.code] = mc.tablet_mg
        _read_names(path, name, ing, by_name, name_tablet_mg, name_strengths)
    for combo in spec.combinations:
        unknown = [i for i in combo.ingredients if i not in classes]
        if unknown:
            raise ConfigError(f"{path}: combination {combo.code} names unknown {unknown}")
        if combo.level != "UNVERIFIED":
            by_code[combo.code] = [
                DrugMatch(i, classes[i], None, by_text=False) for i in combo.ingredients
            ]
            displays[combo.code] = combo.display
    for cn in spec.combination_names:
        by_name.setdefault(cn.name.lower(), []).extend(cn.ingredients)
    allergy = {w.lower(): c.ingredients for c in spec.allergy_classes.values() for w in c.words}
    if strays := {i for drugs in allergy.values() for i in drugs} - classes.keys():
        raise ConfigError(f"{path}: allergy_classes name unknown ingredients {sorted(strays)}")
    return MedicationTable(
        by_code={k: tuple(v) for k, v in by_code.items()},
        classes=classes,
        displays=displays,
        name_re=whole_words(by_name),
        by_name={k: tuple(v) for k, v in by_name.items()},
        name_strengths=name_strengths,
        allergy_classes=allergy,
        allergy_class_re=whole_words(allergy) if allergy else None,
        tablet_mg=tablet_mg,
        name_tablet_mg=name_tablet_mg,
    )
