"""Every `cds` command in every output mode, as a user runs it (issue 13: `feedback --json`
used to crash, and nothing would have noticed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cds import __version__, schemas
from cds.store import SQLiteStore
from cds.tools.cli import main
from tests.conftest import ROOT, SHARED, needs_shared, record_issued
from tests.servers import running_service
from tests.test_sandbox_requests import captured

SCENARIO = ROOT / "fixtures" / "mbc-bone-patient-view" / "her2-positive-first-line"


@pytest.fixture(name="served")
def _served(tmp_path: Path) -> Iterator[str]:
    with running_service(tmp_path) as (base, _):
        yield base


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for command in ("serve", "migrate", "check", "feedback", "catalog", "replay", "validate"):
        assert command in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert __version__ in capsys.readouterr().out


def test_check_verbose_prints_the_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-v"]) == 0
    out = capsys.readouterr().out
    assert "cross-checked, OK" in out
    assert '"fetch_deadline_s"' in out


def test_output_cut_short_by_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`cds replay | head -1`: no BrokenPipeError traceback, and exit 1 (the work was cut)."""
    env = {**os.environ, "CDS_FEEDBACK_DB": str(tmp_path / "f.sqlite3")}
    with subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "cds", "replay", str(ROOT / "fixtures")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        # The reader goes away before the first line is written (as head does after its
        # line): the table is smaller than a pipe's buffer, so closing later could miss it.
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 1
    assert "Traceback" not in err
    assert "BrokenPipeError" not in err


def test_replay_with_knowledge_that_does_not_fit_says_why_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cards = tmp_path / "cards"
    shutil.copytree(ROOT / "cards", cards)
    sentences = cards / "sentences.yaml"
    kept = [x for x in sentences.read_text().splitlines() if not x.startswith("draft-order:")]
    sentences.write_text("\n".join(kept) + "\n")
    monkeypatch.setenv("CDS_CARDS_DIR", str(cards))
    monkeypatch.setenv("CDS_FEEDBACK_DB", str(tmp_path / "f.sqlite3"))
    scenario = ROOT / "fixtures" / "mbc-bone-patient-view" / "bma-declined"
    assert main(["replay", "--quiet", str(scenario)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cds replay: knowledge files do not match the rules")
    assert "draft-order" in err


class TestFeedback:
    def store(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        db = tmp_path / "f.sqlite3"
        s = SQLiteStore(db)
        for service, card in (("mbc-bone-patient-view", "c1"), ("mbc-bone-order-sign", "c2")):
            item = schemas.FeedbackItem.model_validate(
                {
                    "card": card,
                    "outcome": "accepted",
                    "acceptedSuggestions": [{"id": "s1"}],
                    "outcomeTimestamp": "2026-11-22T10:00:00Z",
                }
            )
            record_issued(s, card, service)
            s.add(service, [item])
        s.close()
        monkeypatch.setenv("CDS_FEEDBACK_DB", str(db))

    def test_table(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        self.store(tmp_path, monkeypatch)
        assert main(["feedback"]) == 0
        out = capsys.readouterr().out
        assert "c1" in out
        assert "c2" in out
        assert "2 item(s)" in out

    def test_json_service_and_limit(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        self.store(tmp_path, monkeypatch)
        assert main(["feedback", "--json", "--service", "mbc-bone-order-sign"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert [r["card"] for r in rows] == ["c2"]
        assert rows[0]["accepted_suggestions"] == ["s1"]
        assert main(["feedback", "--json", "--limit", "1"]) == 0
        assert len(json.loads(capsys.readouterr().out)) == 1


def test_replay_against_a_running_server(served: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(SCENARIO), "--url", served, "--quiet"]) == 0
    assert "replay: 1 passed, 0 failed" in capsys.readouterr().out


@needs_shared(SHARED / "cds-hooks" / "examples")
def test_conformance_against_a_running_server(
    served: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", "--conformance", "--url", served, "--quiet"]) == 0
    assert " 0 failed" in capsys.readouterr().out


def test_serve_answers_discovery(served: str) -> None:
    body = httpx.get(f"{served}/cds-services").json()
    assert {s["id"] for s in body["services"]} == {
        "mbc-bone-patient-view",
        "mbc-bone-order-select",
        "mbc-bone-order-sign",
    }


class TestValidate:
    """`cds validate`: full R4B validation of what an integrator's EHR sends."""

    def test_a_valid_request(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["validate", "-v", str(SCENARIO / "request.json")]) == 0
        out = capsys.readouterr().out
        assert "prefetch.conditions.entry[0] Condition/" in out
        assert out.rstrip().endswith("0 invalid (fhir.resources R4B, narrative included)")

    @needs_shared(SHARED / "cds-hooks" / "examples" / "captured-from-real-sandbox")
    def test_the_real_sandbox_draft_order_is_named_with_its_problem(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # The Sandbox sends MedicationRequest.category as an object: the service reads such an
        # order anyway; an integrator should still learn that it is not valid R4.
        body = tmp_path / "rx-sign.json"
        body.write_text(json.dumps(captured("order-sign.sandbox-rx-sign.request.json")))
        assert main(["validate", str(body)]) == 1
        out = capsys.readouterr().out
        assert "context.draftOrders.entry[0] MedicationRequest/request-123: invalid" in out
        assert "    category: Input should be a valid list" in out
        assert ", 1 invalid" in out

    def test_a_bundle_and_a_resource(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # A date that is not a FHIR dateTime.
        obs = {
            "resourceType": "Observation",
            "id": "o1",
            "status": "final",
            "code": {"text": "LVEF"},
            "effectiveDateTime": "yesterday",
        }
        resource = tmp_path / "obs.json"
        resource.write_text(json.dumps(obs))
        bundle = tmp_path / "bundle.json"
        good = {**obs, "id": "o2", "effectiveDateTime": "2026-11-02"}
        bundle.write_text(
            json.dumps(
                {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [{"resource": good}, {"resource": obs}],
                }
            )
        )
        assert main(["validate", str(resource), str(bundle)]) == 1
        out = capsys.readouterr().out
        assert f"{resource}: (document) Observation/o1: invalid" in out
        assert f"{bundle}: entry[1] Observation/o1: invalid" in out
        assert "Observation/o2" not in out
        assert "    effectiveDateTime: " in out
        assert "3 resources, 2 invalid" in out

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            ("{", "unexpected end of data"),
            ('{"path": "/cds-services/x"}', "not a CDS Hooks request, a Bundle or a FHIR resource"),
            ('{"resourceType": "Nope"}', None),
        ],
    )
    def test_unreadable_or_unknown(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, reason: str | None
    ) -> None:
        path = tmp_path / "x.json"
        path.write_text(text)
        code = main(["validate", str(path)])
        captured_out = capsys.readouterr()
        if reason is None:  # JSON of an unknown resource type: a finding, not a crash
            assert code == 1
            assert "'Nope' is not an R4B resource type" in captured_out.out
        else:
            assert code == 2
            assert reason in captured_out.err


@pytest.mark.parametrize("second", [["--workers", "2"], []], ids=["workers", "single"])
def test_a_second_instance_on_the_same_port_is_refused(tmp_path: Path, second: list[str]) -> None:
    """Issue 28 item 17: the workers listen with SO_REUSEPORT, so a second `cds serve` (other
    settings, auth off) started silently and took half the traffic."""
    import signal
    import subprocess
    import sys

    with running_service(tmp_path, "--workers", "2") as (base, _):
        port = base.rsplit(":", 1)[1]
        proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "cds", "serve", "--port", port, *second],
            env={**os.environ, "CDS_FEEDBACK_DB": str(tmp_path / "other.sqlite3")},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its workers too can be stopped, should it start
        )
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail("the second instance started on a port already in use")
        assert proc.returncode == 2
        assert "already in use" in err
