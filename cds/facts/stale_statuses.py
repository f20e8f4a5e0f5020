"""F5 "statuses are often stale": an order or statement left 'active' for a medicine given in
clinic, long after its last charted dose, read as ended with that dose."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cds.facts.medications import Exposure


def set_aside_stale(
    exposures: list[Exposure], as_of: date, gap_days: int, dose_charted: Collection[str]
) -> list[Exposure]:
    """An order or statement still 'active' for a medicine given in clinic, whose doses the
    chart records as given since it began - none in the last `gap_days` - is read as ended with
    its last charted dose, not as in use: statuses are often left open (F5), and the doses are
    what was done. An adjuvant trastuzumab order never closed made the metastatic patient's
    first line a second one, its own adjuvant course 'line 1, ongoing'. A record on hold is
    taken at its word; medicines taken at home (whose doses a ward charts only during a stay)
    are never set aside."""
    last_dose: dict[str, tuple[date, Exposure]] = {}
    for e in exposures:
        if (
            e.record.resource_type == "MedicationAdministration"
            and e.ingredient in dose_charted
            and e.given
            and e.record.status not in ("stopped", "not-done")
            and (last := e.last) is not None
            and (e.ingredient not in last_dose or last > last_dose[e.ingredient][0])
        ):
            last_dose[e.ingredient] = (last, e)
    if not last_dose:
        return exposures
    # Only an active record of a charted medicine is looked at further (a chart holds hundreds).
    return [
        _stale(e, *dose, as_of, gap_days)
        if e.active
        and e.record.status == "active"
        and e.record.resource_type != "MedicationAdministration"
        and (dose := last_dose.get(e.ingredient)) is not None
        else e
        for e in exposures
    ]


def _stale(e: Exposure, on: date, dose: Exposure, as_of: date, gap_days: int) -> Exposure:
    """`e`, an active order or statement, set aside for its agent's last charted `dose` (given
    `on`) when `set_aside_stale` says so."""
    if e.start is None or on < e.start or (as_of - on).days <= gap_days:
        return e
    return replace(e, active=False, last_dose=dose)
