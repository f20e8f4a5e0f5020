"""When an echocardiogram is due: one definition for the cards that order one (R6, R11, R15)."""

from __future__ import annotations

from cds.facts import PatientFacts
from cds.parameters import Parameters


def echo_due(f: PatientFacts, p: Parameters) -> bool:
    """No LVEF read within the labels' 3-month interval (`lvef_interval_days`)."""
    return not f.lvef.measured_within(f.as_of, p.lvef_interval_days)
