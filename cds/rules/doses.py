"""Doses as the HER2 and bone-agent order rules read and say them: a dose's text, and whether a
dose by weight is one of another HER2 drug's (the labels: do not substitute one for the other).
Shared by R2b (`cds.rules.bma_orders`) and R6f-R6h (`cds.rules.her2_doses`), as is an order's
interval in words."""

from __future__ import annotations

from cds.facts.orders import DraftMedication
from cds.parameters import DoseLimit, Parameters
from cds.said import Said, say

# A dose written by weight is a label's dose level within this much (5.4 mg/kg, 4.4 mg/kg).
SAME_LEVEL = 0.05


def mg_text(value: float) -> str:
    return f"{value:g} mg"


def mg_per_kg_text(value: float) -> str:
    return f"{value:g} mg/kg"


def label_with_level(p: Parameters, dose: float, *, but: DoseLimit | None = None) -> str | None:
    """The label (Enhertu, Kadcyla, Herceptin) one of whose doses by weight a dose is, other
    than `but`'s: another drug's dose written into this drug's order."""
    for x in p.dose_limits.values():
        if x is not but and any(abs(dose - y) <= SAME_LEVEL for y in x.dose_levels_mg_per_kg):
            return x.label
    if any(abs(dose - y) <= SAME_LEVEL for y in p.trastuzumab_doses_mg_per_kg):
        return p.reloading["trastuzumab"].label
    return None


def unread_dose(draft: DraftMedication) -> Said | None:
    """Why a dose given was read in no unit a check uses (a volume, a count of vials, a range),
    or None: the checks of an antibody's fixed or by-weight dose name it rather than pass over
    it."""
    if draft.dose_mg is None and draft.dose_mg_per_kg is None and draft.dose_mg_per_m2 is None:
        return draft.dose_note
    return None


def interval_words(weeks: float) -> Said:
    days = round(weeks * 7)
    if weeks * 7 < 1:
        return say("interval-more-than-daily")
    if days == 1:
        return say("interval-daily")
    if days == 7:
        return say("interval-week")
    if days % 7 == 0:
        return say("interval-weeks", weeks=days // 7)
    return say("interval-days", days=days)
