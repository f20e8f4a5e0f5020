"""Benchmarks (not tests): `python tests/benchmarks/bench.py [--runs N]`.

Prints medians for: facts from a 2,000-resource record (realistic mix, and the worst case where
every resource is one the rules read); rules + card rendering for one call; and one whole
in-process HTTP call (parsing, prefetch resolution, facts, rules, cards, serialisation).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from cds.facts import extract_facts, facts_from_records  # noqa: E402
from cds.facts.orders import NO_DRAFTS  # noqa: E402
from cds.fhir.conformance import Checker  # noqa: E402
from cds.fhir.reading import read_records  # noqa: E402
from cds.rules import evaluate  # noqa: E402
from cds.services import load_knowledge  # noqa: E402
from cds.settings import REPO_CARDS  # noqa: E402
from fixtures.factories import PERT, TRAS, XGEVA, Patient  # noqa: E402


def record(relevant_share: float, size: int = 2000) -> Patient:
    """A chart of `size` resources: conditions, observations, medications, procedures."""
    p = Patient("bench")
    p.breast_cancer(3000)
    p.bone_mets(900)
    p.her2(890, "pos")
    p.er(890, "neg")
    p.pr(890, "neg")
    n_relevant = int(size * relevant_share)
    i = 0
    while len(p.resources) < n_relevant:
        i += 1
        kind = i % 4
        if kind == 0:
            p.labs(days_ago=i % 800)
        elif kind == 1:
            p.lvef(i % 800, 55 + i % 10)
        elif kind == 2:
            p.med(
                "MedicationAdministration",
                TRAS if i % 2 else PERT,
                status="completed",
                start=i % 800,
            )
        else:
            p.med("MedicationAdministration", XGEVA, status="completed", start=i % 800)
    i = 0
    while len(p.resources) < size:
        i += 1
        if i % 3:
            p.obs("8867-4", i % 2000, valueQuantity={"value": 70 + i % 30, "unit": "/min"})
        elif i % 2:
            p.condition("http://snomed.info/sct", "38341003", "Hypertensive disorder", i % 3000)
        else:
            p.procedure("http://snomed.info/sct", "73761001", "Colonoscopy", i % 3000)
    return p


def median_ms(fn: Callable[[], Any], runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    k = load_knowledge(REPO_CARDS)
    t, params = k.terminology, k.parameters
    rows = []
    for share, label in (
        (0.15, "2,000 resources, 15% read by the rules"),
        (1.0, "2,000 resources, all read by the rules"),
    ):
        p = record(share)
        resources = [p.patient(), *p.resources]

        def fields(r: list[dict[str, Any]] = resources, d: Any = p.as_of) -> None:
            facts_from_records(read_records(r, t, Checker("fields")), t, params, as_of=d)

        def first(r: list[dict[str, Any]] = resources, d: Any = p.as_of) -> None:
            # A fresh verdict memo each time: the cost of the first call for a chart.
            records = read_records(r, t, Checker("full"))
            facts_from_records(records, t, params, as_of=d)

        warm = Checker("full")

        def repeat(
            r: list[dict[str, Any]] = resources, d: Any = p.as_of, c: Checker = warm
        ) -> None:
            facts_from_records(read_records(r, t, c), t, params, as_of=d)

        rows.append((f"facts: {label} (read fields checked)", median_ms(fields, args.runs)))
        rows.append((f"facts: {label}, CDS_VALIDATION=full", median_ms(first, args.runs)))
        rows.append(
            ("  the same chart again (R4B verdicts remembered)", median_ms(repeat, args.runs))
        )

    scenario = ROOT / "fixtures" / "mbc-bone-patient-view" / "her2-positive-first-line"
    import json

    request = json.loads((scenario / "request.json").read_text())
    payloads = list(request["prefetch"].values())
    facts = extract_facts(payloads, t, params, as_of=p.as_of)
    rows.append(
        (
            "facts: typical chart (fixture her2-positive-first-line)",
            median_ms(lambda: extract_facts(payloads, t, params, as_of=p.as_of), args.runs * 10),
        )
    )
    rows.append(
        (
            "rules: one patient-view call",
            median_ms(lambda: evaluate("patient-view", facts, NO_DRAFTS, params), args.runs * 10),
        )
    )

    from cds.cards import RenderContext

    decisions = evaluate("patient-view", facts, NO_DRAFTS, params)
    ctx = RenderContext(
        hook_instance="h", patient_id="p", encounter_id=None, facts=facts, drafts=NO_DRAFTS
    )
    rows.append(
        (
            "rules + cards: one patient-view call (3 cards)",
            median_ms(
                lambda: [
                    k.renderer.render(d, ctx)
                    for d in evaluate("patient-view", facts, NO_DRAFTS, params)
                ],
                args.runs * 10,
            ),
        )
    )
    assert decisions

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    import tempfile

    from cds.app import create_app
    from cds.settings import Settings

    app = create_app(Settings(feedback_db=Path(tempfile.mkdtemp()) / "fb.sqlite3"), knowledge=k)
    with TestClient(app) as client:

        def call() -> None:
            r = client.post("/cds-services/mbc-bone-patient-view", json=request)
            assert r.status_code == 200

        rows.append(
            ("whole HTTP call in-process (prefetched, 3 cards)", median_ms(call, args.runs * 10))
        )
        minimal = {
            "hook": "patient-view",
            "hookInstance": "x",
            "context": {"userId": "Practitioner/1", "patientId": "p"},
            "prefetch": dict.fromkeys(request["prefetch"]),
        }

        def empty_call() -> None:
            client.post("/cds-services/mbc-bone-patient-view", json=minimal)

        rows.append(
            (
                "protocol layer only: HTTP call with empty prefetch",
                median_ms(empty_call, args.runs * 10),
            )
        )
    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark':<{width}}  median")
    for name, ms in rows:
        print(f"{name:<{width}}  {ms:7.2f} ms")


if __name__ == "__main__":
    main()
