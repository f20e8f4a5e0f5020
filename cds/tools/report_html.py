"""The committee report as one self-contained HTML file: inline CSS and SVG, no scripts, no
fonts or images from anywhere, so it opens from a mail attachment or a shared drive.

Per service: a table of its rules, a bar chart of override rates with their 95% intervals, and
a weekly trend per rule (cards issued as bars, the override rate as a line).
"""

from __future__ import annotations

from collections import defaultdict
from html import escape

from cds.tools.report import Report, RuleLine, Week

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:72em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0}th,td{padding:.25em .6em;border-bottom:1px solid #ddd}
th{text-align:left;background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.flagged td{background:#fde8e8}.flag{color:#b00;font-weight:bold}
.note{color:#555;font-size:.9em}figure{margin:1em 0}figcaption{font-size:.9em;color:#555}
svg text{font:11px system-ui,sans-serif;fill:#333}
"""


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def _row(r: RuleLine) -> str:
    interval = f"{_pct(r.interval[0])}–{_pct(r.interval[1])}" if r.interval else "-"
    reasons = ", ".join(f"{escape(code)}: {n}" for code, n in r.override_reasons.items()) or "-"
    flag = '<span class="flag">flagged</span>' if r.flagged else ""
    cells = (
        f"<td>{escape(r.rule)}</td><td>{escape(r.title)}</td><td>{escape(r.variant or '-')}</td>"
        f'<td class="n">{r.issued}</td><td class="n">{r.patients}</td>'
        f'<td class="n">{r.accepted}</td><td class="n">{r.overridden}</td>'
        f'<td class="n">{r.no_feedback}</td><td class="n">{_pct(r.override_rate)}</td>'
        f'<td class="n">{interval}</td><td>{reasons}</td><td>{flag}</td>'
    )
    return f'<tr class="{"flagged" if r.flagged else ""}">{cells}</tr>'


def _table(rules: list[RuleLine]) -> str:
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "rule",
            "title",
            "variant",
            "issued",
            "patients",
            "accepted",
            "overridden",
            "no feedback",
            "override rate",
            "95% interval",
            "override reasons",
            "",
        )
    )
    body = "".join(_row(r) for r in rules)
    return f'<table class="rules"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _bars(rules: list[RuleLine], flag: float) -> str:
    """Horizontal bars: override rate per rule variant, whiskers for the interval."""
    answered = [r for r in rules if r.override_rate is not None]
    if not answered:
        return '<p class="note">No card of this service has had feedback yet.</p>'
    label_w, plot_w, row_h = 260, 420, 22
    height = row_h * len(answered) + 30

    def x(v: float) -> float:
        return label_w + v * plot_w

    parts = [
        f'<svg class="rates" role="img" width="{label_w + plot_w + 20}" height="{height}"'
        f' viewBox="0 0 {label_w + plot_w + 20} {height}"'
        ' aria-label="Override rate per rule, with 95% intervals">',
        f'<line x1="{x(flag):.1f}" y1="0" x2="{x(flag):.1f}" y2="{height - 20}"'
        ' stroke="#b00" stroke-dasharray="4 3"/>',
    ]
    for tick in (0, 0.25, 0.5, 0.75, 1):
        parts.append(
            f'<text x="{x(tick):.1f}" y="{height - 5}" text-anchor="middle">{tick:.0%}</text>'
        )
    for i, r in enumerate(answered):
        y = i * row_h + 4
        rate = r.override_rate or 0.0
        lo, hi = r.interval or (rate, rate)
        colour = "#c0392b" if r.flagged else "#4a78b5"
        name = escape(f"{r.rule} {r.variant}")
        parts += [
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{name}</text>',
            f'<rect class="bar" x="{label_w}" y="{y}" width="{rate * plot_w:.1f}"'
            f' height="{row_h - 8}" fill="{colour}"><title>{name}: {_pct(rate)}</title></rect>',
            f'<line x1="{x(lo):.1f}" y1="{y + 7}" x2="{x(hi):.1f}" y2="{y + 7}" stroke="#222"/>',
            f'<line x1="{x(lo):.1f}" y1="{y + 2}" x2="{x(lo):.1f}" y2="{y + 12}" stroke="#222"/>',
            f'<line x1="{x(hi):.1f}" y1="{y + 2}" x2="{x(hi):.1f}" y2="{y + 12}" stroke="#222"/>',
        ]
    parts.append("</svg>")
    return (
        "<figure>" + "".join(parts) + "<figcaption>Override rate per rule variant; whiskers: "
        f"95% interval; dashed line: the flag threshold ({flag:.0%}).</figcaption></figure>"
    )


def _trend(rule: str, weeks: list[Week]) -> str:
    """One rule's weeks: issued cards as bars (left scale), override rate as a line (0-100%)."""
    w, h, pad = 420, 90, 18
    step = (w - 2 * pad) / max(len(weeks), 1)
    top = max(wk.issued for wk in weeks) or 1
    parts = [
        f'<svg class="trend" role="img" width="{w}" height="{h + 20}" viewBox="0 0 {w} {h + 20}"'
        f' aria-label="Weekly trend of {escape(rule)}">',
        f'<line x1="{pad}" y1="{h}" x2="{w - pad}" y2="{h}" stroke="#999"/>',
    ]
    points = []
    for i, wk in enumerate(weeks):
        bar_h = (h - 10) * wk.issued / top
        x0 = pad + i * step
        parts.append(
            f'<rect x="{x0 + 1:.1f}" y="{h - bar_h:.1f}" width="{max(step - 2, 1):.1f}"'
            f' height="{bar_h:.1f}" fill="#c9d6ea"><title>week of {wk.monday}: {wk.issued} issued,'
            f" override rate {_pct(wk.override_rate)}</title></rect>"
        )
        if wk.override_rate is not None:
            points.append(f"{x0 + step / 2:.1f},{h - (h - 10) * wk.override_rate:.1f}")
    if points:
        parts.append(
            f'<polyline points="{" ".join(points)}" fill="none" stroke="#c0392b" stroke-width="2"/>'
        )
    parts += [
        f'<text x="{pad}" y="{h + 14}">{weeks[0].monday}</text>',
        f'<text x="{w - pad}" y="{h + 14}" text-anchor="end">{weeks[-1].monday}</text>',
        "</svg>",
    ]
    return (
        f'<figure class="rule-trend"><figcaption>{escape(rule)}: cards issued per week (bars),'
        " override rate (line)</figcaption>" + "".join(parts) + "</figure>"
    )


def render(report: Report) -> str:
    by_service: dict[str, list[RuleLine]] = defaultdict(list)
    for r in report.rules:
        by_service[r.service].append(r)
    period = f"{report.since or 'the first record kept'} to {report.until} (until excluded)"
    flagged = sum(r.flagged for r in report.rules)
    sections = []
    for service, rules in sorted(by_service.items()):
        trends = "".join(
            _trend(rule, weeks) for (svc, rule), weeks in report.weeks.items() if svc == service
        )
        sections.append(
            f'<section class="service"><h2>{escape(service or "(service not recorded)")}</h2>'
            f"{_table(rules)}"
            f"{_bars(rules, report.flag)}<h3>Weekly trend</h3>{trends}</section>"
        )
    snoozes = "".join(
        f"<li>{escape(rule)}: "
        + ", ".join(f"{escape(reason)} {n}" for reason, n in reasons.items())
        + "</li>"
        for rule, reasons in sorted(report.snoozed.items())
    )
    body = "".join(sections) or "<p>No cards were issued in this period.</p>"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>CDS card feedback report</title>"
        f"<style>{_CSS}</style></head><body>"
        "<h1>CDS card feedback report</h1>"
        f"<p>Cards issued from {escape(period)}. {flagged} rule variant(s) flagged: override "
        f"rate above {report.flag:.0%} with at least {report.min_cards} answered cards.</p>"
        '<p class="note">Override rate = overridden / (accepted + overridden), with Wilson 95% '
        "intervals. Cards without feedback are counted apart: many EHRs send feedback only "
        "when a clinician acts. Patients are counted by keyed hashes; the report holds no "
        "patient data.</p>"
        f"{body}"
        + (
            f"<h2>Snoozes begun</h2><p class='note'>Patients whose card went quiet after "
            f"feedback, per rule and reason.</p><ul>{snoozes}</ul>"
            if snoozes
            else ""
        )
        + "</body></html>\n"
    )
