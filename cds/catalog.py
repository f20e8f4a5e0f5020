"""`cds catalog`: one Markdown page per rule for clinician review.

Each page shows the trigger and logic (the rule's docstring), the hooks, the parameters it can
read, the card texts of every variant, suggestions and notes, the evidence, and which fixture
scenarios cover it. Generated from the same files and code the service runs.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

from cds.services import Knowledge


def _coverage(fixtures: Path) -> dict[str, list[str]]:
    covered: dict[str, list[str]] = defaultdict(list)
    for expected in sorted(fixtures.rglob("expected.json")):
        name = f"{expected.parent.parent.name}/{expected.parent.name}"
        for card in json.loads(expected.read_text()).get("cards", []):
            covered[card["rule"]].append(name)
    return covered


def _parameters_used(k: Knowledge, rule_id: str) -> list[str]:
    """Parameters the rule reads, directly or through the module's helpers it calls."""
    fn = k.rules[rule_id].fn
    module = sys.modules[fn.__module__]
    names = list(type(k.parameters).model_fields)
    seen: set[str] = set()
    sources = [inspect.getsource(fn)]
    used: set[str] = set()
    while sources:
        source = sources.pop()
        used |= {n for n in names if f"p.{n}" in source}
        for called in re.findall(r"\b([a-z_][a-z0-9_]*)\(", source):
            helper = getattr(module, called, None)
            if (
                called not in seen
                and inspect.isfunction(helper)
                and helper.__module__ == module.__name__
            ):
                seen.add(called)
                sources.append(inspect.getsource(helper))
    return [n for n in names if n in used]


def _show(value: object) -> str:
    if isinstance(value, tuple) and value and hasattr(value[0], "dose_mg"):
        return "; ".join(
            f"CrCl {'>' if b.exclusive else '≥'} {b.min_crcl:g} → {b.dose_mg:g} mg" for b in value
        )
    return repr(value)


def write_catalog(k: Knowledge, out: Path, fixtures: Path) -> list[Path]:
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
        rule = k.rules[rule_id]
        card = k.cards.cards[rule_id]
        params = _parameters_used(k, rule_id)
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
        lines += [f"- `{p}` = {_show(getattr(k.parameters, p))}" for p in params] or ["- none"]
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
            lines += ["## Suggestions", ""] + [
                f"- `{k_}`: {v}" for k_, v in card.suggestions.items()
            ]
            lines.append("")
        if card.notes:
            lines += ["## Notes", ""] + [f"- `{k_}`: {v.strip()}" for k_, v in card.notes.items()]
            lines.append("")
        lines += ["## Evidence", "", card.evidence.strip(), ""]
        lines += ["## Override reasons", ""] + [
            f"- {code}: {k.cards.overrides.codes[code]}" for code in card.override_reasons
        ]
        page = out / f"{rule_id}.md"
        page.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(page)
        n = sum(len(coverage.get(f"{rule_id}:{v}", [])) for v in card.variants)
        index.append(
            f"| [{rule_id}]({rule_id}.md) | {card.title} | {', '.join(rule.hooks)} | "
            f"{', '.join(card.variants)} | {n} |"
        )
    (out / "README.md").write_text("\n".join(index) + "\n", encoding="utf-8")
    written.append(out / "README.md")
    return written
