"""Fixture replay: run scenario requests in-process or against a server; compare clinically.

A scenario is a folder with request.json (a full CDS Hooks request), case.json (the clinical
story and the expected rules) and expected.json (the reviewed response digest). Cards are
compared on what matters clinically - rule, indicator, and each suggestion's actions with their
codes - never on wording, so copy edits do not break the library.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from cds.cards import EXT_RULE, EXT_VARIANT

# The official and captured CDS Hooks requests beside a source checkout (reference material,
# not shipped: an installed service is given the folder with --examples).
EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "cds-hooks" / "examples"


@dataclass(frozen=True, slots=True)
class Scenario:
    path: Path
    service: str
    request: dict[str, Any]
    case: dict[str, Any]
    expected: dict[str, Any] | None
    fhir_dir: Path | None

    @property
    def name(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}"


@dataclass(slots=True)
class Result:
    scenario: str
    status: int
    expected: list[str]
    got: list[str]
    ok: bool
    diff: list[str] = field(default_factory=list)


def _action_sig(action: Mapping[str, Any]) -> str:
    kind = action.get("type", "?")
    if kind == "delete":
        return f"delete {action.get('resourceId')}"
    res = action.get("resource") or {}
    rtype = res.get("resourceType", "?")
    concept = res.get("medicationCodeableConcept") or res.get("code") or {}
    codes = [c.get("code") for c in concept.get("coding") or []]
    what = ",".join(str(c) for c in codes) if codes else f"text:{concept.get('text', '?')}"
    if kind == "update":
        # The code too: a reduced dose is ordered at ingredient level (clinical-logic §3c D9).
        dose = (res.get("dosageInstruction") or [{}])[0].get("text", "")
        return f"update {rtype}/{res.get('id', '?')} {what}: {dose}"
    if rtype == "MedicationRequest":
        # The dose is clinical content: a golden shows it, so a reviewer reads each regimen's.
        dose = (res.get("dosageInstruction") or [{}])[0].get("text", "")
        return f"create {rtype} {what}: {dose}"
    return f"create {rtype} {what}"


def digest(response: Mapping[str, Any]) -> dict[str, Any]:
    """The clinically meaningful content of a CDS response, in the order the cards came."""
    cards = []
    for card in response.get("cards") or []:
        ext = card.get("extension") or {}
        cards.append(
            {
                "rule": f"{ext.get(EXT_RULE, '?')}:{ext.get(EXT_VARIANT, '?')}",
                "indicator": card.get("indicator"),
                "suggestions": [
                    sorted(_action_sig(a) for a in s.get("actions") or [])
                    for s in card.get("suggestions") or []
                ],
            }
        )
    return {"cards": cards}


def card_lines(d: Mapping[str, Any]) -> list[str]:
    return [f"{c['indicator']:<8} {c['rule']}" for c in d.get("cards", [])]


def iter_scenarios(paths: list[str]) -> Iterator[Scenario]:
    for raw in paths:
        p = Path(raw)
        requests = [p] if p.is_file() else sorted(p.rglob("request.json"))
        for req in requests:
            folder = req.parent
            case_path = folder / "case.json"
            expected_path = folder / "expected.json"
            case = json.loads(case_path.read_text()) if case_path.exists() else {}
            yield Scenario(
                path=folder,
                service=case.get("service") or folder.parent.name,
                request=json.loads(req.read_text()),
                case=case,
                expected=(
                    json.loads(expected_path.read_text()) if expected_path.exists() else None
                ),
                fhir_dir=(folder / "fhir") if (folder / "fhir").is_dir() else None,
            )


def call_in_process(client: Any, scenario: Scenario) -> tuple[int, dict[str, Any]]:
    response = client.post(f"/cds-services/{scenario.service}", json=scenario.request)
    return response.status_code, response.json()


def answer_in_process(
    client: Any, fhir: FixtureFHIRServer | None, scenario: Scenario
) -> tuple[int, dict[str, Any]]:
    """A scenario answered by the in-process service; its `fhir/` files (if any) are what the
    in-process FHIR stand-in serves."""
    if fhir is not None:
        fhir.folder = scenario.fhir_dir
        fhir.patient_id = str(scenario.request.get("context", {}).get("patientId", ""))
    return call_in_process(client, scenario)


def unexpected_rules(scenario: Scenario, got: Mapping[str, Any]) -> str | None:
    """How the cards' rules differ from what the clinician expects (case.json `expect`, written
    by hand before the golden file); None when they agree or the case states nothing."""
    want = scenario.case.get("expect")
    rules = [c["rule"] for c in got.get("cards", [])]
    if want is None or rules == want:
        return None
    said = f"the clinician expects {want or 'no cards'} (case.json)"
    return f"{said}, the service gave {rules or 'no cards'}"


def compare(scenario: Scenario, status: int, body: dict[str, Any]) -> Result:
    want_status = int(scenario.case.get("status", 200))
    got = digest(body) if status == 200 else {"cards": []}
    expected = scenario.expected or {"cards": []}
    contradicts = unexpected_rules(scenario, got)
    ok = (
        status == want_status
        and scenario.expected is not None
        and got == expected
        and contradicts is None
    )
    diff = []
    if not ok:
        diff = list(
            difflib.unified_diff(
                json.dumps(expected, indent=1).splitlines(),
                json.dumps(got, indent=1).splitlines(),
                "expected",
                "got",
                lineterm="",
            )
        )
        if contradicts is not None:
            diff.insert(0, contradicts)
        if scenario.expected is None:
            diff.insert(0, "no expected.json yet: review the cards, then --update writes it")
        if status != want_status:
            diff.insert(0, f"HTTP {status}, expected {want_status}")
    return Result(
        scenario=scenario.name,
        status=status,
        expected=card_lines(expected),
        got=card_lines(got),
        ok=ok,
        diff=diff,
    )


class FixtureFHIRServer:
    """Serves a scenario's fhir/<key>.json files for the service's own queries (fetch path).

    The request is matched to a prefetch key by rendering that key's template for the patient,
    so a scenario's files answer exactly the queries the service makes.
    """

    def __init__(self, templates: Mapping[str, str]) -> None:
        self.templates = templates
        self.folder: Path | None = None
        self.patient_id = ""
        self.requests: list[str] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        from urllib.parse import unquote

        from cds.prefetch import render_template

        wanted = unquote(request.url.raw_path.decode("ascii"))
        self.requests.append(wanted)
        for key, template in self.templates.items():
            query = render_template(template, {"patientId": self.patient_id})
            if wanted.endswith("/" + unquote(query)) and self.folder is not None:
                path = self.folder / f"{key}.json"
                if path.exists():
                    return httpx.Response(200, content=path.read_bytes())
        return httpx.Response(
            404,
            json={
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "not-found", "diagnostics": "no file"}],
            },
        )


def scenario_resources(sc: Scenario) -> list[dict[str, Any]]:
    """Every FHIR resource of a scenario's patient (prefetch or fhir/ files), once each."""
    from cds.fhir.elements import flatten

    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for value in inline_prefetch(sc).get("prefetch", {}).values():
        for r in flatten(value):
            rid = r.get("id")
            if isinstance(rid, str):
                seen.setdefault((r["resourceType"], rid), r)
    return list(seen.values())


def load_into(http: httpx.Client, fhir_server: str, sc: Scenario) -> None:
    """Put the scenario's patient into a FHIR server: one batch Bundle of PUTs (ids kept, so
    loading again overwrites). A server that refuses the batch stops the replay with its answer."""
    base = fhir_server.rstrip("/")
    http.post(f"{base}/$reset")  # the test engine empties itself; other servers ignore it
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in scenario_resources(sc)
        ],
    }
    answer = http.post(base, json=batch, headers={"Content-Type": "application/fhir+json"})
    if answer.status_code >= 400:
        raise SystemExit(
            f"{fhir_server} refused the patient of {sc.name}: HTTP {answer.status_code} "
            f"{answer.text[:300]}"
        )


def through_fhir_server(sc: Scenario, fhir_server: str) -> dict[str, Any]:
    """The scenario's request with no prefetch: the service must fetch everything."""
    request = {k: v for k, v in sc.request.items() if k != "prefetch"}
    request["fhirServer"] = fhir_server.rstrip("/")
    return request


def in_process_client(fhir_server: str | None = None) -> tuple[Any, FixtureFHIRServer]:
    """The service in-process with the configured knowledge, and its FHIR stand-in."""
    import tempfile
    import warnings

    with warnings.catch_warnings():
        # Starlette's TestClient warns about its httpx backend; it is the in-process transport.
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from cds.app import create_app
    from cds.services import load_knowledge
    from cds.settings import Settings

    db = Path(tempfile.mkdtemp(prefix="cds-replay-")) / "fb.sqlite3"
    settings = (
        Settings(feedback_db=db, fhir_server_allowlist=(fhir_server,))
        if fhir_server
        else Settings(feedback_db=db)
    )
    knowledge = load_knowledge(settings.cards_dir, settings.parameters, settings.validation)
    first = next(iter(knowledge.services.values()))
    fhir = FixtureFHIRServer(first.prefetch)
    transport = None if fhir_server else httpx.MockTransport(fhir.handler)
    app = create_app(
        settings, knowledge=knowledge, http_client=httpx.AsyncClient(transport=transport)
    )
    return TestClient(app), fhir


def inline_prefetch(sc: Scenario) -> dict[str, Any]:
    """For a running server: a fetch-path scenario's files are sent as prefetch instead.

    Not for a scenario that expects a refusal (412): its point is that the data is not fetched.
    """
    request = dict(sc.request)
    if sc.fhir_dir is not None and int(sc.case.get("status", 200)) == 200:
        request["prefetch"] = {
            p.stem: json.loads(p.read_text()) for p in sorted(sc.fhir_dir.glob("*.json"))
        }
    return request


def _conformance(args: argparse.Namespace, client: Any) -> int:
    """Every official/captured example request gets a 200 with a valid response or a clean 4xx."""
    root = Path(args.examples) if getattr(args, "examples", None) else EXAMPLES
    if not root.is_dir():
        print(
            f"no CDS Hooks example requests at {root}: pass --examples DIR (for example the "
            "folder of official and captured requests, ../shared/cds-hooks/examples)"
        )
        return 2
    files = sorted(root.rglob("*.json"))
    bad = 0
    count = 0
    for path in files:
        try:
            data = json.loads(path.read_text())
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        # Sandbox stub files hold several named requests; captured files wrap one in "body".
        bodies = (
            list(data.values()) if path.name.endswith("-stub.json") else [data.get("body", data)]
        )
        for body in bodies:
            if isinstance(body, dict) and "hook" in body:
                count += 1
                bad += _conformance_one(args, client, root, path, body)
    print(f"conformance: {count - bad} passed, {bad} failed")
    if not count:
        print(f"no CDS Hooks request was found under {root}")
        return 1
    return 1 if bad else 0


def _conformance_one(
    args: argparse.Namespace, client: Any, root: Path, path: Path, body: dict[str, Any]
) -> int:
    from cds.schemas import CDSResponse, OperationOutcome

    service = {
        "patient-view": "mbc-bone-patient-view",
        "order-select": "mbc-bone-order-select",
        "order-sign": "mbc-bone-order-sign",
    }.get(str(body.get("hook")), "mbc-bone-patient-view")
    if args.url:
        url = f"{args.url.rstrip('/')}/cds-services/{service}"
        answer = httpx.post(url, json=body, timeout=10)
    else:
        answer = client.post(f"/cds-services/{service}", json=body)
    status, out = answer.status_code, answer.json()
    clean = (status == 200 and CDSResponse.model_validate(out) is not None) or (
        400 <= status < 500 and OperationOutcome.model_validate(out) is not None
    )
    if not args.quiet or not clean:
        mark = "ok " if clean else "BAD"
        print(f"{mark} {status} {path.relative_to(root)} ({body.get('hook')})")
    return 0 if clean else 1


def main(args: argparse.Namespace) -> int:
    if args.url:
        return _conformance(args, None) if args.conformance else _replay(args, None, None)
    client, fhir = in_process_client(getattr(args, "fhir_server", None))
    with client:
        if args.conformance:
            return _conformance(args, client)
        return _replay(args, client, fhir)


def _replay(args: argparse.Namespace, client: Any, fhir: FixtureFHIRServer | None) -> int:
    scenarios = list(iter_scenarios(args.paths))
    if not scenarios:
        print("no scenarios found (looked for request.json under " + ", ".join(args.paths) + ")")
        return 1
    results: list[Result] = []
    start = time.perf_counter()
    fhir_server: str | None = getattr(args, "fhir_server", None)
    loader = httpx.Client(timeout=30) if fhir_server else None
    if fhir_server:
        # Through a real FHIR server: only scenarios whose data the client prefetched, and
        # that expect an answer; a 412 scenario is about data that cannot be fetched.
        scenarios = [
            sc
            for sc in scenarios
            if int(sc.case.get("status", 200)) == 200 and scenario_resources(sc)
        ]
    for i, sc in enumerate(scenarios, 1):
        status, body = _answer(args, sc, client, fhir, loader)
        result = compare(sc, status, body)
        if args.update and not result.ok and status == int(sc.case.get("status", 200)):
            new = digest(body) if status == 200 else {"cards": []}
            contradicts = unexpected_rules(sc, new)
            if contradicts is not None:
                # A golden file records reviewed cards; cards the clinician did not expect are
                # a finding to look into, never a new golden.
                print(f"--- not updating {sc.path / 'expected.json'}: {contradicts}")
            else:
                print(f"--- updating {sc.path / 'expected.json'}")
                print("\n".join(result.diff))
                (sc.path / "expected.json").write_text(json.dumps(new, indent=2) + "\n")
                result.ok = True
        results.append(result)
        if not args.quiet:
            mark = "ok  " if result.ok else "FAIL"
            print(f"[{i}/{len(scenarios)}] {mark} {sc.name}", file=sys.stderr)
    if loader is not None:
        loader.close()
    return _summarise(results, time.perf_counter() - start)


def _answer(
    args: argparse.Namespace,
    sc: Scenario,
    client: Any,
    fhir: FixtureFHIRServer | None,
    loader: httpx.Client | None,
) -> tuple[int, Any]:
    """The service's status and body for one scenario: through the FHIR server (loaded with
    its patient first), posted to a running service, or in process."""
    fhir_server: str | None = getattr(args, "fhir_server", None)
    if fhir_server and loader is not None:
        load_into(loader, fhir_server, sc)
        request = through_fhir_server(sc, fhir_server)
        if args.url:
            answer = httpx.post(
                f"{args.url.rstrip('/')}/cds-services/{sc.service}", json=request, timeout=30
            )
        else:
            answer = client.post(f"/cds-services/{sc.service}", json=request)
        return answer.status_code, answer.json()
    if args.url:
        answer = httpx.post(
            f"{args.url.rstrip('/')}/cds-services/{sc.service}",
            json=inline_prefetch(sc),
            timeout=30,
        )
        return answer.status_code, answer.json()
    return answer_in_process(client, fhir, sc)


def _summarise(results: list[Result], elapsed: float) -> int:
    """The summary table and each difference; 1 if any scenario differs."""
    failed = [r for r in results if not r.ok]
    print(f"\n{'scenario':<58} {'expected':<28} got")
    for r in results:
        exp = ", ".join(x.split()[1] for x in r.expected) or "no cards"
        got = ", ".join(x.split()[1] for x in r.got) or "no cards"
        flag = "" if r.ok else "  <-- differs"
        print(f"{r.scenario:<58} {exp[:28]:<28} {got}{flag}")
    for r in failed:
        print(f"\n{r.scenario}:")
        print("\n".join(r.diff))
    print(f"\nreplay: {len(results) - len(failed)} passed, {len(failed)} failed ({elapsed:.2f} s)")
    return 1 if failed else 0
