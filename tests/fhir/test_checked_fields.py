"""Every field a record reads is one the read-field check judged.

The narrow schemas in `cds.fhir.conformance` are declared by hand beside the record builders in
`cds.fhir.records`; if a builder read a field the schema does not declare, that field would go
into the rules unchecked (a decimal sent as a string, an array sent as an object). Each builder
is run here over every resource of the scenario library and of the captured and official
requests, with the resource wrapped so that every element it reads is noted; each noted path
must be one its type's schema declares.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any, NotRequired, Required

import pytest
import typing_extensions

from cds.fhir import conformance, elements, reading
from cds.fhir.conformance import READ_TYPES
from cds.fhir.reading import read_records
from cds.terminology import Terminology
from cds.tools.replay import inline_prefetch, iter_scenarios
from tests.conftest import ROOT, SHARED

# What every resource is read by before any check: its type, to pick its builder.
_ALWAYS = frozenset({"resourceType"})


def declared_paths(schema: Any, prefix: str = "") -> set[str]:
    """Every element path a narrow schema declares: `a.b`, `a[].b` for an array of objects."""
    origin = typing.get_origin(schema)
    if origin in (typing.Annotated, typing_extensions.Annotated):
        return declared_paths(typing.get_args(schema)[0], prefix)
    if origin in (Required, NotRequired, typing_extensions.Required, typing_extensions.NotRequired):
        return declared_paths(typing.get_args(schema)[0], prefix)
    if origin is list:
        return declared_paths(typing.get_args(schema)[0], prefix + "[]")
    if origin in (typing.Union, types.UnionType):
        return set().union(*(declared_paths(a, prefix) for a in typing.get_args(schema)))
    if not typing_extensions.is_typeddict(schema):
        return set()  # a primitive: its path was added by its parent
    out: set[str] = set()
    hints = typing_extensions.get_type_hints(schema, include_extras=True)
    for name, hint in hints.items():
        path = f"{prefix}.{name}" if prefix else name
        out.add(path)
        out |= declared_paths(hint, path)
    return out


class _Read(dict[str, Any]):
    """A JSON object that notes the path of every element read from it."""

    def __init__(self, data: dict[str, Any], path: str, noted: set[str]) -> None:
        super().__init__(data)
        self._path, self._noted = path, noted

    def _at(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def get(self, key: str, default: Any = None) -> Any:
        self._noted.add(self._at(key))
        return _traced(super().get(key, default), self._at(key), self._noted)

    def __getitem__(self, key: str) -> Any:
        self._noted.add(self._at(key))
        return _traced(super().__getitem__(key), self._at(key), self._noted)

    # Reading every element at once (items, values) reads fields no schema may declare.
    def items(self) -> Any:
        self._noted.add(self._at("*"))
        return super().items()

    def values(self) -> Any:
        self._noted.add(self._at("*"))
        return super().values()


class _ReadList(list[Any]):
    def __init__(self, data: list[Any], path: str, noted: set[str]) -> None:
        super().__init__(data)
        self._path, self._noted = path, noted

    def __iter__(self) -> Iterator[Any]:
        for item in super().__iter__():
            yield _traced(item, self._path, self._noted)

    def __getitem__(self, index: Any) -> Any:
        return _traced(super().__getitem__(index), self._path, self._noted)


def _traced(value: Any, path: str, noted: set[str]) -> Any:
    if isinstance(value, dict) and not isinstance(value, _Read):
        return _Read(value, path, noted)
    if isinstance(value, list) and not isinstance(value, _ReadList):
        return _ReadList(value, path + "[]", noted)
    return value


class _Forgetful(dict[bytes, Any]):
    """The concept cache, forgetting: a remembered CodeableConcept would be read without a note."""

    def get(self, key: bytes, default: Any = None) -> Any:
        return default

    def __setitem__(self, key: bytes, value: Any) -> None:
        pass


_BUILDERS = (
    "observation_record",
    "condition_record",
    "medication_record",
    "patient_record",
    "specimen_date",
    "activity_record",
    "allergy_record",
)

# What the library's requests lack: each type the rules read, with its dated and coded elements
# in every form they are read from (a referenced Medication, periods, arrays of concepts).
_MORE: list[object] = [
    {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"resource": r}
            for r in (
                {
                    "resourceType": "ServiceRequest",
                    "id": "sr",
                    "status": "active",
                    "intent": "order",
                    "code": {"text": "Dental examination"},
                    "authoredOn": "2026-10-01",
                    "occurrencePeriod": {"start": "2026-10-05", "end": "2026-10-06"},
                },
                {
                    "resourceType": "Encounter",
                    "id": "enc",
                    "status": "finished",
                    "type": [{"text": "Dental visit"}],
                    "serviceType": {"text": "Dentistry"},
                    "period": {"start": "2026-10-07"},
                },
                {
                    "resourceType": "Procedure",
                    "id": "proc",
                    "status": "completed",
                    "code": {"text": "Dental extraction"},
                    "performedPeriod": {"start": "2026-10-08"},
                },
                {
                    "resourceType": "Specimen",
                    "id": "sp1",
                    "collection": {"collectedDateTime": "2026-09-01"},
                },
                {
                    "resourceType": "Specimen",
                    "id": "sp2",
                    "collection": {"collectedPeriod": {"start": "2026-09-02"}},
                },
                {
                    "resourceType": "AllergyIntolerance",
                    "id": "allergy",
                    "code": {"text": "zoledronic acid"},
                },
                {
                    "resourceType": "Medication",
                    "id": "med",
                    "code": {"text": "Zometa"},
                    "ingredient": [{"itemCodeableConcept": {"text": "zoledronic acid"}}],
                },
                {
                    "resourceType": "MedicationStatement",
                    "id": "ms",
                    "status": "active",
                    "medicationReference": {"reference": "Medication/med"},
                    "effectivePeriod": {"start": "2026-09-01"},
                    "dateAsserted": "2026-09-01",
                    "dosage": [{"text": "4 mg IV every 12 weeks"}],
                },
            )
        ],
    }
]


def _every_request() -> Iterator[tuple[str, list[object]]]:
    for sc in iter_scenarios([str(ROOT / "fixtures")]):
        request = inline_prefetch(sc)
        if isinstance(request.get("prefetch"), dict):
            yield sc.name, list(request["prefetch"].values())
    examples = SHARED / "cds-hooks" / "examples"
    for path in sorted(examples.rglob("*.json")) if examples.is_dir() else ():
        document = json.loads(path.read_text())
        if isinstance(document, dict) and isinstance(document.get("prefetch"), dict):
            yield path.name, list(document["prefetch"].values())
    yield "more", _MORE


def test_the_schemas_are_read_as_declared() -> None:
    """The path reader itself: nested objects, arrays of them, and the contained union."""
    paths = declared_paths(conformance.MedicationStatement)
    assert {"status", "dosage[].timing.repeat.period", "effectivePeriod.start"} <= paths
    assert {"contained[].code.coding[].system", "extension[].url"} <= paths
    assert "dosage[].dose" not in paths  # a request's Dosage has no `dose` in R4
    noted: set[str] = set()
    read = _Read({"a": [{"b": {"c": 1}}]}, "", noted)
    assert [x.get("b")["c"] for x in read.get("a")] == [1]
    assert noted == {"a", "a[].b", "a[].b.c"}


def test_every_field_a_record_reads_is_checked(
    t: Terminology, monkeypatch: pytest.MonkeyPatch
) -> None:
    noted: dict[str, set[str]] = {rtype: set() for rtype in READ_TYPES}
    built: dict[str, int] = dict.fromkeys(READ_TYPES, 0)

    def traced(build: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            raw = next(a for a in args if isinstance(a, dict) and "resourceType" in a)
            rtype = raw["resourceType"]
            built[rtype] += 1
            wrapped = _Read(raw, "", noted[rtype])
            # A referenced Medication is read through its user: noted as a Medication.
            return build(*(wrapped if a is raw else _medications(a) for a in args))

        return run

    def _medications(arg: Any) -> Any:
        if not isinstance(arg, dict):
            return arg
        return {ref: _Read(m, "", noted["Medication"]) for ref, m in arg.items()}

    for name in _BUILDERS:
        monkeypatch.setattr(reading, name, traced(getattr(reading, name)))
    monkeypatch.setattr(elements, "_CONCEPTS", _Forgetful())
    requests = 0
    for _, payloads in _every_request():
        read_records(payloads, t)
        requests += 1
    assert requests >= 100
    # Every type's builder ran (a Medication is read through the resource that names it).
    for rtype in READ_TYPES - {"Medication"}:
        assert built[rtype] > 0, f"no {rtype} in the corpus: its reads are not checked here"
    assert noted["Medication"], "no referenced Medication was read"
    unchecked = {
        rtype: sorted(left)
        for rtype, paths in noted.items()
        if (left := paths - _ALWAYS - declared_paths(getattr(conformance, rtype)))
    }
    assert unchecked == {}, unchecked
