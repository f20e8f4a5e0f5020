"""Clinician lines as data (cds.said): the templates in cards/sentences.yaml, how a line is
rendered, and the start-up check that rules and facts say only sentences that exist, with
exactly the values their templates show."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from string import Formatter

import pytest

from cds.card_book import read_sentences, speaking_modules
from cds.said import Sentences, check, fields, say, sayings
from cds.settings import REPO_CARDS

TEMPLATES = read_sentences(REPO_CARDS / "sentences.yaml")


def test_the_repository_sentences_match_what_rules_and_facts_say() -> None:
    said = sayings(speaking_modules())
    assert len(said) > 100  # the scan found the rules' and facts' lines
    assert check(TEMPLATES, said) == []


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_every_template_renders(key: str) -> None:
    # Numbers where the template formats a number ({value:g}, {crcl:.1f}), text elsewhere.
    values = {}
    for _, name, spec, _ in Formatter().parse(TEMPLATES[key]):
        if name:
            values[name] = 12.5 if spec else "x"
    out = Sentences(TEMPLATES).text(say(key, **values))
    assert out
    assert "{" not in out
    assert "}" not in out


def test_a_line_renders_values_dates_nested_lines_and_lists() -> None:
    s = Sentences(
        {
            "date-unknown": "date unknown",
            "calcium": "Calcium {value:g} mg/dL on {when}",
            "why": "{regimen} ({why})",
            "reason": "{drug} {reason}",
            "toxicity": "stopped for toxicity",
        }
    )
    assert s.text(say("calcium", value=7.20, when=date(2026, 3, 1))) == (
        "Calcium 7.2 mg/dL on 2026-03-01"
    )
    assert s.text(say("calcium", value=7.0, when=None)) == "Calcium 7 mg/dL on date unknown"
    why = (say("reason", drug="a", reason=say("toxicity")), say("reason", drug="b", reason="x"))
    assert s.text(say("why", regimen="a + b", why=why)) == "a + b (a stopped for toxicity; b x)"
    assert s.text("already text") == "already text"


def test_a_record_with_no_date_reads_recorded_with_no_date() -> None:
    s = Sentences(
        {
            "date-unknown": "date unknown",
            "recorded-undated": "recorded with no date",
            "hf": "Heart failure recorded {when}",
            "line": "Line from {start}, ended {end}",
        }
    )
    assert s.text(say("hf", when=None)) == "Heart failure recorded with no date"
    assert s.text(say("hf", when=date(2026, 3, 1))) == "Heart failure recorded 2026-03-01"
    assert s.text(say("line", start=None, end=None)) == "Line from date unknown, ended date unknown"


def test_the_check_names_each_kind_of_mistake(tmp_path: Path) -> None:
    module = tmp_path / "rule.py"
    module.write_text(
        "from cds.said import say\n"
        "KEY = 'known'\n"
        "a = say('known', value=1)\n"  # right
        "b = say('unknown-key')\n"
        "c = say('known', valu=1)\n"  # a misspelt value name
        "d = say(KEY, value=1)\n"  # a computed key cannot be checked
        "e = say('known', **{'value': 1})\n"  # names not known: the key still is
    )
    problems = check({"known": "{value:g}", "unused": "never said"}, sayings([module]))
    assert [re.sub(r"^\S+:\d+: ", "", p) for p in problems] == [
        "sentence 'unknown-key' is not in cards/sentences.yaml",
        "sentence 'known' has placeholders ['value'], given ['valu']",
        "say() needs its key as a literal string",
        "cards/sentences.yaml: 'unused' is never said",
    ]


def test_fields_reads_format_specs_and_attribute_access() -> None:
    assert fields("{a:.2f} on {b} ({c.d}) {e[0]}") == {"a", "b", "c", "e"}


def test_no_sentence_is_written_in_rules_or_facts() -> None:
    """Clinician text lives in cards/: string literals of several words in cds/rules and
    cds/facts are docstrings, log and error messages, validation reasons for integrators, or one
    of the few listed here (each says why)."""
    found = sorted(_sentences_in(speaking_modules()))
    assert found == sorted(ALLOWED), found


# (module, text): the sentences still written in code, each with its reason.
ALLOWED = {
    # An order reference when the draft has no id: an identifier that rules match on.
    ("orders.py", "{} (draft entry {}, no id)"),
    # Ingredient names (value-set members in cards/medications.yaml), not sentences.
    *(
        (m, "zoledronic acid")
        for m in (
            "bisphosphonates.py",
            "bma_orders.py",
            "bma_overlap.py",
            "bone.py",
            "bone_calcium.py",
            "dental.py",
        )
    ),
    *(
        (m, "trastuzumab deruxtecan")
        for m in (
            "bma_orders.py",
            "lvef_labels.py",
            "her2.py",
            "her2_orders.py",
            "her2low.py",
            "ild.py",
            "pertuzumab.py",
        )
    ),
    *(
        (m, "trastuzumab emtansine")
        for m in (
            "bma_orders.py",
            "lvef_labels.py",
            "her2.py",
            "her2_orders.py",
            "ild.py",
            "tki_orders.py",
        )
    ),
    ("her2low.py", "paclitaxel protein-bound"),
    ("medications.py", "zoledronic acid"),
    # Site names a condition's code is read as ("bone marrow").
    ("disease.py", "bone marrow"),
    # A unit in facts that never reaches a card.
    ("labs.py", "mL/min/1.73 m²"),
    # A UCUM spelling of a dose by weight that a Quantity is read by.
    ("units.py", "mg/kg{body weight}"),
    # A dose by weight as a card value: a number and its unit, as `_mg` gives 'N mg'.
    ("doses.py", "{} mg/kg"),
    # What R0b names a resource sent without an id by: its type, and that it has none.
    ("records.py", "{} (no id)"),
    # The HER2 text a pathology report uses, read by pattern (not written to a card).
    ("marker_results.py", "not amplified"),
    ("marker_results.py", "ultralow|ultra-low|faint|incomplete|barely perceptible"),
    ("marker_results.py", "no (membrane )?staining|null|absent staining|without staining"),
}


def _sentences_in(paths: list[Path]) -> set[tuple[str, str]]:
    import ast

    out = set()
    for path in paths:
        if path.name == "conformance.py":
            continue  # validation reasons for integration engineers, not clinician text
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip: set[int] = set()
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
                skip.add(id(body[0].value))  # a docstring
            if isinstance(node, ast.Raise) and node.exc is not None:
                skip.update(id(n) for n in ast.walk(node.exc))
            if isinstance(node, ast.Call) and (
                (isinstance(node.func, ast.Attribute) and node.func.attr in _LOG_CALLS)
                or (isinstance(node.func, ast.Name) and node.func.id == "Excluded")
            ):
                skip.update(id(n) for n in ast.walk(node))
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.JoinedStr):
                skip.update(id(v) for v in node.values)
                text = "".join(
                    str(v.value) if isinstance(v, ast.Constant) else "{}" for v in node.values
                )
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
            else:
                continue
            words = re.findall(r"[A-Za-z]{2,}", text)
            if " " in text.strip() and "\\" not in text and "(?" not in text and len(words) >= 2:
                out.add((path.name, text))
    return out


_LOG_CALLS = {"debug", "info", "warning", "error", "exception"}
