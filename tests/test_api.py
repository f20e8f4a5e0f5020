"""The HTTP contract: discovery, service calls, errors as OperationOutcomes, CORS, feedback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds import schemas
from fixtures.factories import SERVICE_KEYS
from tests.conftest import SHARED, issue_card, needs_shared

EXAMPLES = SHARED / "cds-hooks" / "examples"
PV = "/cds-services/mbc-bone-patient-view"
# Every prefetch key but the patient, as the services declare them.
EMPTY_KEYS = tuple(k for k in SERVICE_KEYS if k != "patient")


def minimal_request(**over: Any) -> dict[str, Any]:
    prefetch: dict[str, Any] = {"patient": {"resourceType": "Patient", "id": "p1"}}
    prefetch |= dict.fromkeys(EMPTY_KEYS)
    body = {
        "hook": "patient-view",
        "hookInstance": "8b3b6c1e-0c3a-4a57-9c25-1d0e7d0b9a11",
        "context": {"userId": "Practitioner/1", "patientId": "p1"},
        "prefetch": prefetch,
    }
    return body | over


def assert_outcome(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    schemas.OperationOutcome.model_validate(body)
    assert body["issue"][0]["diagnostics"]
    return body


class TestDiscovery:
    def test_lists_one_service_per_hook(self, client: TestClient) -> None:
        body = client.get("/cds-services").json()
        schemas.Discovery.model_validate(body)
        hooks = sorted(s["hook"] for s in body["services"])
        assert hooks == ["order-select", "order-sign", "patient-view"]

    def test_prefetch_templates_use_context_tokens_and_value_set_codes(
        self, client: TestClient
    ) -> None:
        pv = next(s for s in client.get("/cds-services").json()["services"] if s["id"] in PV)
        assert pv["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        assert "http://loinc.org|48676-1" in pv["prefetch"]["biomarkers"]
        assert pv["usageRequirements"]

    def test_health(self, client: TestClient) -> None:
        assert client.get("/health").json()["status"] == "ok"


class TestErrors:
    def test_unknown_service_is_404(self, client: TestClient) -> None:
        assert_outcome(client.post("/cds-services/nope", json=minimal_request()), 404)

    def test_wrong_hook_for_the_service_is_400(self, client: TestClient) -> None:
        body = assert_outcome(client.post(PV, json=minimal_request(hook="order-sign")), 400)
        assert body["issue"][0]["expression"] == ["hook"]

    def test_non_json_content_type_is_415(self, client: TestClient) -> None:
        r = client.post(PV, content=b"hello", headers={"Content-Type": "text/plain"})
        assert_outcome(r, 415)

    def test_malformed_json_is_400(self, client: TestClient) -> None:
        r = client.post(PV, content=b"{nope", headers={"Content-Type": "application/json"})
        assert "not valid JSON" in assert_outcome(r, 400)["issue"][0]["diagnostics"]

    def test_body_that_is_not_an_object_is_400(self, client: TestClient) -> None:
        assert_outcome(client.post(PV, json=[1, 2]), 400)

    def test_missing_context_field_names_its_path(self, client: TestClient) -> None:
        body = assert_outcome(client.post(PV, json=minimal_request(context={"userId": "x"})), 400)
        assert ["context.patientId"] in [i.get("expression") for i in body["issue"]]

    def test_too_large_body_is_413(self, client: TestClient, settings: Any) -> None:
        big = b'{"x": "' + b"a" * settings.max_body_bytes + b'"}'
        r = client.post(PV, content=big, headers={"Content-Type": "application/json"})
        assert_outcome(r, 413)

    def test_too_many_prefetched_resources_is_413(self, knowledge: Any, tmp_path: Path) -> None:
        import httpx

        from cds.app import create_app
        from cds.settings import Settings

        app = create_app(
            Settings(feedback_db=tmp_path / "f.sqlite3", max_resources=3),
            knowledge=knowledge,
            http_client=httpx.AsyncClient(),
        )
        request = minimal_request()
        request["prefetch"]["conditions"] = {
            "resourceType": "Bundle",
            "entry": [{"resource": {"resourceType": "Condition", "id": str(i)}} for i in range(4)],
        }
        with TestClient(app) as c:
            body = assert_outcome(c.post(PV, json=request), 413)
        assert "CDS_MAX_RESOURCES" in body["issue"][0]["diagnostics"]

    def test_missing_prefetch_without_server_is_412_naming_keys(self, client: TestClient) -> None:
        request = minimal_request()
        del request["prefetch"]["labs"]
        body = assert_outcome(client.post(PV, json=request), 412)
        assert body["issue"][0]["expression"] == ["prefetch.labs"]

    def test_unknown_route_is_an_operation_outcome(self, client: TestClient) -> None:
        assert_outcome(client.get("/nowhere"), 404)

    def test_bad_as_of_extension_is_400(self, client: TestClient) -> None:
        r = client.post(PV, json=minimal_request(extension={"cds-mbc-bone.as-of": "soon"}))
        assert_outcome(r, 400)

    @pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
    def test_an_as_of_at_the_calendars_ends_is_400(self, client: TestClient, day: str) -> None:
        """The rules count days back and ahead of it: there, a 500."""
        r = client.post(PV, json=minimal_request(extension={"cds-mbc-bone.as-of": day}))
        body = assert_outcome(r, 400)
        assert body["issue"][0]["expression"] == ["extension.cds-mbc-bone.as-of"]


class TestCalls:
    def test_no_data_means_no_cards(self, client: TestClient) -> None:
        r = client.post(PV, json=minimal_request())
        assert r.status_code == 200
        assert r.json() == {"cards": []}

    def test_null_and_operation_outcome_prefetch(self, client: TestClient) -> None:
        """null is 'no data'; an OperationOutcome means the client failed: fetch it (here: 412)."""
        request = minimal_request()
        request["prefetch"]["labs"] = {"resourceType": "OperationOutcome", "issue": []}
        body = assert_outcome(client.post(PV, json=request), 412)
        assert "labs" in body["issue"][0]["diagnostics"]


class TestCors:
    def test_preflight_allows_authorization_and_content_type(self, client: TestClient) -> None:
        r = client.options(
            PV,
            headers={
                "Origin": "http://127.0.0.1:8080",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert r.status_code == 200
        allowed = r.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed
        assert "content-type" in allowed

    def test_simple_request_gets_allow_origin(self, client: TestClient) -> None:
        r = client.get("/cds-services", headers={"Origin": "http://127.0.0.1:8080"})
        assert r.headers["access-control-allow-origin"] == "*"


class TestFeedback:
    URL = f"{PV}/feedback"

    def item(self, **over: Any) -> dict[str, Any]:
        base = {
            "card": "9f8b1c4e-1b7a-4c44-a0c1-4a1e3c7d2b10",
            "outcome": "overridden",
            "overrideReason": {
                "reason": {
                    "code": "patient-refuses",
                    "system": "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes",
                },
                "userComment": "discussed in clinic",
            },
            "outcomeTimestamp": "2026-11-22T10:00:00Z",
        }
        return base | over

    def test_stored_once_when_sent_twice(self, client: TestClient) -> None:
        card = issue_card(client)["uuid"]
        first = client.post(self.URL, json={"feedback": [self.item(card=card)]})
        again = client.post(self.URL, json={"feedback": [self.item(card=card)]})
        assert first.json() == {"received": 1, "stored": 1}
        assert again.json() == {"received": 1, "stored": 0}

    def test_a_card_never_issued_is_refused_and_nothing_of_the_post_stored(
        self, client: TestClient, settings: Any
    ) -> None:
        """Issue 28 items 1, 2: feedback snoozes a card, so it is taken only for a card this
        service issued to this client."""
        from cds.store import SQLiteStore

        card = issue_card(client)["uuid"]
        made_up = self.item(card="9f8b1c4e-1b7a-4c44-a0c1-4a1e3c7d2b10")
        body = assert_outcome(
            client.post(self.URL, json={"feedback": [self.item(card=card), made_up]}), 422
        )
        assert body["issue"][0]["code"] == "not-found"
        assert body["issue"][0]["expression"] == ["feedback[1].card"]
        store = SQLiteStore(settings.feedback_db)
        assert store.list() == []
        store.close()

    def test_feedback_through_another_services_url_is_refused(self, client: TestClient) -> None:
        card = issue_card(client)["uuid"]
        other = "/cds-services/mbc-bone-order-sign/feedback"
        assert_outcome(client.post(other, json={"feedback": [self.item(card=card)]}), 422)
        assert client.post(self.URL, json={"feedback": [self.item(card=card)]}).status_code == 200

    def test_a_suggestion_the_card_did_not_have_is_refused(self, client: TestClient) -> None:
        card = issue_card(client)
        accepted = {"outcome": "accepted", "overrideReason": None, "card": card["uuid"]}
        made_up = self.item(**accepted, acceptedSuggestions=[{"id": "made-up"}])
        body = assert_outcome(client.post(self.URL, json={"feedback": [made_up]}), 422)
        assert body["issue"][0]["expression"] == ["feedback[0].acceptedSuggestions[0].id"]
        real = self.item(**accepted, acceptedSuggestions=[{"id": card["suggestions"][0]["uuid"]}])
        assert client.post(self.URL, json={"feedback": [real]}).status_code == 200

    def test_invalid_feedback_is_400_with_the_invariant(self, client: TestClient) -> None:
        bad = self.item(outcome="accepted", overrideReason=None)
        body = assert_outcome(client.post(self.URL, json={"feedback": [bad]}), 400)
        assert "cds-fb-2" in body["issue"][0]["diagnostics"]

    def test_unknown_service_feedback_is_404(self, client: TestClient) -> None:
        assert_outcome(client.post("/cds-services/x/feedback", json={"feedback": []}), 404)

    def test_readable_back(self, client: TestClient, settings: Any) -> None:
        from cds.store import SQLiteStore

        client.post(self.URL, json={"feedback": [self.item(card=issue_card(client)["uuid"])]})
        store = SQLiteStore(settings.feedback_db)
        rows = store.list()
        store.close()
        assert rows[0].override_code == "patient-refuses"


def _example_requests() -> list[Path]:
    if not EXAMPLES.exists():
        return []
    out = []
    for path in sorted(EXAMPLES.rglob("*.json")):
        try:
            data = json.loads(path.read_text())
        except ValueError:
            continue
        candidates = data.values() if "stub" in path.name and isinstance(data, dict) else [data]
        if any(
            isinstance(c, dict) and ("hook" in c or "hook" in c.get("body", {})) for c in candidates
        ):
            out.append(path)
    return out


@pytest.mark.parametrize(
    "path", [pytest.param(p, id=f"{p.parent.name}/{p.name}") for p in _example_requests()]
)
@needs_shared(EXAMPLES)
def test_every_example_request_gets_200_or_a_clean_4xx(client: TestClient, path: Path) -> None:
    """Official, captured, Inferno and deliberately malformed requests: never a 5xx."""
    data = json.loads(path.read_text())
    bodies = list(data.values()) if "stub" in path.name else [data.get("body", data)]
    services = {
        "patient-view": PV,
        "order-select": "/cds-services/mbc-bone-order-select",
        "order-sign": "/cds-services/mbc-bone-order-sign",
    }
    for body in bodies:
        if not isinstance(body, dict):
            continue
        url = services.get(str(body.get("hook")), PV)
        r = client.post(url, json=body)
        if r.status_code == 200:
            schemas.CDSResponse.model_validate(r.json())
        else:
            assert 400 <= r.status_code < 500, r.text
            schemas.OperationOutcome.model_validate(r.json())
