"""`cds catalog`: one Markdown page per rule for clinician review.

Each page shows the trigger and logic (the rule's docstring), the hooks, the parameters it can
read, the card texts of every variant, suggestions and notes, the evidence, and which fixture
scenarios cover it. Generated from the same files and code the service runs.
"""

from __future__ import annotations

import inspect
import json
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
    source = inspect.getsource(sys.modules[k.rules[rule_id].fn.__module__])
    fn_source = inspect.getsource(k.rules[rule_id].fn)
    names = type(k.parameters).model_fields
    used = [n for n in names if f"p.{n}" in fn_source]
    # Helpers in the same module may read parameters on the rule's behalf.
    return used or [n for n in names if f"p.{n}" in source]


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
        lines += [f"- `{p}` = {getattr(k.parameters, p)!r}" for p in params] or ["- none"]
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
