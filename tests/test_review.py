"""Clinician review: digests that go stale when what a rule uses changes, signing, production
that refuses unreviewed rules, and the review site checked in a real Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import defaultdict
from datetime import date
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from cds.app import create_app
from cds.cards import EXT_REVIEWED, EXT_RULE, EXT_RULE_VERSION
from cds.errors import ConfigError
from cds.review import load_reviews_file, sign
from cds.rules import load_rules
from cds.services import Knowledge, load_knowledge
from cds.settings import REPO_CARDS, Settings
from cds.tools.cli import main
from cds.tools.replay import iter_scenarios
from tests.conftest import BONE_METS_REQUEST, PATIENT_VIEW, ROOT
from tests.e2e.harness import chromium_path
from tests.servers import production

ROLES = ("oncologist", "oncology-pharmacist")


@pytest.fixture(name="cards")
def _cards(tmp_path: Path) -> Path:
    target = tmp_path / "cards"
    shutil.copytree(REPO_CARDS, target)
    return target


def sign_all(cards: Path, rules: list[str] | None = None) -> Knowledge:
    k = load_knowledge(cards)
    for rule_id in rules or list(k.reviews):
        for role in ROLES:
            sign(cards, k.reviews[rule_id], by=f"Dr {role}", role=role, on=date(2026, 12, 1))
    return load_knowledge(cards)


def test_the_shipped_rules_are_all_unreviewed(knowledge: Knowledge) -> None:
    """Nobody has signed a rule: none may pretend to be reviewed."""
    assert {r.state for r in knowledge.reviews.values()} == {"unreviewed"}
    assert load_reviews_file(REPO_CARDS).required_roles == list(ROLES)


def test_both_roles_must_sign_the_current_version(cards: Path) -> None:
    k = load_knowledge(cards)
    sign(cards, k.reviews["R1"], by="Dr A", role="oncologist", on=date(2026, 12, 1))
    half = load_knowledge(cards).reviews["R1"]
    assert half.state == "unreviewed"
    assert half.missing_roles == ("oncology-pharmacist",)
    sign(cards, half, by="B", role="oncology-pharmacist", on=date(2026, 12, 2), note="doses")
    done = load_knowledge(cards).reviews["R1"]
    assert done.state == "reviewed"
    assert done.review_date == date(2026, 12, 2)
    with pytest.raises(ConfigError, match="not one of the required roles"):
        sign(cards, done, by="C", role="nurse", on=date(2026, 12, 2))


def test_editing_a_value_set_makes_the_rules_that_read_it_stale(cards: Path) -> None:
    before = sign_all(cards)
    assert all(r.reviewed for r in before.reviews.values())
    path = cards / "valuesets" / "bone-metastasis.yaml"
    data = yaml.safe_load(path.read_text())
    data["text"] = [*data.get("text", []), "osseous deposit"]
    path.write_text(yaml.safe_dump(data))
    after = load_knowledge(cards)
    users = {r for r, rule in after.rules.items() if "bone-metastasis" in rule.uses.valuesets}
    assert "R1" in users
    assert {r for r, s in after.reviews.items() if s.state == "stale"} == users
    for rule_id in users:
        assert after.reviews[rule_id].version != before.reviews[rule_id].version
    # A comment is not content: the digest is of the parsed file.
    path.write_text("# reviewed wording\n" + path.read_text())
    assert {r for r, s in load_knowledge(cards).reviews.items() if s.state == "stale"} == users


def test_editing_a_sentence_makes_the_rules_that_show_it_stale(cards: Path) -> None:
    """A line a rule's module says (the LVEF rules') re-opens those rules' review and no
    other; a line the facts say (renal function's missing values) re-opens every rule's."""
    before = sign_all(cards)
    path = cards / "sentences.yaml"
    text = path.read_text()
    path.write_text(text.replace('lvef-none: "No LVEF result on record"', 'lvef-none: "No LVEF"'))
    after = load_knowledge(cards)
    lvef = {r for r, rule in after.rules.items() if rule.fn.__module__ == "cds.rules.lvef"}
    assert lvef == {"R11a", "R11b", "R11c"}
    assert {r for r, s in after.reviews.items() if s.state == "stale"} == lvef
    # A layout change is not content: the digest is of the parsed templates.
    path.write_text("# reviewed wording\n" + path.read_text())
    assert {r for r, s in load_knowledge(cards).reviews.items() if s.state == "stale"} == lvef
    path.write_text(text.replace("date of birth", "birth date"))
    assert {r for r, s in load_knowledge(cards).reviews.items() if s.state == "stale"} == set(
        before.reviews
    )


@pytest.mark.parametrize(
    ("edit", "rule"),
    [
        ("parameter", "R4a"),
        ("card", "R6"),
        ("regimen", "R6"),
    ],
)
def test_other_inputs_change_the_digest(cards: Path, edit: str, rule: str) -> None:
    before = sign_all(cards, [rule]).reviews[rule]
    if edit == "parameter":
        text = (cards / "parameters.yaml").read_text()
        (cards / "parameters.yaml").write_text(
            text.replace("dental_lookback_days: 183", "dental_lookback_days: 182")
        )
    elif edit == "card":
        text = (cards / "rules" / "R6.yaml").read_text()
        (cards / "rules" / "R6.yaml").write_text(text.replace("later-line options", "options"))
    else:
        text = (cards / "regimens.yaml").read_text()
        assert "every 3 weeks" in text
        (cards / "regimens.yaml").write_text(text.replace("every 3 weeks", "every 21 days", 1))
    after = load_knowledge(cards).reviews[rule]
    assert after.state == "stale"
    assert after.digest != before.digest


def test_the_code_digest_covers_the_helpers_beside_a_rule(knowledge: Knowledge) -> None:
    """R2's variants are functions beside it: its digest covers its module and the rule
    modules it draws on, so changing a helper cannot leave a review current."""
    from cds.review import rule_code

    code = rule_code(knowledge.rules["R2"])
    assert set(code) == {
        "cds.rules.bisphosphonates",
        "cds.rules.bma_orders",
        "cds.rules.bone",
        "cds.rules.lab_orders",
    }
    assert "def _renal_dose(" in code["cds.rules.bisphosphonates"]
    assert "def renal_line(" in code["cds.rules.bone"]
    assert "def lab_lines(" in code["cds.rules.lab_orders"]


def test_a_parameter_override_is_not_the_reviewed_rule(cards: Path) -> None:
    sign_all(cards, ["R4a"])
    assert load_knowledge(cards).reviews["R4a"].reviewed
    assert load_knowledge(cards, {"dental_lookback_days": 365}).reviews["R4a"].state == "stale"


def test_production_refuses_unreviewed_rules_and_starts_when_signed(
    cards: Path, tmp_path: Path
) -> None:
    settings = Settings(**production(tmp_path, cards_dir=cards, allow_unreviewed=()))
    every = len(load_knowledge(cards).rules)
    with pytest.raises(ConfigError, match=rf"not reviewed \({every}\)") as refused:
        create_app(settings)
    assert all(f"\n  {r} " in str(refused.value) for r in load_knowledge(cards).rules)
    # Listing a rule lets it run (on purpose, and visibly)...
    k = sign_all(cards, [r for r in load_knowledge(cards).rules if r != "R1"])
    with pytest.raises(ConfigError, match=r"not reviewed \(1\):\n  R1 \w+ \(unreviewed"):
        create_app(settings)
    create_app(settings.model_copy(update={"allow_unreviewed": ("R1",)}))
    with pytest.raises(ConfigError, match="unknown rules: R99"):
        create_app(settings.model_copy(update={"allow_unreviewed": ("R99",)}))
    # ...and once every rule is signed, production starts with nothing listed.
    k = sign_all(cards, ["R1"])
    create_app(settings, knowledge=k)


def test_cards_and_discovery_carry_version_and_review_date(
    cards: Path, tmp_path: Path, knowledge: Knowledge
) -> None:
    k = sign_all(cards, ["R1"])
    settings = Settings(feedback_db=tmp_path / "f.sqlite3", cards_dir=cards)
    app = create_app(settings, knowledge=k, http_client=httpx.AsyncClient())
    with TestClient(app) as client:
        services = client.get("/cds-services").json()["services"]
        pv = next(s for s in services if s["id"] == PATIENT_VIEW)
        listed = {r["rule"]: r for r in pv["extension"]["org.cds-mbc-bone.rules"]}
        assert listed["R1"] == {
            "rule": "R1",
            "version": k.reviews["R1"].version,
            "reviewed": "2026-12-01",
        }
        assert listed["R6"]["reviewed"] is None
        body = json.loads(BONE_METS_REQUEST.read_text())
        cards_out = client.post(f"/cds-services/{PATIENT_VIEW}", json=body).json()["cards"]
    r1 = next(c for c in cards_out if c["extension"][EXT_RULE] == "R1")
    assert r1["extension"][EXT_RULE_VERSION] == k.reviews["R1"].version
    assert r1["extension"][EXT_REVIEWED] == "2026-12-01"
    assert "research-draft" not in r1["detail"]
    # The same card from the shipped, unsigned rules: same version, no review, the banner.
    app = create_app(settings, knowledge=knowledge, http_client=httpx.AsyncClient())
    with TestClient(app) as client:
        cards_out = client.post(f"/cds-services/{PATIENT_VIEW}", json=body).json()["cards"]
    draft = next(c for c in cards_out if c["extension"][EXT_RULE] == "R1")
    assert draft["extension"][EXT_RULE_VERSION] == r1["extension"][EXT_RULE_VERSION]
    assert EXT_REVIEWED not in draft["extension"]
    assert "research-draft rule set" in draft["detail"]


def test_cli_signs_and_explains(
    cards: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CDS_CARDS_DIR", str(cards))
    assert main(["review", "--sign", "R1", "--by", "Dr A", "--role", "oncologist"]) == 0
    assert "still needs oncology-pharmacist" in capsys.readouterr().out
    assert main(["review", "--sign", "R1", "--by", "B", "--role", "oncology-pharmacist"]) == 0
    assert ": reviewed" in capsys.readouterr().out
    assert main(["review", "--sign", "R1", "--by", "C", "--role", "nurse"]) == 1
    assert "required roles" in capsys.readouterr().err
    assert main(["review", "--sign", "R99", "--by", "C", "--role", "oncologist"]) == 2
    assert main(["review", "--sign", "R1"]) == 2
    assert main(["check"]) == 0
    assert f"1 of {len(load_rules())} rules reviewed" in capsys.readouterr().out


def _site(out: Path, cards: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDS_CARDS_DIR", str(cards))
    monkeypatch.setenv("CDS_FEEDBACK_DB", str(out.parent / "f.sqlite3"))
    assert main(["review", "--out", str(out)]) == 0


def _expected_cards() -> dict[str, dict[str, int]]:
    """Rule → scenario → cards of it, from the reviewed goldens (not from the site's code)."""
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for sc in iter_scenarios([str(ROOT / "fixtures")]):
        counts: dict[str, int] = defaultdict(int)
        for card in (sc.expected or {}).get("cards", []):
            counts[card["rule"].split(":")[0]] += 1
        for rule, n in counts.items():
            out[rule][sc.name] = n
    return out


def test_site_covers_every_rule_and_scenario(
    tmp_path: Path, cards: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_all(cards, ["R2"])
    out = tmp_path / "site"
    _site(out, cards, monkeypatch)
    k = load_knowledge(cards)
    pages = {p.stem for p in out.glob("*.html")}
    assert pages == {*k.rules, "index"}
    expected = _expected_cards()
    for rule_id in k.rules:
        html = (out / f"{rule_id}.html").read_text()
        for name in expected.get(rule_id, {}):
            block = html.split(f"<strong>{name}</strong>", 1)
            assert len(block) == 2, f"{rule_id}: {name} not shown"
        assert html.count(f'data-rule="{rule_id}"') == sum(expected.get(rule_id, {}).values())
    # The index lists every scenario with the rules whose cards it gets.
    index = (out / "index.html").read_text()
    listed = re.findall(r"<tr class='scenario-row'><td>([^<]+)</td>", index)
    assert sorted(listed) == sorted(sc.name for sc in iter_scenarios([str(ROOT / "fixtures")]))
    r2 = (out / "R2.html").read_text()
    assert 'class="state reviewed"' in r2
    assert "Dr oncologist" in r2
    # The lines its code composes, as the committee reads them (cards/sentences.yaml).
    lines = r2.split("Lines its cards may show", 1)[1]
    assert "<code>creatinine-rise</code>: Creatinine {latest:.2f} mg/dL" in lines
    assert "<code>lvef-latest</code>" not in lines  # a cardiac line is not R2's


def test_site_in_chromium(tmp_path: Path, cards: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if chromium_path() is None:
        if os.environ.get("CI"):
            pytest.fail("no Chromium: CI installs Debian's chromium package")
        pytest.skip("no Chromium executable (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    sign_all(cards, ["R2"])
    out = ROOT / "var" / "review"
    shutil.rmtree(out, ignore_errors=True)
    _site(out / "site", cards, monkeypatch)
    site = out / "site"
    k = load_knowledge(cards)
    expected = _expected_cards()
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 1400})
        page.on("request", lambda r: requests.append(r.url))
        page.goto((site / "index.html").as_uri())
        rows = page.locator("tr.rule")
        per_service = sum(
            1 for s in k.services.values() for r in k.rules.values() if s.hook in r.hooks
        )
        assert rows.count() == per_service
        page.screenshot(path=str(out / "index.png"), full_page=True)
        page.fill("#q", "Next line of HER2")
        assert page.locator("tr.rule:visible").count() == 1
        page.fill("#q", "")
        page.select_option("#state", "reviewed")
        assert page.locator("tr.rule:visible").count() == sum(
            1 for s in k.services.values() if s.hook in k.rules["R2"].hooks
        )
        for rule_id in k.rules:
            page.goto((site / f"{rule_id}.html").as_uri())
            assert page.locator("h1").inner_text().startswith(f"{rule_id}: ")
            cards_shown = page.locator(f'.scenario.fired .card[data-rule="{rule_id}"]')
            assert cards_shown.count() == sum(expected.get(rule_id, {}).values())
            for i in range(cards_shown.count()):
                card = cards_shown.nth(i)
                indicator = card.locator(".indicator").inner_text().lower()
                assert indicator in ("info", "warning", "critical")
                assert indicator in (card.get_attribute("class") or "")
                assert card.locator(".summary").inner_text()
            if rule_id in ("R1", "R2"):
                assert page.locator(".scenario.fired .suggestion").count() > 0
                page.screenshot(path=str(out / f"{rule_id}.png"), full_page=True)
        browser.close()
    assert all(u.startswith("file://") for u in requests)
