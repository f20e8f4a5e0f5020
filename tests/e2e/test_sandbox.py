"""The real CDS Hooks Sandbox drives the service in headless Chromium (clinical-logic §3c D19-D22).

What a clinician sees in the Sandbox is asserted: card summaries, indicators, suggestion labels,
the order after a suggestion is applied, and that feedback reached the store. Every page is
screenshotted into CDS_E2E_ARTIFACTS (default var/e2e/). The Sandbox's Rx View and Rx Sign list
only oral drugs: an IV drug (zoledronic acid, T-DXd) is put into its order by choosing an oral
one in the real UI and substituting the medication in the request on its way to the service;
the Sandbox then renders the service's real answer and applies its suggestions itself.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds.settings import DEV_PATIENT_KEY_SECRET
from cds.snooze import patient_key
from cds.store import SQLiteStore, StoredFeedback
from fixtures.factories import AS_OF, Scenario
from fixtures.scenarios import scenarios
from tests.e2e.harness import (
    CARD,
    SOURCE_LINK,
    Stack,
    chromium_path,
    missing,
    redated,
    service,
    static_sandbox,
)
from tests.servers import ROOT, fhir_engine

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(os.environ.get("CDS_E2E_ARTIFACTS", ROOT / "var" / "e2e"))
SCENARIOS = {s.slug: s for s in scenarios()}
# The service evaluates as of its local calendar date (CallEnv.today): the patients move with it.
SHIFT = (datetime.now().astimezone().date() - AS_OF).days
LAPATINIB = "lapatinib 250 MG Oral Tablet"
ZOLEDRONIC = {
    "coding": [
        {
            "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
            "code": "1114085",
            "display": "100 ML zoledronic acid 0.04 MG/ML Injection",
        }
    ],
    "text": "100 ML zoledronic acid 0.04 MG/ML Injection",
}
ENHERTU = {
    "coding": [
        {
            "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
            "code": "2267581",
            "display": "Enhertu 100 MG Injection",
        }
    ],
    "text": "Enhertu 100 MG Injection",
}


def _patient(slug: str, pid: str) -> list[dict[str, Any]]:
    """The scenario's patient under a fresh id (each test its own: snoozes are per patient),
    dated so that the scenario's as_of is today."""
    sc: Scenario = SCENARIOS[slug]
    text = json.dumps([sc.patient.patient(), *sc.patient.resources])
    text = text.replace(f'"Patient/{sc.patient.pid}"', f'"Patient/{pid}"')
    resources: list[dict[str, Any]] = json.loads(text)
    resources[0]["id"] = pid
    return redated(resources, SHIFT)


@pytest.fixture(scope="module", name="stack")
def _stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    reason = missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the end-to-end suite cannot run: {reason}")
        pytest.skip(reason)
    db = tmp_path_factory.mktemp("e2e") / "feedback.sqlite3"
    with static_sandbox() as sandbox, fhir_engine() as fhir, service(db) as svc:
        yield Stack(sandbox=sandbox, fhir=fhir, service=svc, db=db)


@pytest.fixture(scope="module", name="browser")
def _browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Sandbox:
    """One Sandbox page: what a clinician sees, and the hook requests it sent."""

    def __init__(self, page: Any, name: str) -> None:
        self.page = page
        self.name = name
        self.sent: list[dict[str, Any]] = []

    def shot(self, step: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def wait_for_calls(self, count: int, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while len(self.sent) < count and time.monotonic() < deadline:
            self.page.wait_for_timeout(100)
        assert len(self.sent) >= count, f"the Sandbox sent {len(self.sent)} hook calls"
        self.page.wait_for_timeout(800)  # the answer rendered

    def cards(self) -> list[dict[str, Any]]:
        out = []
        for card in self.page.locator(CARD).all():
            classes = card.get_attribute("class") or ""
            out.append(
                {
                    "summary": card.locator("p").first.inner_text().strip(),
                    "indicator": next(
                        (i for i in ("critical", "warning", "info") if f"alert-{i}" in classes),
                        "?",
                    ),
                    "source": card.locator(SOURCE_LINK).first.get_attribute("href"),
                    "buttons": [b.strip() for b in card.locator("button").all_inner_texts()],
                }
            )
        return out


@pytest.fixture(name="sandbox")
def _sandbox(browser: Any, request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    # Loopback only: the Sandbox also tries its public default discovery endpoint.
    context.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith("http://127.0.0.1") else route.abort()
        ),
    )
    page = context.new_page()
    view = Sandbox(page, request.node.name.replace("[", "-").replace("]", ""))

    def record(req: Any) -> None:
        if req.method == "POST" and "/cds-services/" in req.url and "/feedback" not in req.url:
            view.sent.append(json.loads(req.post_data or "{}"))

    page.on("request", record)
    yield view
    view.shot("end")
    context.close()


def _substitute(sandbox: Sandbox, medication: dict[str, Any]) -> None:
    """Requests to the service leave with the IV drug in place of the oral one the UI chose."""

    def handle(route: Any) -> None:
        body = json.loads(route.request.post_data or "{}")
        for entry in (body.get("context", {}).get("draftOrders") or {}).get("entry", []):
            resource = entry.get("resource", {})
            concept = resource.get("medicationCodeableConcept") or {}
            if concept.get("text") == LAPATINIB:
                resource["medicationCodeableConcept"] = medication
        route.continue_(post_data=json.dumps(body))

    sandbox.page.route("**/cds-services/mbc-bone-order-*", handle)


def _choose(sandbox: Sandbox, drug: str = LAPATINIB) -> None:
    sandbox.page.locator('input[name="medication-input"]').fill(drug.split()[0])
    sandbox.page.get_by_role("button", name=drug, exact=True).click()


def _feedback(stack: Stack, service_id: str) -> list[StoredFeedback]:
    store = SQLiteStore(stack.db)
    try:
        return store.list(service_id=service_id)
    finally:
        store.close()


def _replayed(stack: Stack, slug: str) -> list[str]:
    """The summaries the service answers for the scenario's own request (its prefetch)."""
    sc = SCENARIOS[slug]
    folder = ROOT / "fixtures" / f"mbc-bone-{sc.hook}" / slug
    body = json.loads((folder / "request.json").read_text())
    answer = httpx.post(f"{stack.service}/cds-services/mbc-bone-{sc.hook}", json=body, timeout=30)
    return [c["summary"] for c in answer.json()["cards"]]


# The medication in the Sandbox's own order: its Redux store, found through React's root fiber.
ORDERED = """() => {
  const root = document.getElementById('root');
  const key = Object.keys(root).find(k => k.startsWith('__reactContainer$'));
  const stack = [root[key]];
  while (stack.length) {
    const f = stack.pop();
    if (!f) continue;
    const p = f.memoizedProps;
    if (p && p.store && p.store.getState) {
      return p.store.getState().medicationState.decisions.prescribable;
    }
    if (f.child) stack.push(f.child);
    if (f.sibling) stack.push(f.sibling);
  }
  return null;
}"""


PATIENT_VIEWS: dict[str, tuple[str, ...]] = {
    # slug: what a clinician must see, in order (written from the scenario's expectations)
    "her2-positive-first-line": (
        "Bone metastases without a bone-modifying agent: consider denosumab, zoledronic acid "
        "or pamidronate",
        "HER2-positive metastatic disease, no metastatic HER2 line yet: first-line options",
    ),
    "progression-documented-second-line": ("second-line",),
    "her2-low-hr-negative-after-chemotherapy": ("DESTINY-Breast04",),
    "bone-mets-crcl-low": ("Bone metastases without a bone-modifying agent: consider denosumab",),
}


@pytest.mark.parametrize("slug", sorted(PATIENT_VIEWS))
def test_patient_view_shows_the_services_cards(stack: Stack, sandbox: Sandbox, slug: str) -> None:
    """The Sandbox prefetches from the FHIR engine, the service fetches the rest; the cards it
    renders are the ones the scenario's own request gets, with their sources and suggestions."""
    pid = f"pv-{slug}"[:64]
    stack.load(_patient(slug, pid))
    sandbox.page.goto(stack.url(pid))
    sandbox.wait_for_calls(1)
    seen = sandbox.cards()
    sandbox.shot("cards")
    summaries = [c["summary"] for c in seen]
    assert summaries == _replayed(stack, slug)
    for want, got in zip(PATIENT_VIEWS[slug], summaries, strict=False):
        assert want in got
    for card in seen:
        assert card["indicator"] in {"info", "warning", "critical"}
        assert card["source"].startswith(("https://doi.org/", "https://dailymed.", "https://ace."))


def test_a_chart_the_sandbox_sends_a_page_at_a_time_is_read_whole(
    stack: Stack, sandbox: Sandbox
) -> None:
    """The Sandbox forwards each prefetch search as its FHIR server answers it. With 250 older
    records ahead of them, the trastuzumab, pertuzumab and denosumab of a patient stable on
    first-line HP are on the second page of her MedicationStatements (200 a page): the
    Sandbox sends the first page with its next link, the service fetches the rest, and the
    answer is the scenario's own - no card - not 'start a bone agent' and first-line options."""
    pid = "pv-paged"
    statuses: list[int] = []
    sandbox.page.on(
        "response",
        lambda r: statuses.append(r.status) if "/cds-services/mbc-bone-" in r.url else None,
    )
    earlier = [
        {
            "resourceType": "MedicationStatement",
            "id": f"{pid}-earlier-{i}",
            "status": "completed",
            "medicationCodeableConcept": {"text": "Ondansetron 8 mg tablet"},
            "subject": {"reference": f"Patient/{pid}"},
            "effectivePeriod": {"start": "2025-01-06", "end": "2025-01-08"},
        }
        for i in range(250)
    ]
    patient, *chart = _patient("on-first-line-stable", pid)
    stack.load([patient, *earlier])
    stack.load(chart)  # after the earlier records: the engine answers in the order it holds
    sandbox.page.goto(stack.url(pid))
    sandbox.wait_for_calls(1)
    sandbox.shot("cards")
    statements = sandbox.sent[0]["prefetch"]["medicationStatements"]
    assert len(statements["entry"]) == 200
    assert any(link["relation"] == "next" for link in statements["link"])
    assert statuses == [200]
    assert [c["summary"] for c in sandbox.cards()] == _replayed(stack, "on-first-line-stable") == []


def test_accepting_a_suggestion_quiets_the_card_for_a_day(stack: Stack, sandbox: Sandbox) -> None:
    """D20: accepting 'Denosumab 120 mg SC every 4 weeks' posts 'accepted' feedback; the card is
    quiet on the next chart open, for one day - not the 30-day override snooze."""
    pid = "e2e-accept"
    stack.load(_patient("her2-positive-first-line", pid))
    sandbox.page.goto(stack.url(pid))
    sandbox.wait_for_calls(1)
    sandbox.page.get_by_role("button", name="Denosumab 120 mg SC every 4 weeks").click()
    sandbox.page.wait_for_timeout(1500)
    sandbox.shot("accepted")
    accepted = [f for f in _feedback(stack, "mbc-bone-patient-view") if f.outcome == "accepted"]
    assert accepted
    assert accepted[-1].accepted_suggestions
    sandbox.page.goto(stack.url(pid))
    sandbox.wait_for_calls(2)
    summaries = [c["summary"] for c in sandbox.cards()]
    assert not any(s.startswith("Bone metastases without") for s in summaries)
    assert any("first-line options" in s for s in summaries)
    store = SQLiteStore(stack.db)
    key = patient_key(DEV_PATIENT_KEY_SECRET, pid, fhir_server=stack.fhir)
    snoozed = store.snoozes(key)["R1:start"]
    store.close()
    assert 0.9 * 86400 < snoozed.until - snoozed.since <= 86400


def test_overriding_a_card_with_a_reason(stack: Stack, sandbox: Sandbox) -> None:
    """Dismiss with a reason: the override and its reason code reach the store."""
    pid = "e2e-override"
    stack.load(_patient("her2-positive-first-line", pid))
    sandbox.page.goto(stack.url(pid))
    sandbox.wait_for_calls(1)
    first = sandbox.page.locator(CARD).first
    first.locator("button").filter(has_text="Dismiss").locator("xpath=..").locator(
        "button"
    ).last.click()
    sandbox.page.get_by_role("menuitem").first.click()
    sandbox.page.wait_for_timeout(1500)
    sandbox.shot("overridden")
    overridden = [f for f in _feedback(stack, "mbc-bone-patient-view") if f.outcome == "overridden"]
    assert overridden
    assert overridden[-1].override_code


def test_an_empty_rx_view_draft_gets_no_warning(stack: Stack, sandbox: Sandbox) -> None:
    """D21: Rx View sends an empty draft when it opens; nothing was ordered, nothing warned."""
    pid = "e2e-empty-draft"
    stack.load(_patient("zoledronic-order-crcl-25", pid))
    sandbox.page.goto(stack.url(pid, hook="order-select", screen="rx-view"))
    sandbox.wait_for_calls(1)
    draft = sandbox.sent[0]["context"]["draftOrders"]["entry"][0]["resource"]
    assert "medicationCodeableConcept" not in draft
    assert sandbox.cards() == []
    assert sandbox.page.get_by_text("No recommendations to display").is_visible()


def test_tdxd_in_rx_view_as_the_sandbox_orders_it(stack: Stack, sandbox: Sandbox) -> None:
    """T-DXd with the Sandbox's own dosage (1 {pill} daily): the ILD reminder, and D1's
    question about a daily schedule."""
    pid = "e2e-tdxd"
    stack.load(_patient("tdxd-order-start", pid))
    _substitute(sandbox, ENHERTU)
    sandbox.page.goto(stack.url(pid, hook="order-select", screen="rx-view"))
    sandbox.wait_for_calls(1)
    _choose(sandbox)
    sandbox.wait_for_calls(2)
    summaries = [c["summary"] for c in sandbox.cards()]
    sandbox.shot("cards")
    assert any("more often than every 3 weeks" in s for s in summaries), summaries
    assert any("monitor for" in s.lower() for s in summaries), summaries


def test_replace_with_denosumab_leaves_an_orderable_order(stack: Stack, sandbox: Sandbox) -> None:
    """D19: on Rx Sign, zoledronic acid at CrCl 25 is critical; 'replace with denosumab'
    applied by the Sandbox (first action only) leaves denosumab in the order, never an empty
    one, and signing it again sends denosumab."""
    pid = "e2e-replace"
    stack.load(_patient("zoledronic-order-crcl-25", pid))
    _substitute(sandbox, ZOLEDRONIC)
    sandbox.page.goto(stack.url(pid, hook="order-sign", screen="rx-sign"))
    _choose(sandbox)
    sandbox.page.get_by_role("button", name="Sign Order").click()
    sandbox.wait_for_calls(1)
    cards = sandbox.cards()
    sandbox.shot("critical")
    critical = [c for c in cards if c["indicator"] == "critical"]
    assert critical
    assert critical[0]["summary"].startswith("Zoledronic acid not recommended")
    before = len(sandbox.sent)
    sandbox.page.get_by_role("button", name=re.compile("^Replace with denosumab")).first.click()
    sandbox.page.wait_for_timeout(1500)
    sandbox.shot("replaced")
    chosen = sandbox.page.evaluate(ORDERED)  # the Sandbox's order (its input keeps the text)
    assert chosen == {"id": "1046402", "name": "Denosumab 120 mg (Xgeva)"}
    sandbox.page.get_by_role("button", name="Sign Order").click()
    sandbox.wait_for_calls(before + 1)
    order = sandbox.sent[-1]["context"]["draftOrders"]["entry"][0]["resource"]
    codes = [c["code"] for c in order["medicationCodeableConcept"]["coding"]]
    assert codes == ["1046402"]
    summaries = [c["summary"] for c in sandbox.cards()]
    assert not any("could not be checked" in s for s in summaries)
    assert [f for f in _feedback(stack, "mbc-bone-order-sign") if f.outcome == "accepted"]
