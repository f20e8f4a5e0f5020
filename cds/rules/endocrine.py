"""R17: endocrine therapy or a CDK4/6 inhibitor ordered for hormone receptor-negative disease.

ASCO/CAP 2020 (Allison et al.): ER testing by immunohistochemistry is the standard for
predicting which patients may benefit from endocrine therapy; a tumour with ER in under 1% of
nuclei is ER-negative, 1-10% 'ER low positive' (a positive result here), and PgR is mainly
prognostic in ER-positive disease. The Faslodex label gives fulvestrant, alone or with
ribociclib, palbociclib or abemaciclib, for hormone receptor-positive advanced breast cancer. An
aromatase inhibitor, fulvestrant, tamoxifen or a CDK4/6 inhibitor drafted when the ER and PR
results are all negative is a wrong patient, a wrong result or a wrong drug.
"""

from __future__ import annotations

from cds.facts import PatientFacts
from cds.facts.marker_results import MarkerResult
from cds.facts.orders import DraftOrders
from cds.parameters import Parameters
from cds.rules import ORDER_HOOKS, PATIENT_VIEW, Decision, rule
from cds.rules.in_use import ACTIVE_PARAMETERS, in_use_lines
from cds.rules.receptors import MARKER_PARAMETERS, MARKER_VALUESETS, marker_line
from cds.said import say
from cds.terminology import MedClass

ENDOCRINE: tuple[MedClass, ...] = ("ENDOCRINE_AI", "ENDOCRINE_SERD", "ENDOCRINE_SERM")
# Endocrine therapy, and the CDK4/6 inhibitors given with it.
HR_THERAPY: tuple[MedClass, ...] = (*ENDOCRINE, "CDK46")
HR_THERAPY_DRUGS = (
    "letrozole",
    "anastrozole",
    "exemestane",
    "fulvestrant",
    "tamoxifen",
    "palbociclib",
    "ribociclib",
    "abemaciclib",
)


@rule(
    "R17",
    hooks=(*PATIENT_VIEW, *ORDER_HOOKS),
    variants=("hr-negative", "hr-negative-in-use"),
    bindings=("drugs",),
    valuesets=MARKER_VALUESETS,
    ingredients=HR_THERAPY_DRUGS,
    parameters=(*MARKER_PARAMETERS, *ACTIVE_PARAMETERS),
)
def r17_endocrine_for_hr_negative(
    f: PatientFacts, drafts: DraftOrders, p: Parameters
) -> list[Decision]:
    """Endocrine therapy or a CDK4/6 inhibitor drafted while ER and PR are both negative (F4's
    results in use) and no ER or PR result on record, of any specimen or date, is positive →
    warning (ASCO/CAP 2020; Faslodex and Ibrance labels).

    Quiet when either status is unknown (PR not tested: an ER-negative, PR-positive tumour may
    still respond; missing data is never a negative finding) and when any result was positive
    (a primary tumour positive where the metastasis is negative, or an earlier positive result):
    with discordant results the choice is the oncologist's, and R13 shows the discordance. At
    chart open the same for what the medication list holds (possibly in use, F5): ordered
    before the check, or elsewhere."""
    r = f.receptors
    if r.hr_positive is not False or r.hr_ever_positive:
        return []
    results = _distinct(r.er, r.pr, r.er_primary, r.pr_primary)
    if drafts.ordering:
        orders = drafts.with_class(*HR_THERAPY)
        if not orders:
            return []
        variant = "hr-negative"
        drugs = {d.ingredient for o in orders for d in o.drugs if d.med_class in HR_THERAPY}
        lines = tuple(say("draft-order-ref", ref=o.ref) for o in orders)
        refs = tuple(o.ref for o in orders)
    else:
        in_use = f.meds.possibly_in_use(*HR_THERAPY)
        if not in_use:
            return []
        variant = "hr-negative-in-use"
        drugs = {e.ingredient for e in in_use}
        lines = in_use_lines(f.meds, in_use)
        refs = tuple(e.ref for e in in_use)
    return [
        Decision(
            variant=variant,
            indicator="warning",
            bindings={"drugs": " and ".join(sorted(drugs))},
            data=(*lines, *(marker_line(m) for m in results)),
            refs=(*refs, *dict.fromkeys(ref for m in results for ref in m.refs)),
        )
    ]


def _distinct(*results: MarkerResult | None) -> list[MarkerResult]:
    """The results in use and the primary tumour's, each once (they are often the same)."""
    out: list[MarkerResult] = []
    for m in results:
        if m is not None and all(m is not o for o in out):
            out.append(m)
    return out
