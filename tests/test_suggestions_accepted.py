"""Accepting a suggestion is doing what it asked (clinical-logic §3c D20): each scenario's cards,
each with its first suggestion accepted as a client does - the orders it creates signed into the
chart at patient-view, drafted with the order at the order hooks - and the same call made again:
no card asks for the very order just accepted. (Before, 19 of 117 did: a dental referral, an
echocardiogram, a creatinine, calcium or HER2 test, asked for at every chart open.)"""

from __future__ import annotations

import copy
from typing import Any

from fastapi.testclient import TestClient

from cds.call import AS_OF_EXTENSION
from cds.cards import EXT_RULE, EXT_VARIANT
from cds.tools.replay import inline_prefetch, iter_scenarios
from tests.conftest import ROOT

SCENARIOS = [
    sc for sc in iter_scenarios([str(ROOT / "fixtures")]) if int(sc.case.get("status", 200)) == 200
]

# What an order orders: its resource type, and its codes (its text when it has none).
Order = tuple[str, tuple[str, ...]]


def _order(resource: dict[str, Any]) -> Order:
    """What an order orders: its resource type and codes (its text when it has none)."""
    concept = resource.get("medicationCodeableConcept") or resource.get("code") or {}
    codes = tuple(sorted(c["code"] for c in concept.get("coding", []) if c.get("code")))
    return resource["resourceType"], codes or (str(concept.get("text")),)


def _accepted(
    request: dict[str, Any], card: dict[str, Any], n: int
) -> tuple[dict[str, Any], set[Order]]:
    """The request again, with the card's first suggestion accepted (its drafts updated or
    deleted at the order hooks, as the client applies them); and what it ordered anew."""
    again = copy.deepcopy(request)
    patient = request["context"]["patientId"]
    hook = request["hook"]
    ordered: set[Order] = set()
    for i, action in enumerate(card["suggestions"][0]["actions"]):
        if hook != "patient-view" and action["type"] in ("update", "delete"):
            _apply_to_drafts(again["context"]["draftOrders"], action)
        if action["type"] != "create":
            continue
        resource = copy.deepcopy(action["resource"])
        resource["id"] = f"accepted-{n}-{i}"
        resource["subject"] = {"reference": f"Patient/{patient}"}
        ordered.add(_order(resource))
        if hook == "patient-view":  # signed: an order in force, written today
            resource["status"] = "active"
            if "intent" in resource:
                resource["intent"] = "order"
            if resource["resourceType"] in ("MedicationRequest", "ServiceRequest"):
                resource["authoredOn"] = request["extension"][AS_OF_EXTENSION]
            bundle = next(
                b
                for b in again["prefetch"].values()
                if isinstance(b, dict) and b.get("resourceType") == "Bundle"
            )
            bundle.setdefault("entry", []).append({"resource": resource})
            if isinstance(bundle.get("total"), int):
                bundle["total"] += 1
        else:  # drafted with the order, signed together
            again["context"]["draftOrders"].setdefault("entry", []).append({"resource": resource})
    if hook == "order-select":
        again["hook"] = "order-sign"
        again["context"].pop("selections", None)
    return again, ordered


def _apply_to_drafts(drafts: dict[str, Any], action: dict[str, Any]) -> None:
    """An update replaces the draft of its id; a delete removes the drafts it names."""
    entries = drafts.get("entry", [])
    if action["type"] == "update":
        target = action["resource"]["id"]
        for entry in entries:
            if entry["resource"].get("id") == target:
                entry["resource"] = copy.deepcopy(action["resource"])
    else:
        named: str = action["resourceId"]  # a relative reference (CDS Hooks 2.0.1 Action)
        ids = {named.split("/")[-1]}
        drafts["entry"] = [e for e in entries if e["resource"].get("id") not in ids]


def test_a_suggestion_accepted_is_not_suggested_again(client: TestClient) -> None:
    accepted = 0
    again: list[tuple[str, str, Order]] = []
    for sc in SCENARIOS:
        request = inline_prefetch(sc)
        first = client.post(f"/cds-services/{sc.service}", json=request)
        assert first.status_code == 200, sc.name
        for n, card in enumerate(first.json()["cards"]):
            if not card.get("suggestions"):
                continue
            request_again, ordered = _accepted(request, card, n)
            if not ordered:
                continue
            accepted += 1
            service = sc.service.replace("order-select", "order-sign")
            answer = client.post(f"/cds-services/{service}", json=request_again)
            assert answer.status_code == 200, (sc.name, answer.text)
            for later in answer.json()["cards"]:
                concern = f"{later['extension'][EXT_RULE]}:{later['extension'][EXT_VARIANT]}"
                for suggestion in later.get("suggestions", []):
                    for action in suggestion["actions"]:
                        if action["type"] == "create" and _order(action["resource"]) in ordered:
                            again.append((sc.name, concern, _order(action["resource"])))
    assert accepted > 100
    assert again == []
