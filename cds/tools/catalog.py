"""`cds catalog`: one Markdown page per rule for clinician review.

Each page shows the trigger and logic (the rule's docstring), the hooks, the parameters it can
read, the card texts of every variant, suggestions and notes, the evidence, and which fixture
scenarios cover it. Generated from the same files and code the service runs.
"""

from __future__ import annotations

import inspect
import json
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

from cds.parameters import DoseBand, LvefRule
from cds.services import Knowledge


def _coverage(fixtures: Path) -> dict[str, list[str]]:
    covered: dict[str, list[str]] = defaultdict(list)
    for expected in sorted(fixtures.rglob("expected.json")):
        name = f"{expected.parent.parent.name}/{expected.parent.name}"
        for card in json.loads(expected.read_text()).get("cards", []):
            covered[card["rule"]].append(name)
    return covered


def show_parameter(value: object) -> str:
    """A parameter's value for a reviewer: dose bands and LVEF rules in words."""
    if isinstance(value, tuple) and value and isinstance(value[0], DoseBand):
        return "; ".join(
            f"CrCl {'>' if b.exclusive else '≥'} {b.min_crcl:g} → {b.dose_mg:g} mg" for b in value
        )
    if isinstance(value, dict) and value and isinstance(next(iter(value.values())), LvefRule):
        return "; ".join(
            f"{r.drug} ({r.label}): "
            + ", ".join(
                f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                for k, v in r.model_dump(exclude={"drug", "label"}).items()
                if v not in (None, False)
            )
            for r in value.values()
        )
    return repr(value)


def _regimen_lines(k: Knowledge, keys: frozenset[str]) -> list[str]:
    lines = []
    for key in sorted(keys):
        reg = k.parameters.regimens[key]
        criteria = []
        if reg.min_prior_her2_regimens:
            criteria.append(f"label: ≥{reg.min_prior_her2_regimens} prior anti-HER2 regimens")
        if reg.hr_positive_only:
            criteria.append("hormone-receptor positive only")
        lines.append(f"- `{key}` {reg.label}" + (f" ({'; '.join(criteria)})" if criteria else ""))
        for drug in reg.drugs:
            name = k.cards.orders.medications[drug.order].name
            dose = drug.dose.replace("$dose", reg.default_dose or "$dose")
            lines.append(f"  - {name}: {dose}")
        lines.append(f"  - source: {reg.source}")
    return lines


def write_catalog(k: Knowledge, out: Path, fixtures: Path) -> list[Path]:
    """One Markdown page per rule and an index, each variant with the fixtures that give it."""
    out.mkdir(parents=True, exist_ok=True)
    coverage = _coverage(fixtures)
    written = []
    index = [
        "# Rule catalog",
        "",
        "| rule | title | hooks | variants | fixtures |",
        "|---|---|---|---|---|",
    ]
    for rule_id in sorted(k.rules, key=lambda r: (len(r.rstrip("abcdpv")), r)):
        rule, card = k.rules[rule_id], k.cards.cards[rule_id]
        page = out / f"{rule_id}.md"
        page.write_text("\n".join(_rule_page(k, rule_id, coverage)) + "\n", encoding="utf-8")
        written.append(page)
        n = sum(len(coverage.get(f"{rule_id}:{v}", [])) for v in card.variants)
        index.append(
            f"| [{rule_id}]({rule_id}.md) | {card.title} | {', '.join(rule.hooks)} | "
            f"{', '.join(card.variants)} | {n} |"
        )
    (out / "README.md").write_text("\n".join(index) + "\n", encoding="utf-8")
    written.append(out / "README.md")
    return written


def _rule_page(k: Knowledge, rule_id: str, coverage: Mapping[str, list[str]]) -> list[str]:
    rule, card = k.rules[rule_id], k.cards.cards[rule_id]
    params = sorted(rule.uses.parameters)
    lines = [
        f"# {rule_id}: {card.title}",
        "",
        f"**Hooks**: {', '.join(rule.hooks)}  ",
        f"**Source**: [{card.source.label}]({card.source.url})  ",
        f"**Selection behaviour**: {card.selection}",
        "",
        "## Trigger and logic",
        "",
        inspect.cleandoc(rule.doc),
        "",
        "## Parameters",
        "",
    ]
    lines += [f"- `{p}` = {show_parameter(getattr(k.parameters, p))}" for p in params] or ["- none"]
    if rule.uses.regimens:
        lines += ["", "## Regimens (each drug with this regimen's dose)", ""]
        lines += _regimen_lines(k, rule.uses.regimens)
    if rule.uses.valuesets:
        lines += ["", "## Value sets read", ""]
        lines += [", ".join(f"`{v}`" for v in sorted(rule.uses.valuesets))]
    lines += ["", "## Cards", ""]
    for name, variant in card.variants.items():
        covered = coverage.get(f"{rule_id}:{name}", [])
        lines += [
            f"### Variant `{name}`",
            "",
            f"- **Summary**: {variant.summary}",
            f"- **Detail**: {variant.detail.strip()}",
            f"- **Covered by**: {', '.join(covered) if covered else '**no fixture yet**'}",
            "",
        ]
    if card.suggestions:
        lines += ["## Suggestions", ""] + [f"- `{k_}`: {v}" for k_, v in card.suggestions.items()]
        lines.append("")
    if card.notes:
        lines += ["## Notes", ""] + [f"- `{k_}`: {v.strip()}" for k_, v in card.notes.items()]
        lines.append("")
    lines += ["## Evidence", "", card.evidence.strip(), ""]
    return (
        lines
        + ["## Override reasons", ""]
        + [f"- {code}: {k.cards.overrides.codes[code]}" for code in card.override_reasons]
    )
