"""Every `cds` command in every output mode, as a user runs it (issue 13: `feedback --json`
used to crash, and nothing would have noticed)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cds import __version__, schemas
from cds.cli import main
from cds.store import SQLiteStore
from tests.conftest import ROOT
from tests.servers import running_service

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
    for command in ("serve", "check", "feedback", "catalog", "replay"):
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
