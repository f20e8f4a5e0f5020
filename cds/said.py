"""Clinician-visible lines as data: which sentence of cards/sentences.yaml, with which values.

Rules and facts never write a sentence a clinician reads; they say which one and with what
(`say("lvef-latest", percent=62.0, when=on(day))`). The renderer fills the template
(cds.cards); at start-up the knowledge check reads the rule and fact modules' source and proves
that every key they say exists and that its placeholders are exactly the values they give
(cds.card_book). So a clinical reviewer reads every sentence in cards/, and a typo in a key or
a value name stops the service at start-up instead of failing a call.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Formatter

# The words for a record that gives no date, after 'recorded' (cards/sentences.yaml).
_UNDATED = "recorded-undated"


@dataclass(frozen=True, slots=True)
class Said:
    """A sentence by its key, and the values its placeholders show (hashable: cards dedupe)."""

    key: str
    values: tuple[tuple[str, object], ...] = ()


def say(key: str, /, **values: object) -> Said:
    """A sentence of cards/sentences.yaml; values may be numbers (formatted by the template),
    text, dates (ISO), None ('date unknown'), another Said, or a tuple of them (joined by '; ')."""
    return Said(key, tuple(values.items()))


def fields(template: str) -> frozenset[str]:
    """The placeholder names of a template (`{value:g}` is `value`)."""
    out = set()
    for _, name, _, _ in Formatter().parse(template):
        if name is not None:
            out.add(name.split(".")[0].split("[")[0])
    return frozenset(out)


class Sentences:
    """The templates, and how a Said becomes the text a clinician reads."""

    def __init__(self, templates: Mapping[str, str]) -> None:
        self.templates = dict(templates)

    def text(self, said: Said | str) -> str:
        if isinstance(said, str):
            return said
        template = self.templates[said.key]
        for name, v in said.values:
            # "Heart failure recorded date unknown" reads as "recorded with no date".
            if v is None and f"recorded {{{name}}}" in template:
                template = template.replace(f"recorded {{{name}}}", self.templates[_UNDATED])
        values = {name: self._value(v) for name, v in said.values}
        return template.format(**values)

    def _value(self, v: object) -> object:
        if isinstance(v, Said):
            return self.text(v)
        if v is None:
            return self.templates["date-unknown"]
        if hasattr(v, "isoformat"):
            return v.isoformat()  # a date (or a time) as 2026-12-05
        if isinstance(v, tuple):
            return "; ".join(str(self._value(x)) for x in v)
        return v


@dataclass(frozen=True, slots=True)
class Saying:
    """One `say(...)` in the source: where, which key, with which value names (None: `**`)."""

    where: str
    key: str
    names: frozenset[str] | None


def sayings(paths: Iterable[Path]) -> list[Saying]:
    """Every `say("key", name=...)` call in these modules' source."""
    return [s for path in paths for s in _sayings_in(path)]


@functools.cache
def _sayings_in(path: Path) -> tuple[Saying, ...]:
    # Each module parsed once per process: the knowledge check and every rule's review digest
    # read the same modules, whose source does not change while the process runs.
    out = []
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "say"
        ):
            continue
        where = f"{path.parent.name}/{path.name}:{node.lineno}"
        first = node.args[0] if node.args else None
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            out.append(Saying(where, "", None))  # a computed key cannot be checked
            continue
        names = [k.arg for k in node.keywords]
        given = None if None in names else frozenset(n for n in names if n is not None)
        out.append(Saying(where, first.value, given))
    return tuple(out)


def check(templates: Mapping[str, str], said: list[Saying]) -> list[str]:
    """Problems between the templates and what the source says: unknown keys, computed keys,
    value names that are not the template's placeholders, templates nobody says."""
    problems = []
    for s in said:
        if not s.key:
            problems.append(f"{s.where}: say() needs its key as a literal string")
        elif s.key not in templates:
            problems.append(f"{s.where}: sentence {s.key!r} is not in cards/sentences.yaml")
        elif s.names is not None and s.names != fields(templates[s.key]):
            problems.append(
                f"{s.where}: sentence {s.key!r} has placeholders "
                f"{sorted(fields(templates[s.key]))}, given {sorted(s.names)}"
            )
    used = {s.key for s in said} | {"date-unknown", _UNDATED}
    problems += [
        f"cards/sentences.yaml: {k!r} is never said" for k in sorted(set(templates) - used)
    ]
    return problems
