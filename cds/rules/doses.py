"""Doses as the HER2 and bone-agent order rules read and say them: a dose's text, and whether a
dose by weight is one of another HER2 drug's (the labels: do not substitute one for the other).
Shared by R2b (`cds.rules.bma_orders`) and R6f-R6h (`cds.rules.her2_doses`)."""

from __future__ import annotations

from cds.parameters import DoseLimit, Parameters

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
