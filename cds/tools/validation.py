"""Full R4B validation of what a client sends, for integrators: `cds validate FILE...`.

The service itself checks only the fields its rules read, of the resources they read (see
`cds.fhir.conformance`; `CDS_VALIDATION=full` adds R4B for those). An integrator wiring up an
EHR wants the whole picture: every resource of a CDS Hooks request (prefetch and draft orders),
of a Bundle or of a single resource, checked against the `fhir.resources` R4B model of its
type, narrative included.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError


class NotFhir(ValueError):
    """The document is none of the shapes `cds validate` reads."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One resource's verdict; `problems` is empty when it is valid."""

    where: str  # e.g. prefetch.conditions.entry[2]
    label: str  # Condition/abc
    problems: tuple[str, ...]


def resources_in(document: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(where, resource) for each resource of a request, a Bundle or a resource.

    A Bundle's entries are checked one by one, so a finding names the entry, not the Bundle.
    Raises NotFhir for any other JSON.
    """
    if not isinstance(document, Mapping) or not ("hook" in document or "resourceType" in document):
        raise NotFhir("not a CDS Hooks request, a Bundle or a FHIR resource")
    if "hook" in document and "resourceType" not in document:
        prefetch = document.get("prefetch")
        if isinstance(prefetch, Mapping):
            for key, value in prefetch.items():
                yield from _resources(f"prefetch.{key}", value)
        context = document.get("context")
        if isinstance(context, Mapping) and "draftOrders" in context:
            yield from _resources("context.draftOrders", context["draftOrders"])
        return
    yield from _resources("", document)


def _resources(where: str, value: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if not isinstance(value, Mapping):  # a null prefetch value: nothing was sent
        return
    if value.get("resourceType") == "Bundle":
        for i, entry in enumerate(value.get("entry") or []):
            resource = entry.get("resource") if isinstance(entry, Mapping) else None
            if isinstance(resource, Mapping):
                yield f"{where}.entry[{i}]".lstrip("."), resource
        return
    yield where or "(document)", value


def check(resource: Mapping[str, Any]) -> tuple[str, ...]:
    """Every R4B problem of one resource, as 'location: reason' (pydantic's input is left out)."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return ("resourceType: missing",)
    try:
        model = get_fhir_model_class(resource_type)
    except ValueError:
        return (f"resourceType: {resource_type!r} is not an R4B resource type",)
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        return tuple(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors()
        )
    return ()


def findings(document: Any) -> list[Finding]:
    out = []
    for where, resource in resources_in(document):
        label = f"{resource.get('resourceType', '?')}/{resource.get('id', '(no id)')}"
        out.append(Finding(where=where, label=label, problems=check(resource)))
    return out
