"""Draft orders of order-select / order-sign (context.draftOrders and selections) as facts."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from cds.facts.records import json_list, read_records
from cds.terminology import DrugMatch, Terminology

_MINUTES = re.compile(r"over\s+(?:at\s+least\s+|no\s+less\s+than\s+)?(\d+)\s*(?:min|minutes)\b")
_MG = re.compile(r"(\d+(?:\.\d+)?)\s*mg\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True, kw_only=True)
class DraftMedication:
    ref: str  # "MedicationRequest/id"
    drugs: tuple[DrugMatch, ...]
    dose_mg: float | None
    infusion_minutes: float | None
    selected: bool
    raw: dict[str, object]  # the draft as sent, for update suggestions

    def has(self, *ingredients: str) -> bool:
        return any(d.ingredient in ingredients for d in self.drugs)

    def has_class(self, *classes: str) -> bool:
        return any(d.med_class in classes for d in self.drugs)


@dataclass(frozen=True, slots=True, kw_only=True)
class DraftService:
    ref: str
    text: str
    selected: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class DraftOrders:
    medications: tuple[DraftMedication, ...] = ()
    services: tuple[DraftService, ...] = ()

    def focus(self) -> tuple[DraftMedication, ...]:
        """The orders being selected (order-select), or all drafts when no selection is given."""
        chosen = tuple(m for m in self.medications if m.selected)
        return chosen or self.medications

    def with_ingredient(self, *ingredients: str) -> tuple[DraftMedication, ...]:
        return tuple(m for m in self.focus() if m.has(*ingredients))

    def with_class(self, *classes: str) -> tuple[DraftMedication, ...]:
        return tuple(m for m in self.focus() if m.has_class(*classes))

    def any_with_class(self, *classes: str) -> tuple[DraftMedication, ...]:
        return tuple(m for m in self.medications if m.has_class(*classes))


NO_DRAFTS = DraftOrders()


def read_draft_orders(
    draft_orders: object, selections: Iterable[str], t: Terminology
) -> DraftOrders:
    selected = set(selections)
    records = read_records([draft_orders], t)
    raw_by_ref: dict[str, dict[str, object]] = {}
    if isinstance(draft_orders, dict):
        for entry in json_list(draft_orders.get("entry")):
            res = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(res, dict) and isinstance(res.get("id"), str):
                raw_by_ref[f"{res.get('resourceType')}/{res['id']}"] = res
    meds = []
    for r in records.medications:
        if r.resource_type != "MedicationRequest":
            continue
        texts = [d.text or "" for d in r.doses]
        mg = next((d.quantity.value for d in r.doses if d.quantity is not None), None)
        if mg is None:
            mg = next((float(m.group(1)) for x in texts if (m := _MG.search(x))), None)
        minutes = next(
            (float(m.group(1)) for x in texts if (m := _MINUTES.search(x.lower()))), None
        )
        meds.append(
            DraftMedication(
                ref=r.reference,
                drugs=t.medications.match(r.medication, t.rxnorm),
                dose_mg=mg,
                infusion_minutes=minutes,
                selected=r.reference in selected,
                raw=raw_by_ref.get(r.reference, {}),
            )
        )
    services = tuple(
        DraftService(
            ref=f"{a.resource_type}/{a.id}",
            text=a.code.all_text(),
            selected=f"{a.resource_type}/{a.id}" in selected,
        )
        for a in records.activities
        if a.resource_type in ("ServiceRequest", "Procedure")
    )
    return DraftOrders(medications=tuple(meds), services=services)
