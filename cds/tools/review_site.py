"""`cds review --out DIR`: a static site for clinical reviewers, one page per rule.

Reviewers read cards, not YAML. Each rule page shows its purpose, the decision logic in words
generated from what the rule declares (value sets with their codes, parameters with their values
and sources, regimens with their doses, orders), its citations, its review state and history,
and the cards it produces for every fixture scenario that fires it - rendered as an EHR shows
them (indicator colour, summary, detail Markdown, suggestions, links, override reasons), each
with the scenario's story - then the scenarios where it must not fire.

Everything is in the files written: inline CSS, a few lines of inline script for the index's
search and filter, nothing fetched when the pages are viewed.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

from cds.cards import EXT_RULE, EXT_VARIANT
from cds.errors import ConfigError
from cds.review import RuleReview, rule_code, rule_sentences
from cds.rules import Rule
from cds.services import Knowledge
from cds.settings import Settings
from cds.tools.catalog import show_parameter
from cds.tools.common import printable, settings_or_exit

# CommonMark as the CDS Hooks spec asks for card detail (GitHub-flavoured: tables too); raw HTML
# in a card is shown as text, never interpreted.
_MD = MarkdownIt("commonmark", {"html": False}).enable("table")

_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
main{max-width:64em;margin:0 auto;padding:1.5em 2em 4em}
a{color:#1d5fb4}h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #dde}
h3{font-size:1.05em}code{background:#eef;padding:0 .2em;border-radius:3px}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{padding:.35em .6em;border-bottom:1px solid #e3e5ea;text-align:left;vertical-align:top}
.state{display:inline-block;padding:0 .5em;border-radius:1em;font-size:.85em;font-weight:600}
.state.reviewed{background:#dcf3e2;color:#17623a}.state.stale{background:#fff1d6;color:#8a5a00}
.state.unreviewed{background:#fde2e1;color:#9b1c1c}
.card{background:#fff;border:1px solid #d5d9e0;border-left:6px solid #888;border-radius:4px;
 padding:.8em 1em;margin:.6em 0 1.2em}
.card.info{border-left-color:#2f6fce}.card.warning{border-left-color:#e3a008}
.card.critical{border-left-color:#d02b20}
.card .summary{font-weight:600;font-size:1.05em}.card .indicator{font-size:.8em;
 text-transform:uppercase;letter-spacing:.05em;color:#555}
.card .source{font-size:.85em;color:#555}.card .detail{border-top:1px solid #eee;margin-top:.5em}
.suggestion{display:inline-block;border:1px solid #1d5fb4;color:#1d5fb4;border-radius:4px;
 padding:.2em .6em;margin:.2em .3em .2em 0;background:#f3f7fd;font-size:.92em}
.overrides{font-size:.85em;color:#555}.story{background:#eef2f7;padding:.6em 1em;border-radius:4px}
.scenario{margin:1.5em 0}.muted{color:#666;font-size:.9em}
input,select{font:inherit;padding:.25em .5em;margin-right:.6em}
"""

_FILTER = """
const q=document.getElementById('q'),s=document.getElementById('state');
function f(){const t=q.value.toLowerCase(),st=s.value;
for(const r of document.querySelectorAll('tr.rule')){
const ok=(!t||r.textContent.toLowerCase().includes(t))&&(!st||r.dataset.state===st);
r.style.display=ok?'':'none';}}
q.addEventListener('input',f);s.addEventListener('change',f);
"""


@dataclass(frozen=True, slots=True)
class Answer:
    """One fixture scenario as the service answered it."""

    name: str  # service folder/scenario folder
    case: Mapping[str, Any]
    status: int
    cards: list[dict[str, Any]]


def _page(title: str, body: str, script: str = "") -> str:
    tail = f"<script>{script}</script>" if script else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{body}</main>{tail}</body></html>\n"
    )


def _state(review: RuleReview) -> str:
    return f'<span class="state {review.state}">{review.state}</span>'


def _link(url: str, label: str) -> str:
    safe = url if url.startswith(("https://", "http://")) else "#"
    return f'<a href="{escape(safe)}">{escape(label)}</a>'


def render_card(card: Mapping[str, Any]) -> str:
    """One card as an EHR shows it."""
    indicator = str(card.get("indicator", "info"))
    source = card.get("source") or {}
    parts = [
        f'<div class="card {escape(indicator)}" data-rule="'
        f'{escape(str((card.get("extension") or {}).get(EXT_RULE, "")))}">',
        f'<div class="indicator">{escape(indicator)}</div>',
        f'<div class="summary">{escape(str(card.get("summary", "")))}</div>',
        f'<div class="source">Source: '
        f"{_link(str(source.get('url', '')), str(source.get('label', '')))}</div>",
    ]
    if card.get("detail"):
        parts.append(f'<div class="detail">{_MD.render(str(card["detail"]))}</div>')
    suggestions = card.get("suggestions") or []
    if suggestions:
        parts.append("<div>")
        parts += [
            f'<span class="suggestion">{escape(str(s.get("label", "")))}</span>'
            for s in suggestions
        ]
        parts.append("</div>")
    links = card.get("links") or []
    if links:
        parts.append(
            "<div>Links: "
            + " · ".join(_link(str(li.get("url", "")), str(li.get("label", ""))) for li in links)
            + "</div>"
        )
    reasons = card.get("overrideReasons") or []
    if reasons:
        parts.append(
            '<div class="overrides">Override reasons: '
            + "; ".join(escape(str(r.get("display") or r.get("code"))) for r in reasons)
            + "</div>"
        )
    parts.append("</div>")
    return "".join(parts)


def parameter_sources(parameters_yaml: Path) -> dict[str, str]:
    """The comment beside each top-level parameter in parameters.yaml: where its value is from."""
    out = {}
    for line in parameters_yaml.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([a-z_0-9]+):[^#]*#\s*(.+)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def _logic(k: Knowledge, rule_id: str, sources: Mapping[str, str]) -> str:
    rule, card = k.rules[rule_id], k.cards.cards[rule_id]
    u = rule.uses
    out = [
        "<h2>Decision logic</h2>",
        f"<pre class='doc'>{escape(inspect.cleandoc(rule.doc))}</pre>",
        f"<p>Runs on: {', '.join(escape(h) for h in rule.hooks)}. Variants: "
        + ", ".join(f"<code>{escape(v)}</code>" for v in card.variants)
        + f". Selection: {escape(card.selection)}.</p>",
    ]
    if u.valuesets:
        out.append(_valuesets(k, u.valuesets))
    if u.parameters:
        out.append("<h3>Parameters</h3><table><tr><th>name</th><th>value</th><th>source</th></tr>")
        for p in sorted(u.parameters):
            out.append(
                f"<tr><td><code>{escape(p)}</code></td>"
                f"<td>{escape(show_parameter(getattr(k.parameters, p)))}</td>"
                f"<td>{escape(sources.get(p, ''))}</td></tr>"
            )
        out.append("</table>")
    if u.regimens:
        out.append("<h3>Regimens proposed (each drug with its dose)</h3><ul>")
        for key in sorted(u.regimens):
            reg = k.parameters.regimens[key]
            drugs = "; ".join(
                f"{escape(k.cards.orders.medications[d.order].name)}: "
                f"{escape(d.dose.replace('$dose', reg.default_dose or '$dose'))}"
                for d in reg.drugs
            )
            out.append(
                f"<li><strong>{escape(reg.label)}</strong>: {drugs} "
                f"<span class='muted'>({escape(reg.source)})</span></li>"
            )
        out.append("</ul>")
    orders = [k.cards.orders.services[o].name for o in sorted(u.orders)]
    meds = [k.cards.orders.medications[m].name for m in sorted(u.medications)]
    if orders or meds:
        out.append("<h3>Orders it may propose</h3><p>" + escape("; ".join(orders + meds)) + "</p>")
    out.append("<h3>Card texts</h3><ul>")
    for name, v in card.variants.items():
        out.append(
            f"<li><code>{escape(name)}</code>: <strong>{escape(v.summary)}</strong>"
            f"<br><span class='muted'>{escape(v.detail.strip())}</span></li>"
        )
    out.append("</ul>")
    out.append(_lines(k, rule))
    return "".join(out)


def _valuesets(k: Knowledge, ids: frozenset[str]) -> str:
    """Each value set read: every code with its system (UNVERIFIED ones marked), ICD-10-CM
    prefixes and text patterns."""
    out = ["<h3>Value sets read (a code decides before any text)</h3><ul>"]
    for vs_id in sorted(ids):
        vs = k.terminology[vs_id]
        codes = ", ".join(
            f"{escape(e.system.rsplit('/', 1)[-1])} <code>{escape(e.code)}</code> "
            f"{escape(e.display)}"
            + (" <em>(UNVERIFIED: not matched)</em>" if e.level == "UNVERIFIED" else "")
            for e in vs.entries
        )
        prefixes = ", ".join(f"<code>{escape(p)}*</code>" for _, p in vs.prefixes)
        text = ", ".join(f"<code>{escape(t)}</code>" for t in vs.text_patterns)
        out.append(
            f"<li><strong>{escape(vs.title)}</strong> (<code>{escape(vs_id)}</code>): "
            f"{codes or 'no codes'}"
            + (f"; ICD-10-CM prefixes {prefixes}" if prefixes else "")
            + (f"; text patterns (uncoded entries only) {text}" if text else "")
            + "</li>"
        )
    out.append("</ul>")
    return "".join(out)


def _lines(k: Knowledge, rule: Rule) -> str:
    """The data, missing-data and note lines its cards can show (cards/sentences.yaml), with
    their placeholders: the sentences the rule's code composes from the patient's record."""
    templates = k.cards.sentences.templates
    items = "".join(
        f"<li><code>{escape(key)}</code>: {escape(templates[key])}</li>"
        for key in rule_sentences(rule_code(rule))
    )
    return (
        "<h3>Lines its cards may show</h3><p class='muted'>From cards/sentences.yaml; "
        "{placeholders} are filled from the patient's record.</p><ul>" + items + "</ul>"
    )


def _citations(k: Knowledge, rule_id: str) -> str:
    card = k.cards.cards[rule_id]
    links = [f"<li>{_link(card.source.url, card.source.label)} (source)</li>"]
    links += [f"<li>{_link(li.url, li.label)}</li>" for li in card.links]
    return f"<h2>Evidence and citations</h2><p>{escape(card.evidence)}</p><ul>{''.join(links)}</ul>"


def _history(review: RuleReview) -> str:
    rows = [
        f"<tr><td>{e.date}</td><td>{escape(e.reviewed_by)}</td><td>{escape(e.role)}</td>"
        f"<td><code>{escape(e.version)}</code>{' (current)' if e in review.current else ''}</td>"
        f"<td>{escape(e.note)}</td></tr>"
        for e in (*review.current, *review.earlier)
    ]
    missing = (
        f"<p>Still needs: {escape(', '.join(review.missing_roles))} "
        f"(<code>cds review --sign {escape(review.rule)} --by NAME --role ROLE</code>).</p>"
        if review.missing_roles
        else ""
    )
    table = (
        "<table><tr><th>date</th><th>by</th><th>role</th><th>version</th><th>note</th></tr>"
        + "".join(rows)
        + "</table>"
        if rows
        else "<p>No review recorded.</p>"
    )
    return (
        f"<h2>Review</h2><p>{_state(review)} version <code>{review.version}</code> "
        f"(digest <code>{review.digest}</code>)</p>{missing}{table}"
    )


def _story(a: Answer) -> str:
    case = a.case
    return (
        f"<div class='story'><strong>{escape(a.name)}</strong>: "
        f"{escape(str(case.get('story', '')))}<br><em>A clinician expects:</em> "
        f"{escape(str(case.get('clinician_expects', '')))}</div>"
    )


def _scenarios(rule_id: str, answers: Iterable[Answer]) -> tuple[str, int, int]:
    fired, quiet = [], []
    for a in answers:
        own = [c for c in a.cards if (c.get("extension") or {}).get(EXT_RULE) == rule_id]
        if own:
            cards = "".join(render_card(c) for c in own)
            variants = ", ".join(
                sorted({str((c.get("extension") or {}).get(EXT_VARIANT)) for c in own})
            )
            fired.append(
                f"<div class='scenario fired'>{_story(a)}<p class='muted'>variant "
                f"{escape(variants)}</p>{cards}</div>"
            )
        elif rule_id in (a.case.get("covers") or ()):
            others = (
                ", ".join(str((c.get("extension") or {}).get(EXT_RULE)) for c in a.cards)
                or "no cards"
            )
            quiet.append(
                f"<li class='scenario quiet'>{_story(a)}<p class='muted'>Cards given instead: "
                f"{escape(others)}</p></li>"
            )
    body = f"<h2>Cards it produces ({len(fired)} scenarios)</h2>" + (
        "".join(fired) or "<p><strong>No fixture scenario fires this rule yet.</strong></p>"
    )
    body += f"<h2>Where it must not fire ({len(quiet)} scenarios)</h2>" + (
        f"<ul>{''.join(quiet)}</ul>" if quiet else "<p>None recorded.</p>"
    )
    return body, len(fired), len(quiet)


def _rule_links(a: Answer) -> str:
    if a.status != 200:
        return f"HTTP {a.status} (an error, by design)"
    rules = [str((c.get("extension") or {}).get(EXT_RULE)) for c in a.cards]
    return (
        ", ".join(f"<a href='{escape(r)}.html'>{escape(r)}</a>" for r in rules)
        or "no card (the service stays quiet)"
    )


def rule_order(rule_ids: Iterable[str]) -> list[str]:
    return sorted(rule_ids, key=lambda r: (len(r.rstrip("abcdpv")), r))


def write_site(k: Knowledge, answers: list[Answer], out: Path, cards_dir: Path) -> list[Path]:
    """The site: index.html and one page per rule; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    sources = parameter_sources(cards_dir / "parameters.yaml")
    written, rows = [], defaultdict(list)
    for rule_id in rule_order(k.rules):
        review, card = k.reviews[rule_id], k.cards.cards[rule_id]
        scenarios, fired, quiet = _scenarios(rule_id, answers)
        body = (
            f"<p><a href='index.html'>← all rules</a></p>"
            f"<h1>{escape(rule_id)}: {escape(card.title)}</h1>"
            f"<p>{_state(review)} version <code>{review.version}</code></p>"
            f"{_logic(k, rule_id, sources)}{_citations(k, rule_id)}{_history(review)}{scenarios}"
        )
        page = out / f"{rule_id}.html"
        page.write_text(_page(f"{rule_id}: {card.title}", body), encoding="utf-8")
        written.append(page)
        for service in k.services.values():
            if service.hook in k.rules[rule_id].hooks:
                rows[service.id].append(
                    f"<tr class='rule' data-state='{review.state}'>"
                    f"<td><a href='{escape(rule_id)}.html'>{escape(rule_id)}</a></td>"
                    f"<td>{escape(card.title)}</td><td>{_state(review)}</td>"
                    f"<td><code>{review.version}</code></td>"
                    f"<td>{review.review_date or ''}</td><td>{fired}</td><td>{quiet}</td></tr>"
                )
    states = [r.state for r in k.reviews.values()]
    library = "".join(
        f"<tr class='scenario-row'><td>{escape(a.name)}</td>"
        f"<td>{escape(str(a.case.get('story', '')))}</td><td>{_rule_links(a)}</td></tr>"
        for a in answers
    )
    sections = "".join(
        f"<h2>{escape(s.title)} <span class='muted'>({escape(s.id)}, {escape(s.hook)})</span></h2>"
        "<table><tr><th>rule</th><th>title</th><th>state</th><th>version</th><th>reviewed</th>"
        f"<th>scenarios firing</th><th>must not fire</th></tr>{''.join(rows[s.id])}</table>"
        for s in k.services.values()
    )
    body = (
        "<h1>Rule review</h1>"
        f"<p>{states.count('reviewed')} of {len(states)} rules reviewed in their current version; "
        f"{states.count('stale')} stale (changed since review); {states.count('unreviewed')} never "
        f"reviewed. {len(answers)} fixture scenarios.</p>"
        "<p><input id='q' type='search' placeholder='Search rules' aria-label='Search rules'>"
        "<select id='state' aria-label='Review state'><option value=''>all states</option>"
        "<option>reviewed</option><option>stale</option><option>unreviewed</option></select></p>"
        f"{sections}"
        f"<h2>Every scenario ({len(answers)})</h2><table><tr><th>scenario</th><th>story</th>"
        f"<th>cards the service gives</th></tr>{library}</table>"
    )
    index = out / "index.html"
    index.write_text(_page("Rule review", body, _FILTER), encoding="utf-8")
    written.append(index)
    return written


def command(args: argparse.Namespace) -> int:
    from cds.review import sign
    from cds.services import load_knowledge

    settings = settings_or_exit()
    try:
        k = load_knowledge(settings.cards_dir, settings.parameters, settings.validation)
    except ConfigError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    if args.sign:
        if args.sign not in k.reviews:
            print(f"no rule {args.sign!r}; rules: {', '.join(sorted(k.reviews))}", file=sys.stderr)
            return 2
        if not (args.by and args.role):
            print("--sign needs --by NAME and --role ROLE", file=sys.stderr)
            return 2
        try:
            entry = sign(
                settings.cards_dir,
                k.reviews[args.sign],
                by=args.by,
                role=args.role,
                on=args.date or datetime.now(UTC).date(),
                note=args.note or "",
            )
        except (ConfigError, ValueError) as exc:
            print(f"FAILED: {exc}", file=sys.stderr)
            return 1
        after = load_knowledge(settings.cards_dir, settings.parameters, settings.validation)
        state = after.reviews[args.sign]
        still = f"; still needs {', '.join(state.missing_roles)}" if state.missing_roles else ""
        print(
            f"signed {args.sign} version {entry.version} by {printable(entry.reviewed_by)} "
            f"({entry.role}) on {entry.date}: {state.state}{still}"
        )
        return 0
    return _write_review_site(k, settings, Path(args.out), Path(args.fixtures))


def _write_review_site(k: Any, settings: Settings, out: Path, fixtures: Path) -> int:
    from cds.tools.replay import answer_in_process, in_process_client, iter_scenarios

    scenarios = list(iter_scenarios([str(fixtures)]))
    if not scenarios:
        print(f"no fixture scenarios under {fixtures}", file=sys.stderr)
        return 1
    answers = []
    client, fhir = in_process_client()
    with client:
        for i, sc in enumerate(scenarios, 1):
            status, body = answer_in_process(client, fhir, sc)
            cards = body.get("cards", []) if status == 200 else []
            answers.append(Answer(name=sc.name, case=sc.case, status=status, cards=cards))
            if sys.stderr.isatty():
                print(f"\r  scenarios answered: {i}/{len(scenarios)}", end="", file=sys.stderr)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    written = write_site(k, answers, out, settings.cards_dir)
    states = [r.state for r in k.reviews.values()]
    print(
        f"wrote {len(written)} pages to {out} ({len(k.rules)} rules, {len(answers)} scenarios; "
        f"{states.count('reviewed')} reviewed, {states.count('stale')} stale, "
        f"{states.count('unreviewed')} unreviewed); open {out / 'index.html'}"
    )
    return 0
