"""R6b: capecitabine and renal function (clinical-logic §3c D8), at order time and for R6/R8b;
R6m: capecitabine drafted above its label dose.

Capecitabine label (2.4, 4.1): the starting dose is set by baseline Cockcroft-Gault CrCl - no
change above 50 mL/min, 75% of the starting dose at 30-50 mL/min, contraindicated below 30. An
eGFR is not creatinine clearance: without CG CrCl no capecitabine dose is pre-filled.
"""

from __future__ import annotations

from typing import Literal

from cds.facts import PatientFacts
from cds.facts.orders import DraftOrders
from cds.parameters import Parameters
from cds.rules import ORDER_HOOKS, Decision, DeleteDraft, Indicator, Proposal, rule
from cds.rules.oral_doses import ORAL_DOSE_BINDINGS, above_label
from cds.said import Said, say

CapecitabineRenal = Literal["full", "reduced", "contraindicated", "unknown"]
CAPECITABINE_PARAMETERS = (
    "capecitabine_crcl_contraindicated_below",
    "capecitabine_crcl_reduce_upto",
    "lab_freshness_days",
    "weight_freshness_days",
    "lab_read_ranges",
)
CAPECITABINE_VALUESETS = ("creatinine", "body-weight", "creatinine-clearance", "egfr")


def capecitabine_left_out(band: CapecitabineRenal, p: Parameters) -> Said:
    """Why a capecitabine regimen is not offered (the "Not suggested" lines of R6 and R8b)."""
    if band == "contraindicated":
        return say("capecitabine-contraindicated", below=p.capecitabine_crcl_contraindicated_below)
    return say("capecitabine-crcl-unknown")


def capecitabine_renal(f: PatientFacts, p: Parameters) -> CapecitabineRenal:
    """The capecitabine starting dose band for this patient's Cockcroft-Gault CrCl (D8)."""
    crcl = f.renal.crcl
    if f.on_dialysis:
        return "contraindicated"
    if crcl is None:
        return "unknown"
    if crcl < p.capecitabine_crcl_contraindicated_below:
        return "contraindicated"
    if crcl <= p.capecitabine_crcl_reduce_upto:
        return "reduced"
    return "full"


@rule(
    "R6b",
    hooks=ORDER_HOOKS,
    variants=("contraindicated", "reduce", "crcl-unknown"),
    valuesets=(*CAPECITABINE_VALUESETS, "dialysis"),
    ingredients=("capecitabine",),
    parameters=(*CAPECITABINE_PARAMETERS, "new_treatment_gap_days"),
    suggestions=("remove-draft",),
)
def r6b_capecitabine_order(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """A capecitabine draft checked against Cockcroft-Gault CrCl (capecitabine label; §3c D8).

    Below 30 mL/min (or dialysis) → critical, contraindicated. 30-50 mL/min on a course's start →
    warning, start at 75% of the starting dose (the label adjusts the starting dose). CrCl that
    cannot be calculated → warning: the dose cannot be checked, and what is missing is named.
    """
    out: list[Decision] = []
    # A course begun after a long gap (adjuvant capecitabine years before) starts again: its
    # starting dose is the label's to adjust (read as the same course, no card came).
    first = f.meds.begins_treatment("capecitabine", p.new_treatment_gap_days, on=f.as_of)
    for draft in drafts.with_ingredient("capecitabine"):
        band = capecitabine_renal(f, p)
        data = (say("draft-order", drug="capecitabine", ref=draft.ref), _renal(f))
        variant: str
        indicator: Indicator
        proposals: tuple[Proposal, ...] = ()
        if band == "contraindicated":
            variant, indicator = "contraindicated", "critical"
            proposals = (Proposal(key="remove-draft", actions=(DeleteDraft(draft_ref=draft.ref),)),)
        elif band == "reduced" and first:
            variant, indicator = "reduce", "warning"
        elif band == "unknown":
            variant, indicator = "crcl-unknown", "warning"
        else:
            continue
        out.append(
            Decision(
                variant=variant,
                indicator=indicator,
                data=data,
                missing=f.renal.missing if band == "unknown" else (),
                refs=(draft.ref, *f.renal.refs),
                proposals=proposals,
            )
        )
    return out


def _renal(f: PatientFacts) -> Said:
    r = f.renal
    if f.on_dialysis:
        renal = say("dialysis-recorded-short")
    elif r.crcl is None:
        renal = say("crcl-not-calculable", missing="", egfr="")
    else:
        renal = say("crcl-cockcroft-gault", crcl=r.crcl)
    return say("renal-function", renal=renal)


@rule(
    "R6m",
    hooks=ORDER_HOOKS,
    variants=("above-label", "above-label-flat", "unit-error", "dose-unread"),
    bindings=ORAL_DOSE_BINDINGS,
    ingredients=("capecitabine", "neratinib", "tucatinib", "lapatinib"),
    parameters=("capecitabine_dose", "unit_error_factor", "capecitabine_max_bsa_m2"),
)
def r6m_capecitabine_above_its_dose(
    f: PatientFacts, drafts: DraftOrders, p: Parameters
) -> list[Decision]:
    """Capecitabine drafted above its label dose per m², a dose at a time or over a day →
    warning; at least `unit_error_factor` times it → critical (a unit error). Xeloda 2.2: 1,250
    mg/m² twice daily (2,500 mg/m² a day: written as each dose, the day's total doubles it);
    with neratinib, tucatinib or lapatinib drafted or possibly in use, their labels' lower
    doses (750 and 1,000 mg/m² twice daily). A flat dose in mg is judged against the label dose
    at `capecitabine_max_bsa_m2` (the patient's body surface area is not read): above it, it is
    above the label for nearly every adult ('above-label-flat'). A day's total written alone
    ("2,000 mg/m2/day", the Tykerb label's way) is judged against the label's day. A dose given
    but not read (no mass unit, tablets of no stated strength, a range) → information with the
    dose that applies. The renal reduction is R6b's."""
    return above_label(
        f, drafts, p.capecitabine_dose, p.unit_error_factor, p.capecitabine_max_bsa_m2
    )
