"""R6c: a HER2-targeted drug other than T-DXd drafted while the HER2 result in use is negative.

Trastuzumab (Herceptin: "HER2-overexpressing breast cancer"; select patients by an FDA-approved
companion diagnostic), pertuzumab (Perjeta), T-DM1 (Kadcyla), margetuximab, tucatinib
(Tukysa), neratinib (Nerlynx) and lapatinib (Tykerb) are indicated for HER2-positive breast
cancer only. T-DXd is also given for HER2-low and -ultralow disease: its orders are R15's.
"""

from __future__ import annotations

from cds.facts import PatientFacts
from cds.facts.orders import DraftOrders
from cds.parameters import Parameters
from cds.rules import ORDER_HOOKS, Decision, rule
from cds.rules.her2 import HER2_VALUESETS, her2_result_lines
from cds.said import say
from cds.terminology import MedClass

HER2_POSITIVE_ONLY: tuple[MedClass, ...] = (
    "HER2_MAB",
    "HER2_ADC_TDM1",
    "HER2_TKI_TUC",
    "HER2_TKI_NER",
    "HER2_TKI_LAP",
)


@rule(
    "R6c",
    hooks=ORDER_HOOKS,
    variants=("her2-negative", "her2-equivocal"),
    bindings=("drugs",),
    valuesets=HER2_VALUESETS,
    ingredients=(
        "trastuzumab",
        "pertuzumab",
        "margetuximab",
        "trastuzumab emtansine",
        "tucatinib",
        "neratinib",
        "lapatinib",
    ),
)
def r6c_her2_drug_for_her2_negative(
    f: PatientFacts, drafts: DraftOrders, p: Parameters
) -> list[Decision]:
    """A drug indicated for HER2-positive breast cancer only (each drug's US label), drafted
    while the HER2 result the service uses (F4: the metastatic specimen's when there is one) is
    negative → warning, with that result and any discordance named. Equivocal (IHC 2+ with no
    ISH read) → warning too: HER2-positive therapy waits for ISH (ASCO/CAP 2018). An unknown
    HER2 status is no negative finding: no card (R13 and R14 ask for the testing it needs)."""
    her2 = f.receptors.her2
    equivocal = her2 is not None and her2.status == "equivocal"
    if f.receptors.her2_positive is not False and not equivocal:
        return []
    ordered = drafts.with_class(*HER2_POSITIVE_ONLY)
    if not ordered:
        return []
    drugs = sorted(
        {d.ingredient for o in ordered for d in o.drugs if d.med_class in HER2_POSITIVE_ONLY}
    )
    return [
        Decision(
            variant="her2-equivocal" if equivocal else "her2-negative",
            indicator="warning",
            bindings={"drugs": " and ".join(drugs)},
            data=(
                *(say("draft-order-ref", ref=o.ref) for o in ordered),
                *her2_result_lines(f),
                *(say("receptor-discordance", finding=d) for d in f.receptors.discordances()),
            ),
            refs=(*(o.ref for o in ordered), *(her2.refs if her2 else ())),
        )
    ]
