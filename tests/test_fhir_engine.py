"""The fetch path against a real FHIR engine on loopback (Medplum's, in tests/fhir_engine/).

Every scenario's patient is loaded into the engine (a batch of PUTs) and the scenario is
replayed with no prefetch at all, so the service fetches every key with its own queries: the
cards must be the reviewed ones. If the engine cannot start, the test fails with the reason -
it is never skipped.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from cds.app import create_app
from cds.prefetch import render_template
from cds.services import Knowledge
from cds.settings import Settings
from cds.tools.replay import (
    digest,
    iter_scenarios,
    load_into,
    scenario_resources,
    through_fhir_server,
)
from tests.conftest import AS_OF, ROOT
from tests.servers import ENGINE

# A server that searches by patient never returns another patient's resource: the scenarios
# whose prefetch holds one (the fault a server that ignores the parameter makes) are prefetch-only.
# So are labs and markers under a laboratory's own codes only: the prefetch templates search by
# LOINC code, and a server answers such a search without them (an EHR that maps its codes sends
# both).
PREFETCH_ONLY = {
    "mbc-bone-patient-view/another-patients-creatinine-in-the-prefetch",
    "mbc-bone-order-sign/zoledronic-order-crcl-25-labs-under-local-codes",
    "mbc-bone-patient-view/her2-ihc-2plus-under-a-pathology-systems-own-code",
}
SCENARIOS = [
    s
    for s in iter_scenarios([str(ROOT / "fixtures")])
    if int(s.case.get("status", 200)) == 200
    and scenario_resources(s)
    and s.name not in PREFETCH_ONLY
]


@pytest.fixture(scope="module", name="through_engine")
def _through_engine(
    engine: str, knowledge: Knowledge, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """The service, with its real HTTP client allowed to fetch from the engine only."""
    settings = Settings(
        feedback_db=tmp_path_factory.mktemp("fb") / "f.sqlite3", fhir_server_allowlist=(engine,)
    )
    app = create_app(settings, knowledge=knowledge, today=lambda: AS_OF)  # its own HTTP client
    with TestClient(app) as client:
        yield client


def engine_version() -> str:
    lock = json.loads((ENGINE / "package-lock.json").read_text())
    return str(lock["packages"]["node_modules/@medplum/fhir-router"]["version"])


def test_the_engine_is_a_fhir_server(engine: str) -> None:
    meta = httpx.get(f"{engine}/metadata").json()
    assert (meta["resourceType"], meta["fhirVersion"]) == ("CapabilityStatement", "4.0.1")
    assert engine_version() == "5.2.13"


def test_every_scenario_through_the_engine(engine: str, through_engine: TestClient) -> None:
    """All of the library (one test, so the engine is loaded scenario by scenario in order)."""
    assert len(SCENARIOS) > 80
    assert {s.name for s in iter_scenarios([str(ROOT / "fixtures")])} >= PREFETCH_ONLY
    differs = []
    with httpx.Client(timeout=30) as loader:
        for sc in SCENARIOS:
            load_into(loader, engine, sc)
            r = through_engine.post(
                f"/cds-services/{sc.service}", json=through_fhir_server(sc, engine)
            )
            if r.status_code != 200 or digest(r.json()) != sc.expected:
                differs.append((sc.name, r.status_code, r.text[:300]))
    assert differs == []


def test_replay_cli_with_a_fhir_server(engine: str) -> None:
    """`cds replay --fhir-server URL`, run as an integrator runs it against their own server."""
    paths = [str(sc.path) for sc in SCENARIOS[:5]]
    run = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "cds", "replay", *paths, "--fhir-server", engine, "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "replay: 5 passed, 0 failed" in run.stdout


def test_a_server_that_refuses_the_patient_stops_the_replay(engine: str) -> None:
    sc = SCENARIOS[0]
    with httpx.Client(timeout=5) as loader, pytest.raises(SystemExit, match="refused"):
        load_into(loader, engine.replace("/fhir", "/elsewhere"), sc)


def test_fetch_path_sends_no_prefetch(engine: str) -> None:
    body = through_fhir_server(SCENARIOS[0], engine)
    assert "prefetch" not in body
    assert body["fhirServer"] == engine


def test_medications_a_prefetch_left_out_are_fetched(
    engine: str, through_engine: TestClient
) -> None:
    """A prefetch whose records name their medicine by reference, without the Medications (a
    server that ignores `_include`): the service searches the engine for them, and the cards
    are the reviewed ones, not 'start a bone agent' for a patient on denosumab."""
    [sc] = [s for s in SCENARIOS if s.name.endswith("/on-first-line-stable-medicines-by-reference")]
    with httpx.Client(timeout=30) as loader:
        load_into(loader, engine, sc)
    body = json.loads(json.dumps(sc.request)) | {"fhirServer": engine}
    for bundle in body["prefetch"].values():
        if isinstance(bundle, dict) and "entry" in bundle:
            bundle["entry"] = [
                e for e in bundle["entry"] if e["resource"]["resourceType"] != "Medication"
            ]
    left_out = through_engine.post(f"/cds-services/{sc.service}", json=body)
    assert [c["extension"]["org.cds-mbc-bone.rule"] for c in left_out.json()["cards"]] == []
    body["fhirServer"] = engine.replace("127.0.0.1", "localhost")  # not allowed: nothing fetched
    named = through_engine.post(f"/cds-services/{sc.service}", json=body)
    assert "R0b" in [c["extension"]["org.cds-mbc-bone.rule"] for c in named.json()["cards"]]


def test_a_draft_naming_a_medication_the_request_lacks_is_checked(
    engine: str, through_engine: TestClient
) -> None:
    """An order-sign draft naming its drug by a reference to the EHR's formulary Medication,
    not in the request: the service searches the engine for it and checks the order (the
    critical renal card), where without a server it can only say it was not checked (R0)."""
    [sc] = [s for s in SCENARIOS if s.name == "mbc-bone-order-sign/zoledronic-order-crcl-25"]
    body = json.loads(json.dumps(through_fhir_server(sc, engine)))
    [entry] = body["context"]["draftOrders"]["entry"]
    medication = {"resourceType": "Medication", "id": "formulary-zoledronic-acid"}
    medication["code"] = entry["resource"].pop("medicationCodeableConcept")
    entry["resource"]["medicationReference"] = {"reference": "Medication/" + medication["id"]}
    with httpx.Client(timeout=30) as loader:
        load_into(loader, engine, sc)
        loader.put(f"{engine}/Medication/{medication['id']}", json=medication).raise_for_status()
    checked = through_engine.post(f"/cds-services/{sc.service}", json=body)
    assert digest(checked.json()) == sc.expected
    body["fhirServer"] = engine.replace("127.0.0.1", "localhost")  # not allowed
    body["prefetch"] = sc.request["prefetch"]
    unchecked = through_engine.post(f"/cds-services/{sc.service}", json=body)
    assert [c["extension"]["org.cds-mbc-bone.rule"] for c in unchecked.json()["cards"]] == ["R0"]


@pytest.mark.parametrize("links", ["kept", "dropped"])
def test_a_prefetch_sent_a_page_at_a_time_is_read_whole(
    engine: str, through_engine: TestClient, links: str
) -> None:
    """A CDS Client MAY paginate prefetch (spec 2.0.1): each search key sent as the engine's
    own first page of two results, its next link pointing at the engine (or the links dropped
    on the way, Bundle.total kept). The service fetches the rest and the cards are the
    reviewed ones - where the first pages alone hide the denosumab and the trastuzumab of a
    patient on both. With no server to fetch from, the call is refused (412) naming the paged
    keys, never answered from the first pages."""
    [sc] = [s for s in SCENARIOS if s.name.endswith("/on-first-line-stable-medicines-by-reference")]
    templates = {
        s["id"]: s.get("prefetch", {})
        for s in through_engine.get("/cds-services").json()["services"]
    }[sc.service]
    patient = sc.request["context"]["patientId"]
    body = json.loads(json.dumps(sc.request)) | {"fhirServer": engine}
    paged = []
    with httpx.Client(timeout=30) as fhir:
        load_into(fhir, engine, sc)
        for key, template in templates.items():
            if "?" not in template:
                continue
            query = re.sub(r"&_count=\d+", "", render_template(template, {"patientId": patient}))
            first = fhir.get(f"{engine}/{query}&_count=2").raise_for_status().json()
            matches = [e for e in first.get("entry", []) if e["search"]["mode"] == "match"]
            assert len(matches) <= 2  # and the Medications they include
            if any(link["relation"] == "next" for link in first["link"]):
                paged.append(key)
                assert first["total"] > len(matches)
            if links == "dropped":
                del first["link"]
            body["prefetch"][key] = first
    assert {"medicationStatements", "labs"} <= set(paged)
    whole = through_engine.post(f"/cds-services/{sc.service}", json=body)
    assert digest(whole.json()) == sc.expected

    assert_refused_naming(through_engine, sc.service, body, engine, paged)


def test_a_prefetch_whose_search_failed_in_part_is_fetched_again(
    engine: str, through_engine: TestClient
) -> None:
    """An EHR whose search failed in part sends what it found and, in an OperationOutcome
    entry, an error issue saying so. Each such key of a patient on denosumab and trastuzumab
    is sent with its first result only: read as sent, the chart lost most of its medicines
    and labs (the service asked for a calcium the chart holds). The service fetches those keys
    from the engine and the cards are the reviewed ones; with no server to fetch from, the
    call is refused (412) naming them."""
    [sc] = [s for s in SCENARIOS if s.name.endswith("/on-first-line-stable-medicines-by-reference")]
    failed = {
        "resource": {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "timeout", "diagnostics": "partial"}],
        },
        "search": {"mode": "outcome"},
    }
    body = json.loads(json.dumps(sc.request)) | {"fhirServer": engine}
    cut = []
    for key, value in body["prefetch"].items():
        if isinstance(value, dict) and len(value.get("entry") or []) > 1:
            value["entry"] = [value["entry"][0], failed]
            value.pop("total", None)  # no count to tell it short: the outcome alone says it
            cut.append(key)
    assert {"medicationStatements", "labs"} <= set(cut)
    with httpx.Client(timeout=30) as fhir:
        load_into(fhir, engine, sc)
    whole = through_engine.post(f"/cds-services/{sc.service}", json=body)
    assert digest(whole.json()) == sc.expected

    assert_refused_naming(through_engine, sc.service, body, engine, cut)


def assert_refused_naming(
    through_engine: TestClient, service: str, body: dict[str, Any], engine: str, keys: list[str]
) -> None:
    """With no server it may fetch from, the call is refused (412) naming exactly `keys`."""
    body = body | {"fhirServer": engine.replace("127.0.0.1", "localhost")}  # not allowed
    refused = through_engine.post(f"/cds-services/{service}", json=body)
    assert refused.status_code == 412
    named = {i["expression"][0] for i in refused.json()["issue"]}
    assert named == {f"prefetch.{key}" for key in keys}


def test_a_long_treated_patients_chart_is_fetched_whole(
    engine: str, through_engine: TestClient
) -> None:
    """Years of infusions: 600 MedicationAdministrations (flushes and premedication, sent as
    text) beside a patient on first-line HP with denosumab. The engine pages a search at 20
    results unless asked for more: the templates ask for 200 a page, so the chart arrives in
    a few pages within the page limit, and the cards are the reviewed ones (at 20 a page it
    took 31 pages, over the limit of 10: a 412 and no card for the patients treated longest)."""
    [sc] = [s for s in SCENARIOS if s.name.endswith("/on-first-line-stable-medicines-by-reference")]
    patient = sc.request["context"]["patientId"]
    with httpx.Client(timeout=60) as fhir:
        load_into(fhir, engine, sc)
        administrations = [
            {
                "resource": {
                    "resourceType": "MedicationAdministration",
                    "status": "completed",
                    "medicationCodeableConcept": {
                        "text": ("Sodium chloride 0.9% flush 10 mL", "Ondansetron 8 mg IV")[i % 2]
                    },
                    "subject": {"reference": f"Patient/{patient}"},
                    "effectiveDateTime": (AS_OF - timedelta(days=3 * i + 1)).isoformat(),
                },
                "request": {"method": "POST", "url": "MedicationAdministration"},
            }
            for i in range(600)
        ]
        batch = {"resourceType": "Bundle", "type": "batch", "entry": administrations}
        fhir.post(engine, json=batch).raise_for_status()
        first = fhir.get(f"{engine}/MedicationAdministration?patient={patient}").json()
        assert len(first["entry"]) == 20  # the engine's own page
        assert first["total"] >= 600
    answer = through_engine.post(
        f"/cds-services/{sc.service}", json=through_fhir_server(sc, engine)
    )
    assert answer.status_code == 200, answer.text
    assert digest(answer.json()) == sc.expected
