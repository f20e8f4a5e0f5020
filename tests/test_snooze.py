"""Card snoozing: the pure decision (snooze.apply) and the whole loop in-process on SQLite."""

from __future__ import annotations

import copy
import dataclasses
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds import snooze
from cds.rules import Decision
from cds.said import say
from cds.schemas import FeedbackItem
from cds.store import Snooze, SQLiteStore
from fixtures.factories import for_patient
from tests.conftest import ROOT, record_issued
from tests.rules.helpers import text

PV = "/cds-services/mbc-bone-patient-view"
SCENARIO = ROOT / "fixtures" / "mbc-bone-patient-view" / "her2-negative-bone-mets-no-bma"
NOW = 1_800_000_000.0


def decision(indicator: str = "warning", data: tuple[str, ...] = ("2026-01-05",)) -> Decision:
    """A decision whose data lines are the bone-metastasis line on these dates."""
    lines = tuple(say("bone-metastasis", when=d) for d in data)
    return Decision(rule="R1", variant="start", indicator=indicator, data=lines, refs=("C/1",))  # type: ignore[arg-type]


def held(d: Decision, **over: Any) -> Snooze:
    values: dict[str, Any] = {
        "concern": d.concern,
        "evidence": snooze.evidence(d, text),
        "reason": "overridden",
        "since": NOW - 10,
        "until": NOW + 10,
    }
    return Snooze(**(values | over))


class TestApply:
    def test_same_evidence_within_the_period_is_left_out(self) -> None:
        d = decision()
        assert snooze.apply([d], {d.concern: held(d)}, NOW, text) == []

    def test_changed_evidence_comes_back_saying_why(self) -> None:
        d = decision()
        ((shown, _),) = snooze.apply([decision(data=("b",))], {d.concern: held(d)}, NOW, text)
        assert "changed since" in text(shown.notes[-1])

    def test_an_ended_snooze_comes_back_saying_why(self) -> None:
        d = decision()
        ((shown, _),) = snooze.apply([d], {d.concern: held(d, until=NOW - 1)}, NOW, text)
        assert "snooze ended" in text(shown.notes[-1])

    def test_another_card_of_the_rule_is_not_the_snoozed_one(self) -> None:
        """Two drafts each above its label dose are two cards of one rule and variant:
        overriding the first must not bring the second back saying it was overridden."""
        first = decision()
        second = dataclasses.replace(decision(data=("2026-02-01",)), refs=("C/2",), instance=2)
        shown = snooze.apply([first, second], {first.concern: held(first)}, NOW, text)
        assert [(d, d.notes) for d, _ in shown] == [(second, ())]

    def test_a_snoozed_card_under_another_number_is_still_snoozed(self) -> None:
        """The drafts came in the other order this time: the card is found by its evidence."""
        second = dataclasses.replace(decision(data=("2026-02-01",)), refs=("C/2",), instance=2)
        now_first = dataclasses.replace(second, instance=1)
        assert snooze.apply([now_first], {second.concern: held(second)}, NOW, text) == []

    def test_a_snooze_from_before_concerns_still_quiets_its_card(self) -> None:
        """Snoozes stored before schema version 6 are keyed by the rule alone."""
        d = decision()
        assert snooze.apply([d], {"R1": held(d, concern="R1")}, NOW, text) == []

    def test_critical_cards_are_never_snoozed(self) -> None:
        d = decision("critical")
        assert [x for x, _ in snooze.apply([d], {d.concern: held(d)}, NOW, text)] == [d]

    def test_patient_key_is_keyed_and_stable(self) -> None:
        assert snooze.patient_key("s", "p1") == snooze.patient_key("s", "p1")
        assert snooze.patient_key("s", "p1") != snooze.patient_key("t", "p1")
        assert "p1" not in snooze.patient_key("s", "p1")


def body() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SCENARIO / "request.json").read_text())
    data["hookInstance"] = str(uuid.uuid4())
    return data


def rules(client: TestClient, data: dict[str, Any]) -> list[str]:
    return [
        c["extension"]["org.cds-mbc-bone.rule"] for c in client.post(PV, json=data).json()["cards"]
    ]


def test_override_snoozes_and_accept_ends_in_process(client: TestClient, tmp_path: Path) -> None:
    cards = client.post(PV, json=body()).json()["cards"]
    r1 = next(c for c in cards if c["extension"]["org.cds-mbc-bone.rule"] == "R1")
    fb = {
        "card": r1["uuid"],
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-22T10:00:00Z",
        "overrideReason": {"reason": r1["overrideReasons"][0]},
    }
    assert client.post(f"{PV}/feedback", json={"feedback": [fb]}).status_code == 200
    assert "R1" not in rules(client, body())
    changed = body()
    labs = changed["prefetch"]["labs"]["entry"]
    extra = copy.deepcopy(labs[0])
    extra["resource"]["id"] = "new-result"
    extra["resource"]["effectiveDateTime"] = "2026-11-21"
    labs.append(extra)
    assert "R1" in rules(client, changed)


@pytest.mark.parametrize(
    ("outcome", "days"), [("accepted", 1.0), ("overridden", 30.0)], ids=["accepted", "overridden"]
)
def test_accepting_quiets_for_a_day_overriding_for_the_snooze_period(
    tmp_path: Path, outcome: str, days: float
) -> None:
    """§3c D20: accepting a suggestion is not doing it - its card is quiet for
    CDS_ACCEPT_SNOOZE_DAYS (1), not for the override snooze nor for good."""
    now = 1_800_000_000.0
    store = SQLiteStore(tmp_path / "s.sqlite3", snooze_days=30, clock=lambda: now)
    record_issued(store, "c1")
    item = FeedbackItem.model_validate(
        {
            "card": "c1",
            "outcome": outcome,
            "outcomeTimestamp": "2026-11-22T10:00:00Z",
            **({"acceptedSuggestions": [{"id": "s1"}]} if outcome == "accepted" else {}),
        }
    )
    store.add("mbc-bone-patient-view", [item])
    snoozed = store.snoozes("k")["R1:start"]
    assert snoozed.until - now == days * 86400


def _override(client: TestClient, card: dict[str, Any], service: str = PV) -> None:
    fb = {
        "card": card["uuid"],
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-22T10:00:00Z",
        "overrideReason": {"reason": card["overrideReasons"][0]},
    }
    assert client.post(f"{service}/feedback", json={"feedback": [fb]}).status_code == 200


def _r1(client: TestClient, data: dict[str, Any]) -> dict[str, Any] | None:
    cards = client.post(PV, json=data).json()["cards"]
    return next((c for c in cards if c["extension"]["org.cds-mbc-bone.rule"] == "R1"), None)


def test_a_snooze_belongs_to_the_callers_patient_not_to_every_patient_123(
    client: TestClient,
) -> None:
    """Issue 28 item 3: snoozes were keyed by the patient id alone, so an override for
    patient "123" of one FHIR server (or issuer, or tenant) silenced another's "123"."""
    a = body() | {"fhirServer": "https://ehr-a.example.org/fhir"}
    card = _r1(client, a)
    assert card is not None
    _override(client, card)
    assert _r1(client, body() | {"fhirServer": "https://ehr-a.example.org/fhir"}) is None
    assert _r1(client, body() | {"fhirServer": "https://ehr-b.example.org/fhir"}) is not None


def test_a_reused_hook_instance_never_binds_another_patients_card(client: TestClient) -> None:
    """Issue 28 item 4: card uuids came from the hookInstance alone, so a second patient's
    card under the same hookInstance was the first patient's, and its override snoozed the
    first patient's card. Item 1: nor can another caller derive a card's uuid."""
    first = body()
    second = for_patient(first, "another-patient")
    card_one, card_two = _r1(client, first), _r1(client, second)
    assert card_one is not None
    assert card_two is not None
    assert card_one["uuid"] != card_two["uuid"]
    # The old derivation, from public inputs only: any caller could compute it.
    namespace = uuid.UUID("6f1c3a52-8c1e-4a57-9a77-3f1d1f0a9b21")
    derivable = uuid.uuid5(namespace, f"{first['hookInstance']}|R1:start")
    assert card_one["uuid"] != str(derivable)
    _override(client, card_two)
    again = _r1(client, first)
    assert again is not None  # the first patient's card is untouched
    assert again["uuid"] == card_one["uuid"]  # deterministic per call


ORDER_SIGN = "/cds-services/mbc-bone-order-sign"
TWO_DRAFTS = ROOT / "fixtures/mbc-bone-order-sign/zoledronic-acid-and-pamidronate-both-above-label"


def test_overriding_one_of_two_cards_of_a_rule_leaves_the_other_as_it_was(
    client: TestClient,
) -> None:
    """Zoledronic acid 8 mg and pamidronate 180 mg in one order: two R2b cards. Overriding
    the pamidronate card quiets it alone; the zoledronic acid card is shown as before, with
    no note that it was overridden (it was not)."""

    def r2b(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
        cards = client.post(ORDER_SIGN, json=data).json()["cards"]
        return {
            c["suggestions"][0]["actions"][0]["resource"]["id"]: c
            for c in cards
            if c["extension"]["org.cds-mbc-bone.rule"] == "R2b"
        }

    request = json.loads((TWO_DRAFTS / "request.json").read_text())
    first = r2b(request | {"hookInstance": str(uuid.uuid4())})
    assert sorted(first) == ["draft-pam", "draft-zol"]
    _override(client, first["draft-pam"], ORDER_SIGN)
    again = r2b(request | {"hookInstance": str(uuid.uuid4())})
    assert sorted(again) == ["draft-zol"]
    assert again["draft-zol"]["detail"] == first["draft-zol"]["detail"]
