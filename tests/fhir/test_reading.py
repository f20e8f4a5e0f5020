"""Screening and validation of what is read: narratives, full R4B verdicts remembered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from cds.app import create_app
from cds.fhir.conformance import Checker
from cds.fhir.elements import flatten
from cds.fhir.reading import _resources, read_records
from cds.services import load_knowledge
from cds.settings import REPO_CARDS, Settings
from cds.terminology import Terminology


def test_a_broken_narrative_does_not_exclude_a_resource(t: Terminology) -> None:
    """The narrative is not read by any rule, so it cannot cost us the clinical data."""
    obs = {
        "resourceType": "Observation",
        "id": "x",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
        "valueQuantity": {"value": 1.0, "unit": "mg/dL"},
        "text": {"status": "not-a-status"},  # invalid: unknown status and no div
    }
    records = read_records([obs], t)
    assert records.excluded == ()
    assert len(records.observations) == 1


class TestFullValidationMemo:
    def obs(self, value: Any) -> dict[str, Any]:
        return {
            "resourceType": "Observation",
            "id": "x",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
            "valueQuantity": {"value": value, "unit": "mg/dL"},
        }

    def test_same_content_hits_and_changed_content_misses(self, t: Terminology) -> None:
        cache = Checker("full")
        read_records([self.obs(1.0)], t, cache)
        read_records([self.obs(1.0)], t, cache)
        assert (cache.hits, cache.misses) == (1, 1)
        read_records([self.obs(1.1)], t, cache)
        assert cache.misses == 2

    def test_invalid_verdicts_are_cached_and_still_excluded(self, t: Terminology) -> None:
        cache = Checker("full")
        for _ in range(2):
            records = read_records([self.obs("high")], t, cache)
            assert records.observations == ()
            assert records.excluded[0].location.startswith("valueQuantity")
        assert cache.hits == 1

    def test_capacity_is_bounded(self, t: Terminology) -> None:
        cache = Checker("full", capacity=2)
        for v in (1.0, 2.0, 3.0):
            read_records([self.obs(v)], t, cache)
        read_records([self.obs(1.0)], t, cache)  # evicted: validated again
        assert (cache.hits, cache.misses) == (0, 4)


def test_the_service_reuses_full_verdicts_across_calls(tmp_path: Path) -> None:
    """CDS_VALIDATION=full: the service validates with R4B and remembers verdicts by content."""
    from tests.conftest import ROOT

    settings = Settings(validation="full", feedback_db=tmp_path / "f.sqlite3")
    knowledge = load_knowledge(REPO_CARDS, validation=settings.validation)
    request = json.loads(
        (ROOT / "fixtures/mbc-bone-patient-view/her2-positive-first-line/request.json").read_text()
    )
    with TestClient(create_app(settings, knowledge=knowledge)) as client:
        client.post("/cds-services/mbc-bone-patient-view", json=request)
        hits = knowledge.checker.hits
        client.post("/cds-services/mbc-bone-patient-view", json=request)
    assert knowledge.checker.mode == "full"
    assert knowledge.checker.hits > hits


def _creatinine(rid: str, status: str = "final") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": status,
        "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
        "valueQuantity": {"value": 1.0, "unit": "mg/dL"},
    }


def test_payloads_are_read_in_every_shape_each_resource_once(t: Terminology) -> None:
    """Bundles (nested too), lists, single resources; the same resource under two keys once."""
    nested = {"resourceType": "Bundle", "entry": [{"resource": _creatinine("b")}]}
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {"resource": _creatinine("a")},
            {"resource": nested},
            {"resource": [_creatinine("c"), _creatinine("a")]},
            {"fullUrl": "urn:uuid:no-resource"},
            "not an entry",
            {"resource": {"id": "no type"}},
        ],
    }
    records = read_records([bundle, _creatinine("d"), [_creatinine("c")], None], t)
    assert sorted(o.id for o in records.observations) == ["a", "b", "c", "d"]
    assert records.received == {"Observation"}  # a Bundle is a container, not data


def test_withdrawn_and_unread_resources_are_screened_out(t: Terminology) -> None:
    withdrawn = _creatinine("w", status="entered-in-error")
    heart_rate = _creatinine("hr") | {"code": {"coding": [{"code": "8867-4"}]}}
    procedure = {  # no code, type or service type: nothing to match, nothing read
        "resourceType": "Procedure",
        "id": "p",
        "status": "completed",
    }
    records = read_records([withdrawn, heart_rate, procedure, _creatinine("ok")], t)
    assert [o.id for o in records.observations] == ["ok"]
    assert records.activities == ()
    assert records.excluded == ()
    assert records.received == {"Observation", "Procedure"}


def test_an_array_sent_as_one_object_is_screened_in_and_named(t: Terminology) -> None:
    """A creatinine whose coding is one object, not an array, is a creatinine: the screen
    lets it in and its check names it as left out, instead of dropping it unseen."""
    creatinine = _creatinine("one")
    [creatinine["code"]["coding"]] = creatinine["code"]["coding"]
    bundle = {"resourceType": "Bundle", "entry": {"resource": _creatinine("entry")}}
    records = read_records([creatinine, bundle], t)
    assert [(e.resource_type, e.location) for e in records.excluded] == [
        ("Observation", "code.coding")
    ]
    assert [o.id for o in records.observations] == ["entry"]


def _bundles() -> st.SearchStrategy[Any]:
    """Bundles whose entries hold resources, Bundles, lists of resources or junk: every shape
    the one-loop path hands back to `flatten` is drawn often."""
    resource = st.builds(
        lambda t, i: {"resourceType": t, "id": i},
        st.sampled_from(["Observation", "Condition", "Patient"]),
        st.sampled_from(["a", "b"]),
    )
    junk: st.SearchStrategy[Any] = st.one_of(
        st.none(), st.integers(), st.just({"id": "no type"}), st.just({})
    )

    def bundle(content: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        entry = st.builds(lambda r: {"resource": r}, content) | junk
        return st.builds(
            lambda entries: {"resourceType": "Bundle", "entry": entries},
            st.lists(entry, min_size=1, max_size=4),
        )

    nested = bundle(resource) | st.lists(resource, min_size=1, max_size=3)
    return bundle(st.one_of(resource, nested, junk))


@given(payload=_bundles())
def test_bundle_entries_are_taken_as_flatten_takes_them(payload: Any) -> None:
    """The one-loop path for a Bundle's entries finds the same resources, in the same order."""
    assert [id(r) for r in _resources(payload)] == [id(r) for r in flatten(payload)]
