"""The scenario library, replayed: goldens, clinician expectations, both data paths, the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import respx
from fastapi.testclient import TestClient

from cds import schemas
from cds.prefetch import render_template
from cds.services import Knowledge
from cds.tools.cli import main
from cds.tools.replay import Scenario, digest, iter_scenarios
from tests.conftest import ROOT, SHARED, needs_shared

FIXTURES = ROOT / "fixtures"
SCENARIOS = list(iter_scenarios([str(FIXTURES)]))


def test_the_library_is_large_and_documented() -> None:
    assert len(SCENARIOS) >= 40
    for sc in SCENARIOS:
        assert sc.case["story"], sc.name
        assert sc.case["clinician_expects"], sc.name
        assert sc.expected is not None, f"{sc.name} has no expected.json"
    hooks = {sc.request["hook"] for sc in SCENARIOS}
    assert hooks == {"patient-view", "order-select", "order-sign"}


def test_every_rule_variant_is_covered(knowledge: Knowledge) -> None:
    covered = {c["rule"] for sc in SCENARIOS for c in (sc.expected or {}).get("cards", [])}
    variants = {f"{r.id}:{v}" for r in knowledge.rules.values() for v in r.variants}
    assert variants - covered == set()


def test_every_decision_names_only_what_its_rule_declares(knowledge: Knowledge) -> None:
    """Each rule declares its value sets, regimens, orders, suggestions and notes, which are
    checked at start-up; here every scenario's decisions are held to those declarations."""
    from datetime import date

    from cds.facts import extract_facts
    from cds.facts.orders import NO_DRAFTS, read_draft_orders
    from cds.rules import evaluate

    checked = 0
    for sc in SCENARIOS:
        prefetch = sc.request.get("prefetch") or {}
        if not prefetch:
            continue
        ctx = sc.request["context"]
        facts = extract_facts(
            prefetch.values(),
            knowledge.terminology,
            knowledge.parameters,
            as_of=date.fromisoformat(sc.case["as_of"]),
        )
        drafts = NO_DRAFTS
        if "draftOrders" in ctx:
            drafts = read_draft_orders(
                ctx["draftOrders"], ctx.get("selections") or (), knowledge.terminology
            )
        for d in evaluate(sc.request["hook"], facts, drafts, knowledge.parameters):
            assert knowledge.rules[d.rule].undeclared(d) == set(), (sc.name, d.concern)
            checked += 1
    assert checked > 50


def test_no_card_shows_a_note_key_instead_of_its_sentence(
    client: TestClient, knowledge: Knowledge
) -> None:
    """Issue 9 item 13: a note key ('calcium-uncorrected') is never rendered as text."""
    keys = set(knowledge.cards.common.notes)
    for card in knowledge.cards.cards.values():
        keys |= set(card.notes)
    for sc in PREFETCHED:
        r = post(client, sc)
        if r.status_code != 200:
            continue
        for card in r.json()["cards"]:
            lines = {line.removeprefix("- ").strip() for line in card["detail"].splitlines()}
            assert not lines & keys, (sc.name, lines & keys)


def test_undocumented_progression_is_not_shown_as_progression(client: TestClient) -> None:
    """C9: R7 lists what it found under its own heading, never as 'Progression'."""
    sc = next(s for s in SCENARIOS if s.path.name == "her2-therapy-stopped-no-reason")
    card = post(client, sc).json()["cards"][0]
    assert "Found: " in card["detail"]
    assert "Progression: " not in card["detail"]


def post(client: TestClient, sc: Scenario, body: dict[str, Any] | None = None) -> Any:
    return client.post(f"/cds-services/{sc.service}", json=body or sc.request)


PREFETCHED = [s for s in SCENARIOS if s.fhir_dir is None]


@pytest.mark.parametrize("sc", PREFETCHED, ids=[s.name for s in PREFETCHED])
def test_replay(client: TestClient, sc: Scenario) -> None:
    """Each scenario gives its reviewed cards, which are also what the clinician expects.
    (Scenarios that ship fhir/ files are replayed by test_fetch_path_scenarios.)"""
    r = post(client, sc)
    assert r.status_code == sc.case.get("status", 200), r.text
    if r.status_code != 200:
        schemas.OperationOutcome.model_validate(r.json())
        return
    schemas.CDSResponse.model_validate(r.json())
    got = digest(r.json())
    assert got == sc.expected
    assert [c["rule"] for c in got["cards"]] == sc.case["expect"]


def serve(
    mock: respx.MockRouter, templates: dict[str, str], patient_id: str, data: dict[str, Any]
) -> None:
    """Answer the service's queries with the scenario's data, through respx."""

    def handler(request: httpx.Request) -> httpx.Response:
        wanted = unquote(request.url.raw_path.decode())
        for key, template in templates.items():
            if wanted.endswith("/" + unquote(render_template(template, {"patientId": patient_id}))):
                return httpx.Response(200, json=data[key])
        return httpx.Response(404)

    mock.route(host="127.0.0.1", port=9999).mock(side_effect=handler)


@pytest.mark.parametrize(
    "sc",
    [s for s in SCENARIOS if s.fhir_dir is None and "prefetch" in s.request],
    ids=[s.name for s in SCENARIOS if s.fhir_dir is None and "prefetch" in s.request],
)
def test_both_data_paths_give_the_same_cards(
    client: TestClient, knowledge: Knowledge, sc: Scenario
) -> None:
    """Strip the prefetch and serve the same data from a FHIR server: same cards."""
    prefetched = post(client, sc).json()
    body = {k: v for k, v in sc.request.items() if k != "prefetch"}
    body["fhirServer"] = "http://127.0.0.1:9999/fhir"
    templates = dict(knowledge.services[sc.service].prefetch)
    data = {
        k: v if v is not None else {"resourceType": "Bundle", "type": "searchset"}
        for k, v in sc.request["prefetch"].items()
    }
    with respx.mock() as mock:
        serve(mock, templates, sc.request["context"]["patientId"], data)
        fetched = post(client, sc, body)
    assert fetched.status_code == 200, fetched.text
    assert digest(fetched.json()) == digest(prefetched)


@pytest.mark.parametrize(
    "sc", [s for s in SCENARIOS if s.fhir_dir is not None], ids=lambda s: s.name
)
def test_fetch_path_scenarios(client: TestClient, knowledge: Knowledge, sc: Scenario) -> None:
    """Scenarios that ship fhir/ files: fetched through respx, or refused (412) when the
    fhirServer is not on the allowlist - then nothing is fetched at all."""
    assert sc.fhir_dir is not None
    data = {p.stem: json.loads(p.read_text()) for p in sc.fhir_dir.glob("*.json")}
    with respx.mock(assert_all_called=False) as mock:
        serve(
            mock,
            dict(knowledge.services[sc.service].prefetch),
            sc.request["context"]["patientId"],
            data,
        )
        r = post(client, sc)
        calls = mock.calls.call_count
    assert r.status_code == sc.case["status"], r.text
    if r.status_code == 200:
        schemas.CDSResponse.model_validate(r.json())  # every card conforms (cds-resp-1..6)
        assert digest(r.json()) == sc.expected
        assert calls == len(data)  # one request per prefetch key, in parallel
    else:
        schemas.OperationOutcome.model_validate(r.json())
        assert calls == 0


class TestCli:
    def test_replays_the_library(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["replay", "--quiet", str(FIXTURES)]) == 0
        out = capsys.readouterr().out
        assert f"replay: {len(SCENARIOS)} passed, 0 failed" in out

    def test_mismatch_exits_non_zero_and_shows_the_difference(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        src = FIXTURES / "mbc-bone-patient-view" / "her2-negative-bone-mets-no-bma"
        dst = tmp_path / "mbc-bone-patient-view" / "case"
        shutil.copytree(src, dst)
        expected = json.loads((dst / "expected.json").read_text())
        expected["cards"][0]["indicator"] = "info"
        (dst / "expected.json").write_text(json.dumps(expected))
        assert main(["replay", "--quiet", str(tmp_path)]) == 1
        out = capsys.readouterr().out
        assert "differs" in out
        assert '-   "indicator": "info"' in out

    def test_update_rewrites_only_when_asked(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        src = FIXTURES / "mbc-bone-patient-view" / "her2-negative-bone-mets-no-bma"
        dst = tmp_path / "mbc-bone-patient-view" / "case"
        shutil.copytree(src, dst)
        (dst / "expected.json").write_text('{"cards": []}')
        assert main(["replay", "--quiet", "--update", str(tmp_path)]) == 0
        assert "updating" in capsys.readouterr().out
        assert json.loads((dst / "expected.json").read_text()) == json.loads(
            (src / "expected.json").read_text()
        )

    def test_a_scenario_without_its_golden_file_is_not_passed(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A new scenario's cards are reviewed before they become its golden file: until then
        replay fails, even where the service gives no card."""
        src = FIXTURES / "mbc-bone-patient-view" / "bma-declined"
        dst = tmp_path / "mbc-bone-patient-view" / "case"
        shutil.copytree(src, dst)
        (dst / "expected.json").unlink()
        assert main(["replay", "--quiet", str(tmp_path)]) == 1
        assert "no expected.json yet" in capsys.readouterr().out

    def test_cards_the_clinician_did_not_expect_never_become_a_golden_file(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        src = FIXTURES / "mbc-bone-patient-view" / "her2-negative-bone-mets-no-bma"
        dst = tmp_path / "mbc-bone-patient-view" / "case"
        shutil.copytree(src, dst)
        (dst / "expected.json").unlink()
        case = json.loads((dst / "case.json").read_text())
        case["expect"] = ["R2b:dose-unread"]
        (dst / "case.json").write_text(json.dumps(case))
        assert main(["replay", "--quiet", "--update", str(tmp_path)]) == 1
        out = capsys.readouterr().out
        assert "not updating" in out
        assert "the clinician expects ['R2b:dose-unread'] (case.json)" in out
        assert not (dst / "expected.json").exists()

    @needs_shared(SHARED / "cds-hooks" / "examples")
    def test_conformance_mode(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["replay", "--conformance", "--quiet"]) == 0
        assert " 0 failed" in capsys.readouterr().out

    def test_conformance_examples_from_a_given_folder(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An installed service has no ../shared: it is given the folder (issue 27)."""
        scenario = ROOT / "fixtures" / "mbc-bone-patient-view" / "her2-positive-first-line"
        shutil.copy(scenario / "request.json", tmp_path / "one.json")
        assert main(["replay", "--conformance", "--examples", str(tmp_path), "--quiet"]) == 0
        assert "conformance: 1 passed, 0 failed" in capsys.readouterr().out

    def test_conformance_without_examples_says_so(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Never a silent 'passed' over nothing."""
        missing = tmp_path / "nowhere"
        assert main(["replay", "--conformance", "--examples", str(missing)]) == 2
        assert "pass --examples DIR" in capsys.readouterr().out
        assert main(["replay", "--conformance", "--examples", str(tmp_path)]) == 1

    def test_no_scenarios(self, tmp_path: Path) -> None:
        assert main(["replay", str(tmp_path)]) == 1


def test_replay_against_a_running_server_sends_fetch_files_as_prefetch() -> None:
    from cds.tools.replay import inline_prefetch

    fetched = next(s for s in SCENARIOS if s.fhir_dir is not None and s.case["status"] == 200)
    refused = next(s for s in SCENARIOS if s.case["status"] == 412)
    assert set(inline_prefetch(fetched)["prefetch"]) == {
        p.stem
        for p in fetched.fhir_dir.glob("*.json")  # type: ignore[union-attr]
    }
    assert "prefetch" not in inline_prefetch(refused)
