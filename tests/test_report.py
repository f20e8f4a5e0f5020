"""`cds report`: the committee's numbers equal counts made here, independently, from the
feedback this test posted - on SQLite and on a real PostgreSQL - and the HTML report renders in
a real Chromium."""

from __future__ import annotations

import json
import os
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from cds.schemas import FeedbackItem
from cds.store import DAY_S, IssuedCard, PostgresStore, SQLiteStore, Store
from cds.tools import report, report_html
from cds.tools.cli import main
from fixtures.factories import for_patient
from tests.conftest import ROOT
from tests.e2e.harness import chromium_path
from tests.servers import postgres_cluster

START = datetime(2026, 9, 7, tzinfo=UTC).timestamp()  # a Monday
PV = "mbc-bone-patient-view"
OS = "mbc-bone-order-sign"
# (service, rule, variant, indicator)
KINDS = (
    (PV, "R1", "start", "warning"),
    (PV, "R1", "renal", "warning"),
    (PV, "R4", "default", "info"),
    (OS, "R2", "crcl-below-30", "critical"),
)
REASONS = ("patient-declined", "already-addressed", "not-clinically-appropriate")


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@dataclass
class Posted:
    """What the test issued and posted, counted here without the store's SQL."""

    issued: Counter[tuple[str, str, str]]
    patients: dict[tuple[str, str, str], set[str]]
    accepted: Counter[tuple[str, str, str]]
    overridden: Counter[tuple[str, str, str]]
    reasons: dict[tuple[str, str, str], Counter[str]]
    weekly: Counter[tuple[str, str, int]]


def seed(store: Store, clock: Clock, seed: int = 7, days: int = 35) -> Posted:
    rnd = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    posted = Posted(
        Counter(), defaultdict(set), Counter(), Counter(), defaultdict(Counter), Counter()
    )
    n = 0
    for day in range(days):
        clock.now = START + day * DAY_S + 3600
        cards: list[IssuedCard] = []
        items: list[tuple[str, dict[str, Any]]] = []
        for _ in range(rnd.randint(3, 9)):
            service, rule, variant, indicator = rnd.choice(KINDS)
            key = (service, rule, variant)
            patient = f"patient-{rnd.randint(1, 12)}"
            n += 1
            card = f"card-{n}"
            cards.append(
                IssuedCard(
                    card=card,
                    rule=rule,
                    patient_key=patient,
                    evidence="e",
                    service_id=service,
                    caller="|",
                    suggestions=("s1",),
                    variant=variant,
                    indicator=indicator,
                )
            )
            posted.issued[key] += 1
            posted.patients[key].add(patient)
            posted.weekly[(service, rule, day // 7)] += 1
            answer = rnd.random()
            when = datetime.fromtimestamp(clock.now, UTC).isoformat()
            if answer < 0.3:
                items.append((service, {"card": card, "outcome": "accepted",
                                        "acceptedSuggestions": [{"id": "s1"}],
                                        "outcomeTimestamp": when}))  # fmt: skip
                posted.accepted[key] += 1
            elif answer < 0.75:
                reason = rnd.choice(REASONS)
                # A card overridden twice (two clinicians) is one overridden card.
                for k in range(1 + (answer < 0.35)):
                    stamp = when.replace("+00:00", f".{k}Z")
                    items.append((service, {"card": card, "outcome": "overridden",
                                            "overrideReason": {"reason": {"code": reason}},
                                            "outcomeTimestamp": stamp}))  # fmt: skip
                posted.overridden[key] += 1
                posted.reasons[key][reason] += 1
        store.record_issued(cards)
        for service in (PV, OS):
            batch = [FeedbackItem.model_validate(i) for s, i in items if s == service]
            if batch:
                store.add(service, batch, caller="|")
    return posted


def expected_rules(posted: Posted, flag: float = 0.9, min_cards: int = 30) -> list[dict[str, Any]]:
    out = []
    for key in sorted(posted.issued):
        a, o = posted.accepted[key], posted.overridden[key]
        out.append(
            {
                "service": key[0],
                "rule": key[1],
                "variant": key[2],
                "issued": posted.issued[key],
                "patients": len(posted.patients[key]),
                "accepted": a,
                "overridden": o,
                "no_feedback": posted.issued[key] - a - o,
                "override_reasons": dict(sorted(posted.reasons[key].items())),
                "override_rate": round(o / (a + o), 4) if a + o else None,
                "flagged": a + o >= min_cards and o / (a + o) > flag,
            }
        )
    return out


def _strip(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in ("interval", "title")} for r in rules]


@pytest.fixture(name="sqlite_seeded")
def _sqlite_seeded(tmp_path: Path) -> tuple[Path, Posted]:
    clock = Clock()
    db = tmp_path / "feedback.sqlite3"
    store = SQLiteStore(db, clock=clock, retention_days=400)
    posted = seed(store, clock)
    store.close()
    return db, posted


def test_wilson_matches_published_values() -> None:
    # Newcombe (1998), Table I: 0/10 -> 0.0000-0.2775; 15/148 -> 0.0624-0.1605.
    lo, hi = report.wilson(0, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.0, 0.2775)
    lo, hi = report.wilson(15, 148)
    assert (round(lo, 4), round(hi, 4)) == (0.0624, 0.1605)


def test_counts_equal_what_was_posted(sqlite_seeded: tuple[Path, Posted]) -> None:
    db, posted = sqlite_seeded
    store = SQLiteStore(db)
    rows = store.report_rows(0.0, START + 400 * DAY_S, None)
    store.close()
    built = report.build(rows, since=None, until=date(2027, 1, 1))
    got = built.as_json()["rules"]
    assert _strip(got) == expected_rules(posted)
    for line in got:
        if line["override_rate"] is not None:
            lo, hi = line["interval"]
            assert lo <= line["override_rate"] <= hi
    # The weekly trend adds up to the same cards, week by week.
    weekly = {
        (w["service"], w["rule"], i): week["issued"]
        for w in built.as_json()["weeks"]
        for i, week in enumerate(w["weeks"])
    }
    assert weekly == dict(posted.weekly)
    assert all(
        date.fromisoformat(week["monday"]).weekday() == 0
        for w in built.as_json()["weeks"]
        for week in w["weeks"]
    )


def test_flags_only_rules_with_enough_answers(sqlite_seeded: tuple[Path, Posted]) -> None:
    db, posted = sqlite_seeded
    store = SQLiteStore(db)
    rows = store.report_rows(0.0, START + 400 * DAY_S, None)
    store.close()
    rates = {
        (r.service_id, r.rule, r.variant): r.overridden / (r.accepted + r.overridden)
        for r in rows.tallies
    }
    lowest = min(rates.values())
    built = report.build(rows, since=None, until=date(2027, 1, 1), flag=lowest - 0.01, min_cards=1)
    assert all(r.flagged for r in built.rules)
    built = report.build(
        rows, since=None, until=date(2027, 1, 1), flag=lowest - 0.01, min_cards=10**6
    )
    assert not any(r.flagged for r in built.rules)
    assert _strip(built.as_json()["rules"]) == expected_rules(posted, lowest - 0.01, 10**6)


def test_cli_json_period_and_service(
    sqlite_seeded: tuple[Path, Posted], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    db, posted = sqlite_seeded
    monkeypatch.setenv("CDS_FEEDBACK_DB", str(db))
    assert main(["report", "--json", "--until", "2027-01-01"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert _strip(out["rules"]) == expected_rules(posted)
    # The first week only, one service: the counts of that week.
    assert main(["report", "--json", "--since", "2026-09-07", "--until", "2026-09-14",
                 "--service", OS]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    first_week = {(s, r): n for (s, r, week), n in posted.weekly.items() if week == 0 and s == OS}
    assert {(r["service"], r["rule"]): r["issued"] for r in out["rules"]} == first_week
    assert main(["report", "--since", "2026-10-01", "--until", "2026-09-01"]) == 2
    assert "is not before" in capsys.readouterr().err


def test_cli_text_names_flagged_rules(
    sqlite_seeded: tuple[Path, Posted], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    db, _ = sqlite_seeded
    monkeypatch.setenv("CDS_FEEDBACK_DB", str(db))
    assert main(["report", "--until", "2027-01-01", "--flag", "0", "--min-cards", "1"]) == 0
    out = capsys.readouterr()
    assert out.out.count("FLAGGED") == len(KINDS)
    assert "Bone metastases" in out.out or "R1" in out.out
    assert "cards issued" in out.err


def test_report_on_postgresql_equals_sqlite(sqlite_seeded: tuple[Path, Posted]) -> None:
    db, posted = sqlite_seeded
    with postgres_cluster() as url:
        clock = Clock()
        pg = PostgresStore(url, clock=clock, retention_days=400, require_schema=False)
        pg.migrate()
        again = seed(pg, clock)
        rows = pg.report_rows(0.0, START + 400 * DAY_S, None)
        pg.close()
    assert again == posted
    built = report.build(rows, since=None, until=date(2027, 1, 1))
    assert _strip(built.as_json()["rules"]) == expected_rules(posted)
    lite = SQLiteStore(db)
    assert report.build(lite.report_rows(0.0, START + 400 * DAY_S, None), since=None,
                        until=date(2027, 1, 1)).as_json() == built.as_json()  # fmt: skip
    lite.close()


def test_html_report_renders_in_chromium(sqlite_seeded: tuple[Path, Posted]) -> None:
    if chromium_path() is None:
        if os.environ.get("CI"):
            pytest.fail("no Chromium: CI installs Debian's chromium package")
        pytest.skip("no Chromium executable (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    db, posted = sqlite_seeded
    store = SQLiteStore(db)
    built = report.build(
        store.report_rows(0.0, START + 400 * DAY_S, None),
        since=None,
        until=date(2027, 1, 1),
        flag=0.5,
        min_cards=5,
    )
    store.close()
    out = ROOT / "var" / "report"
    out.mkdir(parents=True, exist_ok=True)
    page_file = out / "report.html"
    html = report_html.render(built)
    assert "<script" not in html
    assert "http" not in html
    page_file.write_text(html, encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1300, "height": 1600})
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(page_file.as_uri())
        assert page.locator("section.service").count() == 2
        assert page.locator("table.rules tbody tr").count() == len(posted.issued)
        assert page.locator("svg.rates rect.bar").count() == len(posted.issued)
        flagged = sum(r.flagged for r in built.rules)
        assert flagged
        assert page.locator("tr.flagged").count() == flagged
        assert page.locator("svg.trend").count() == len({(s, r) for s, r, _ in posted.weekly})
        first = page.locator("table.rules tbody tr").first.inner_text()
        assert str(built.rules[0].issued) in first
        page.screenshot(path=str(out / "report.png"), full_page=True)
        browser.close()
    assert requests == [page_file.as_uri()]  # nothing fetched from anywhere


def test_report_of_feedback_posted_through_the_api(client: Any, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: Any, settings: Any) -> None:  # fmt: skip
    """Cards the service issued, feedback an EHR posted: `cds report --json` counts them."""
    from tests.conftest import BONE_METS_REQUEST, PATIENT_VIEW

    posted: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for i in range(9):
        # A patient each: an overridden card is snoozed for its patient.
        body = for_patient(json.loads(BONE_METS_REQUEST.read_text()), f"report-patient-{i}")
        body["hookInstance"] = f"00000000-0000-4000-8000-00000000000{i}"
        answer = client.post(f"/cds-services/{PATIENT_VIEW}", json=body).json()
        card = next(c for c in answer["cards"] if c.get("suggestions"))
        when = f"2026-11-22T10:00:0{i}Z"
        if i % 3 == 0:
            item = {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": when,
                    "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}]}  # fmt: skip
        else:
            code = "patient-declined" if i % 3 == 1 else "already-addressed"
            item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": when,
                    "overrideReason": {"reason": {"code": code}}}  # fmt: skip
        if i < 8:  # the last card gets no feedback
            r = client.post(f"/cds-services/{PATIENT_VIEW}/feedback", json={"feedback": [item]})
            assert r.status_code == 200, r.text
            posted[item["outcome"]] += 1
            if item["outcome"] == "overridden":
                reasons[code] += 1
    monkeypatch.setenv("CDS_FEEDBACK_DB", str(settings.feedback_db))
    assert main(["report", "--json", "--service", PATIENT_VIEW]) == 0
    report = json.loads(capsys.readouterr().out)
    (line,) = report["rules"]
    # Snoozes are kept per card (R1:start); the report counts them by rule.
    assert report["snoozed"] == {"R1": {"accepted": posted["accepted"], "overridden": 5}}
    assert (line["rule"], line["variant"]) == ("R1", "start")
    assert line["title"].startswith("Start a bone-modifying agent")
    assert line["issued"] == 9
    assert line["patients"] == 9
    assert (line["accepted"], line["overridden"], line["no_feedback"]) == (
        posted["accepted"], posted["overridden"], 1,
    )  # fmt: skip
    assert line["override_reasons"] == dict(sorted(reasons.items()))
    assert line["override_rate"] == round(posted["overridden"] / 8, 4)
