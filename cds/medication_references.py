"""Medication resources a chart's medication records name by reference but did not come with.

EHRs with a formulary name a medicine by `medicationReference`; the prefetch templates ask for
the Medications with `_include`, but a server may ignore it, and a client's prefetch may leave
them out; a draft order may name one the request does not hold. A record whose medicine is
neither sent nor displayed is unread (named on R0b; a draft on R0, not checked): when the call
may query the FHIR server, the missing Medications are fetched in one search instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from cds.fhir.elements import local_reference

KEY = "referencedMedications"  # the data key the Medications fetched for them are kept under
MAX_IDS = 100  # one search; a record past these is named as unread, as with no server
_USES = ("MedicationStatement", "MedicationRequest", "MedicationAdministration")  # ==, not hash


def missing_medication_ids(data: Mapping[str, Any], medication_keys: Iterable[str]) -> list[str]:
    """The ids of the Medications the records under `medication_keys` reference without a
    display, not among those sent, in the order first named (at most MAX_IDS). The other keys
    (most of a large chart) are looked through only when one is missing there."""
    keys = set(medication_keys)
    sent: set[str] = set()
    wanted: dict[str, None] = {}
    for resource in _resources(v for k, v in data.items() if k in keys):
        if _is_medication(resource):
            sent.add(resource["id"])
        elif resource.get("resourceType") in _USES:
            ref = resource.get("medicationReference")
            if isinstance(ref, dict) and not ref.get("display"):
                mid = _medication_id(ref.get("reference"))
                if mid is not None:
                    wanted[mid] = None
    if wanted.keys() - sent:
        others = _resources(v for k, v in data.items() if k not in keys)
        sent.update(r["id"] for r in others if _is_medication(r))
    return [mid for mid in wanted if mid not in sent][:MAX_IDS]


def _is_medication(resource: dict[str, Any]) -> bool:
    return resource.get("resourceType") == "Medication" and isinstance(resource.get("id"), str)


def search_query(ids: list[str]) -> str:
    return "Medication?_id=" + ",".join(ids)


def _medication_id(reference: object) -> str | None:
    """The id of a `Medication/<id>` reference, relative or absolute; None for a contained
    (`#id`) or urn reference, which no search finds."""
    if not isinstance(reference, str):
        return None
    kind, _, mid = local_reference(reference).partition("/")
    return mid if kind == "Medication" and _plain_id(mid) else None


def _plain_id(value: str) -> bool:
    # FHIR id: [A-Za-z0-9\-\.]{1,64}; anything else is not put into a query.
    return 0 < len(value) <= 64 and all(c.isalnum() or c in "-." for c in value) and value.isascii()


def _resources(payloads: Any) -> Iterator[dict[str, Any]]:
    for payload in payloads:
        if not isinstance(payload, dict):
            continue
        if payload.get("resourceType") == "Bundle":
            for entry in payload.get("entry") or ():
                if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                    yield entry["resource"]
        else:
            yield payload
