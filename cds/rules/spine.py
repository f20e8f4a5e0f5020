"""R9: vertebral metastases and metastatic spinal cord compression (bone disease, not CNS)."""

from __future__ import annotations

from cds.facts import PatientFacts
from cds.facts.orders import DraftOrders
from cds.parameters import Parameters
from cds.rules import PATIENT_VIEW, Decision, Order, Proposal, rule
from cds.said import say

SPINE_VALUESETS = (
    "secondary-neoplasm",
    "bone-metastasis",
    "vertebral-metastasis",
    "vertebral-body-site",
    "cord-compression",
    "radiation-oncology",
    "spine-surgery",
)


@rule(
    "R9a",
    hooks=PATIENT_VIEW,
    variants=("vertebral",),
    valuesets=SPINE_VALUESETS,
    orders=("radiation-oncology-referral",),
    suggestions=("radiation-oncology",),
)
def r9a_vertebral(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """Vertebral metastases without cord compression → BMA, palliative RT if painful, spine review.

    ASTRO-2024: conventional RT 8 Gy/1, 20 Gy/5, 24 Gy/6 or 30 Gy/10 for symptomatic bone
    metastases; SBRT for selected patients. Seed 001 (instability → spine surgery evaluation).
    Vertebral metastases are bone metastases: no brain-metastasis treatment applies (§0.4).
    """
    d = f.disease
    if not d.metastatic.present or not d.vertebral.present or d.cord_compression.present:
        return []
    since = d.vertebral.since
    seen = [x for x in f.radiation_or_neurosurgery if since is None or x.when >= since]
    proposals = (
        ()
        if seen
        else (
            Proposal(key="radiation-oncology", actions=(Order(key="radiation-oncology-referral"),)),
        )
    )
    return [
        Decision(
            variant="vertebral",
            indicator="info",
            data=(
                say("vertebral-metastasis", when=since),
                *tuple(say("radiation-oncology-seen", when=x.when, ref=x.ref) for x in seen),
            ),
            refs=d.vertebral.refs,
            proposals=proposals,
        )
    ]


@rule(
    "R9b",
    hooks=PATIENT_VIEW,
    variants=("cord-compression",),
    valuesets=SPINE_VALUESETS,
    orders=("mri-whole-spine", "spine-surgery-referral", "radiation-oncology-referral"),
    suggestions=("mscc-workup",),
)
def r9b_cord_compression(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """Spinal cord compression with bone/vertebral metastases → emergency evaluation (critical).

    ESMO-MBC-2021: MRI is the modality of choice for suspected cord compression. ASTRO-2024:
    surgery + postoperative RT over RT alone; RT with dexamethasone over RT alone; evaluate spine
    stability before RT. MRI and spine-surgery codes are UNVERIFIED: sent as text. A cord
    compression that is resolved or abated, or that radiotherapy or spine surgery has followed,
    is being dealt with: no emergency card (C9).
    """
    d = f.disease
    if not d.metastatic.present or not d.cord_compression.present:
        return []
    since = d.cord_compression.since
    treated = [
        x
        for x in (*f.radiation_or_neurosurgery, *f.spine_surgeries)
        if since is None or x.when >= since
    ]
    if treated:
        return []
    return [
        Decision(
            variant="cord-compression",
            indicator="critical",
            data=(
                say("cord-compression", when=d.cord_compression.since),
                say("bone-metastasis", when=d.bone.since),
            ),
            refs=d.cord_compression.refs + d.bone.refs,
            proposals=(
                Proposal(
                    key="mscc-workup",
                    actions=(
                        Order(key="mri-whole-spine"),
                        Order(key="spine-surgery-referral"),
                        Order(key="radiation-oncology-referral"),
                    ),
                ),
            ),
        )
    ]
