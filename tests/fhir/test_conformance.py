"""The check before reading: the fields the rules read (default) against full R4B validation."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from cds.app import create_app
from cds.fhir.conformance import Checker, check_r4b, check_read_fields
from cds.fhir.reading import read_records
from cds.services import load_knowledge
from cds.settings import REPO_CARDS, Settings
from cds.terminology import Terminology
from cds.tools.replay import inline_prefetch, iter_scenarios
from tests.conftest import ROOT, SHARED, needs_shared

SCENARIOS = list(iter_scenarios([str(ROOT / "fixtures")]))

CREATININE = {
    "resourceType": "Observation",
    "id": "crea-1",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
    "effectiveDateTime": "2026-11-01T09:30:00+01:00",
    "valueQuantity": {"value": 1.1, "unit": "mg/dL", "code": "mg/dL"},
}


_DROP = object()


def _with(**changes: Any) -> dict[str, Any]:
    r = copy.deepcopy(CREATININE)
    for k, v in changes.items():
        if v is _DROP:
            r.pop(k, None)
        else:
            r[k] = v
    return r


def _strip_uuids(value: Any) -> Any:
    """Card and suggestion uuids are new on every call; everything else must be identical."""
    if isinstance(value, dict):
        return {k: _strip_uuids(v) for k, v in value.items() if k != "uuid"}
    if isinstance(value, list):
        return [_strip_uuids(v) for v in value]
    return value


@pytest.fixture(scope="module", name="both")
def _both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, TestClient]]:
    clients: dict[str, TestClient] = {}
    for mode in ("fields", "full"):
        db = tmp_path_factory.mktemp(mode) / "f.sqlite3"
        settings = Settings(validation=mode, feedback_db=db, snooze_days=0)
        knowledge = load_knowledge(REPO_CARDS, validation=settings.validation)
        assert knowledge.checker.mode == mode
        app = create_app(settings, knowledge=knowledge, http_client=httpx.AsyncClient())
        clients[mode] = TestClient(app).__enter__()
    yield clients
    for c in clients.values():
        c.__exit__(None, None, None)


def test_the_scenario_library_gives_identical_cards_in_both_modes(
    both: dict[str, TestClient],
) -> None:
    """Every scenario (fetch-path ones with their FHIR files as prefetch), through the whole
    service twice: read-field checks and CDS_VALIDATION=full answer exactly the same."""
    compared = 0
    for sc in SCENARIOS:
        request = inline_prefetch(sc)
        if "prefetch" not in request:
            continue  # a refusal scenario: nothing is read
        answers = {
            mode: c.post(f"/cds-services/{sc.service}", json=request) for mode, c in both.items()
        }
        assert answers["fields"].status_code == answers["full"].status_code, sc.name
        assert _strip_uuids(answers["fields"].json()) == _strip_uuids(answers["full"].json()), (
            sc.name
        )
        compared += 1
    assert compared >= 90


def _period(start: str, end: str) -> dict[str, str]:
    return {"start": start, "end": end}


class TestReadFields:
    """A resource wrong where the rules read is excluded, with where and why."""

    @pytest.mark.parametrize(
        ("changes", "where"),
        [
            ({"status": _DROP}, "status"),  # required
            ({"code": _DROP}, "code"),
            ({"effectiveDateTime": "2026-02-30"}, "effectiveDateTime"),  # not a real date
            ({"effectiveDateTime": "2026-11-01T09:30:00"}, "effectiveDateTime"),  # no zone
            ({"effectiveDateTime": "01/11/2026"}, "effectiveDateTime"),
            ({"valueQuantity": {"value": "1.1", "unit": "mg/dL"}}, "valueQuantity.value"),
            ({"valueQuantity": {"value": True}}, "valueQuantity.value"),
            ({"interpretation": {"text": "high"}}, "interpretation"),  # 0..*: an array
            ({"code": {"coding": [{"system": "http://loinc.org", "code": " 2160-0"}]}}, "code"),
            ({"note": [{"authorString": "lab"}]}, "note.0.text"),  # Annotation.text is 1..1
            ({"valueString": "1.1 mg/dL"}, "value[x]"),  # sent twice
            ({"valueRange": {"low": {"value": 36}}}, "value[x]"),
            (
                {"valueQuantity": _DROP, "valueRange": {"low": {"value": "36"}}},
                "valueRange.low.value",
            ),
            ({"id": "crea_1"}, "id"),
            ({"effectiveDateTime": None}, "effectiveDateTime"),  # JSON null: FHIR forbids it
            # FHIR R4 invariant per-1: a period that ends before it starts
            (
                {"effectiveDateTime": _DROP, "effectivePeriod": _period("2026-08", "2025-07")},
                "effectivePeriod",
            ),
            (
                {
                    "effectiveDateTime": _DROP,
                    "effectivePeriod": _period("2026-05-03", "2026-05-01"),
                },
                "effectivePeriod",
            ),
        ],
    )
    def test_excluded(self, changes: dict[str, Any], where: str) -> None:
        verdict = check_read_fields(_with(**changes))
        assert verdict is not None
        assert verdict[0].startswith(where), verdict

    @pytest.mark.parametrize(
        "changes",
        [
            {"text": {"status": "not-a-status"}},  # narrative: never read
            {"performer": "the lab"},  # wrong shape, but no rule reads it
            {"extension": [{"valueString": "no url"}]},
            {"madeUpElement": 1},
            {"effectiveDateTime": "2026-11"},  # partial dates are FHIR dates
            {"id": "e" * 200},  # Epic's ids are longer than R4's 64
            {"valueQuantity": {"value": 1}},  # an integer is a decimal
            # per-1 by the days a partial date may be, and a day to spare for time zones
            {"effectiveDateTime": _DROP, "effectivePeriod": _period("2026-05", "2026-05-12")},
            {"effectiveDateTime": _DROP, "effectivePeriod": _period("2026", "2026-01-01")},
            {
                "effectiveDateTime": _DROP,
                "effectivePeriod": _period("2026-06-01T01:00:00+14:00", "2026-05-31T23:00:00Z"),
            },
        ],
    )
    def test_fine_where_the_rules_do_not_look(self, changes: dict[str, Any]) -> None:
        assert check_read_fields(_with(**changes)) is None

    def test_full_validation_still_judges_everything(self) -> None:
        bad_elsewhere = _with(performer="the lab")
        assert check_read_fields(bad_elsewhere) is None
        assert check_r4b(bad_elsewhere) is not None
        assert Checker("full").verdict(bad_elsewhere) is not None
        # and full includes the read-field check (R4B takes a decimal sent as a string)
        assert Checker("full").verdict(_with(valueQuantity={"value": "1.1"})) is not None

    def test_a_contained_medication_is_checked_where_it_is_read(self) -> None:
        statement: dict[str, Any] = {
            "resourceType": "MedicationStatement",
            "status": "active",
            "medicationReference": {"reference": "#m"},
            "contained": [
                {"resourceType": "Medication", "id": "m", "code": {"coding": "2555"}},
                {"resourceType": "Organization", "id": "o", "name": ["not read"]},
            ],
        }
        verdict = check_read_fields(statement)
        assert verdict is not None
        assert verdict[0].startswith("contained.0")
        statement["contained"][0]["code"] = {"coding": [{"code": "2555"}]}
        assert check_read_fields(statement) is None

    def test_types_the_rules_never_read_pass(self) -> None:
        assert check_read_fields({"resourceType": "Organization", "name": ["x"]}) is None

    def test_the_reader_reports_the_exclusion_and_goes_on(self, t: Terminology) -> None:
        records = read_records([_with(valueQuantity={"value": "1.1"}), _with(id="crea-2")], t)
        assert [o.id for o in records.observations] == ["crea-2"]
        (excluded,) = records.excluded
        assert (excluded.resource_type, excluded.location) == ("Observation", "valueQuantity.value")


@needs_shared(SHARED / "cds-hooks" / "examples")
def test_every_captured_and_official_request_reads_the_same_in_both_modes(
    t: Terminology,
) -> None:
    """Real clients' prefetch (the spec's examples, the Sandbox captures): whatever full R4B
    validation excludes there is invalid only where no rule reads, or excluded by both."""
    examples = sorted((SHARED / "cds-hooks" / "examples").rglob("*.json"))
    read = 0
    for path in examples:
        document = json.loads(path.read_text())
        if not isinstance(document, dict) or not isinstance(document.get("prefetch"), dict):
            continue
        fields = read_records(document["prefetch"].values(), t)
        full = read_records(document["prefetch"].values(), t, Checker("full"))
        # Fewer or the same exclusions, never new ones: the narrow check is a subset of R4B's.
        assert {(e.resource_type, e.location) for e in fields.excluded} <= {
            (e.resource_type, e.location) for e in full.excluded
        }, path
        read += 1
    assert read >= 5


def test_reading_never_modifies_the_resource(t: Terminology) -> None:
    resource = _with()
    before = json.dumps(resource, sort_keys=True)
    read_records([resource], t)
    check_read_fields(resource)
    assert json.dumps(resource, sort_keys=True) == before


@pytest.mark.parametrize(
    "value",
    [
        "2026",
        "2026-11",
        "2026-11-01",
        "2026-11-01T09:30:00Z",
        "2026-11-01T09:30:00.123+01:00",
        "2016-12-31T23:59:60Z",
        "2026-11-01T09:30:00+14:00",
        "2026-11-01T09:30:00+14:30",
        "2026-13",
        "2026-11-1",
        "2026-11-01T25:00:00Z",
        "2026-11-01T09:30:00",
        "2026-11-01T09:30Z",
        "0000",
        "26-11-01",
    ],
)
def test_date_formats_are_fhir_cores(value: str) -> None:
    """Our anchored date, dateTime and instant expressions accept what fhir_core's do."""
    import re

    from fhir_core import types

    from cds.fhir.datatypes import DATE_RE, DATETIME_RE, INSTANT_RE

    for ours, theirs in (
        (DATE_RE, types.Date.pattern),
        (DATETIME_RE, types.DateTime.pattern),
        (INSTANT_RE, types.Instant.pattern),
    ):
        assert bool(re.match(ours, value)) == bool(theirs.fullmatch(value)), (ours, value)


def test_a_dose_is_read_only_from_the_elements_its_resource_type_has() -> None:
    """MedicationAdministration.dosage.dose is a dose; a `dose` inside a request's dosage is not
    FHIR R4 (the read-field check does not judge it), so it is never read as one."""
    from cds.fhir.records import medication_record

    quantity = {"value": 4, "unit": "mg", "code": "mg"}
    given = medication_record(
        "a",
        {
            "resourceType": "MedicationAdministration",
            "status": "completed",
            "dosage": {"dose": quantity, "text": "4 mg IV"},
        },
        {},
    )
    assert given.doses[0].quantity is not None
    assert given.doses[0].quantity.value == 4
    ordered = medication_record(
        "r",
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "dosageInstruction": [{"dose": quantity, "text": "as directed"}],
        },
        {},
    )
    assert ordered.doses[0].quantity is None
    assert ordered.doses[0].text == "as directed"
