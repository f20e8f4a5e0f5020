"""Requests captured from the real CDS Hooks Sandbox, as it sends them, are test inputs.

The Sandbox's quirks stay as sent (`MedicationRequest.category` as an object, a draftOrders
Bundle without `type`, doses in `{pill}`, prefetch keys of other services). Its FHIR server is
replaced by the test FHIR engine holding the same patient (what its prefetch carried), so the
keys it did not send are fetched for real. The expected cards below were written by hand from
the patient's data:

her2pos-mbc: 55-year-old woman, HER2-positive (reported), ER+/PR-, bone metastases since
2025-10-09, on trastuzumab + pertuzumab after docetaxel (first line since 2025-10-24), disease
status "worsened" on 2026-11-13, LVEF 60% on 2026-10-24, creatinine 0.8 mg/dL and 68 kg
(Cockcroft-Gault CrCl about 85 mL/min), calcium 9.4 mg/dL, no bone-modifying agent, no dental
evaluation on record. cancer-patient-jenny-m (the Sandbox's default patient): only the Patient
resource is known to the service, so no breast cancer and no card.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from cds.app import create_app
from cds.fhir.elements import flatten
from cds.services import Knowledge
from cds.settings import Settings
from cds.tools.replay import digest
from tests.conftest import AS_OF, SHARED, needs_shared

CAPTURED = SHARED / "cds-hooks" / "examples" / "captured-from-real-sandbox"
pytestmark = needs_shared(CAPTURED)
SERVICES = {
    "patient-view": "mbc-bone-patient-view",
    "order-select": "mbc-bone-order-select",
    "order-sign": "mbc-bone-order-sign",
}
ZOLEDRONIC = {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1114085"}
DENOSUMAB = {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1046402"}
TDXD = {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "2267582"}


def captured(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CAPTURED / name).read_text())
    body: dict[str, Any] = data.get("body", data)
    return body


@pytest.fixture(scope="module", name="sandbox")
def _sandbox(
    engine: str, knowledge: Knowledge, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    settings = Settings(
        feedback_db=tmp_path_factory.mktemp("fb") / "f.sqlite3", fhir_server_allowlist=(engine,)
    )
    app = create_app(settings, knowledge=knowledge, today=lambda: AS_OF)
    with TestClient(app) as client:
        yield client


def send(client: TestClient, engine: str, body: dict[str, Any]) -> httpx.Response:
    """Load the patient the Sandbox's FHIR server held (its prefetch), point fhirServer at the
    engine, and call the service with the body otherwise exactly as captured."""
    resources = [r for v in (body.get("prefetch") or {}).values() for r in flatten(v)]
    with httpx.Client(timeout=10) as http:
        http.post(f"{engine}/$reset")
        batch = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {
                    "resource": r,
                    "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
                }
                for r in resources
                if isinstance(r.get("id"), str)
            ],
        }
        assert http.post(engine, json=batch).status_code == 200
    sent = copy.deepcopy(body)
    sent["fhirServer"] = engine
    response: httpx.Response = client.post(f"/cds-services/{SERVICES[sent['hook']]}", json=sent)
    return response


def rules(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [c["rule"] for c in digest(r.json())["cards"]]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("order-select.sandbox-rx-view.request.json", [], id="rx-view-lapatinib"),
        pytest.param("order-sign.sandbox-rx-sign.request.json", [], id="rx-sign-lapatinib"),
        pytest.param("patient-view.request.json", [], id="patient-view-jenny-m"),
        pytest.param("order-select.request.json", [], id="order-select-jenny-m"),
    ],
)
def test_every_captured_request(
    sandbox: TestClient, engine: str, name: str, expected: list[str]
) -> None:
    """Lapatinib tablets are checked and nothing applies to them (no renal, calcium, dental,
    LVEF or anthracycline rule concerns an oral TKI; one {pill} of the 250 mg tablet a day is
    read as 250 mg, below the label's dose: R6l does not name it as a dose it cannot read);
    the default patient has no breast cancer on record."""
    assert rules(send(sandbox, engine, captured(name))) == expected


def test_the_sandbox_patient_at_chart_open(sandbox: TestClient, engine: str) -> None:
    """The same patient through patient-view (the Sandbox's own prefetch keys): progression on
    first-line HP with bone metastases and no BMA - the BMA warning (its suggestions carry the
    dental referral) and second-line options."""
    body = captured("order-sign.sandbox-rx-sign.request.json")
    pv = {
        "hook": "patient-view",
        "hookInstance": body["hookInstance"],
        "fhirServer": body["fhirServer"],
        "context": {"userId": body["context"]["userId"], "patientId": body["context"]["patientId"]},
        "prefetch": body["prefetch"],
    }
    assert rules(send(sandbox, engine, pv)) == ["R1:start", "R6:line-2"]


def _with_medication(name: str, coding: dict[str, str], text: str) -> dict[str, Any]:
    body = copy.deepcopy(captured(name))
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    order["medicationCodeableConcept"] = {"coding": [coding], "text": text}
    return body


@pytest.mark.parametrize(
    "name", ["order-select.sandbox-rx-view.request.json", "order-sign.sandbox-rx-sign.request.json"]
)
@pytest.mark.parametrize(
    ("coding", "text", "expected"),
    [
        # The Sandbox's order form sends a daily frequency (timing 1/d): every one of these
        # drugs is given every 3-4 weeks, so the schedule is questioned (§3c D1).
        # The form's dose, 1 {pill}, is no mass: the ceiling cannot check it and says so
        # (an info card, after the warnings).
        # A first BMA with no dental evaluation on record: refer (never blocks). CrCl about 85,
        # so the dose does not need a renal band. No calcium or vitamin D on record or in the
        # order: add them (R3b, §3c D10), an info card.
        pytest.param(
            ZOLEDRONIC,
            "zoledronic acid 4 MG",
            [
                "R2b:too-frequent",
                "R4b:dental-before-bma",
                "R2b:dose-unread",
                "R3b:supplement-with-order",
            ],
            id="zoledronic",
        ),
        # Denosumab: calcium 9.4 is normal and renal function good, so only the dental referral
        # and the supplements.
        pytest.param(
            DENOSUMAB,
            "Xgeva 120 MG",
            [
                "R2b:too-frequent",
                "R4b:dental-before-bma",
                "R2b:dose-unread",
                "R3b:supplement-with-order",
            ],
            id="denosumab",
        ),
        # T-DXd for HER2-positive disease after first-line progression: monitor for ILD (the
        # LVEF of 29 days ago is recent, so no baseline-LVEF card). The patient's trastuzumab
        # and pertuzumab statements are still active: T-DXd carries trastuzumab, so the
        # trastuzumab record is to be stopped as T-DXd starts (R6d), and after the first line
        # T-DXd is given without pertuzumab (R6i). The Sandbox's 1 {pill} is no dose of an
        # infusion: named, with Enhertu's dose by weight.
        pytest.param(
            TDXD,
            "trastuzumab deruxtecan",
            [
                "R2b:too-frequent",
                "R6d:switch-in-use",
                "R6i:pertuzumab-in-use",
                "R12:start-monitoring",
                "R2b:dose-unread-by-weight",
            ],
            id="tdxd",
        ),
    ],
)
def test_the_same_bodies_with_another_drug(
    sandbox: TestClient,
    engine: str,
    name: str,
    coding: dict[str, str],
    text: str,
    expected: list[str],
) -> None:
    assert rules(send(sandbox, engine, _with_medication(name, coding, text))) == expected
