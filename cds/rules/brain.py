"""R8: brain metastases in HER2-positive disease - local therapy first (R8a), and the
HER2CLIMB regimen for intracranial progression on a line that holds elsewhere (R8b)."""

from __future__ import annotations

from cds.facts import PatientFacts
from cds.facts.orders import DraftOrders
from cds.parameters import Parameters
from cds.rules import PATIENT_VIEW, Decision, NoteKey, Order, Proposal, rule
from cds.rules.bone import renal_line
from cds.rules.chemo_orders import capecitabine_renal
from cds.rules.echo import echo_lines
from cds.rules.her2 import (
    HER2_INGREDIENTS,
    HER2_VALUESETS,
    LINE_PARAMETERS,
    TUCATINIB,
    capecitabine_reduced,
    cardiac_notes,
    eligible,
    excluded_agents,
    regimen_proposals,
    therapy_data,
)
from cds.said import say


@rule(
    "R8a",
    hooks=PATIENT_VIEW,
    variants=("local-therapy",),
    valuesets=(*HER2_VALUESETS, "radiation-oncology"),
    orders=("radiation-oncology-referral", "neurosurgery-referral"),
    suggestions=("brain-local-therapy",),
    notes=("leptomeningeal",),
)
def r8a_brain_local_therapy(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """HER2-positive brain metastases with no radiation oncology or neurosurgery since → refer.

    ASCO-HER2-BM-2022: local therapy (SRS, surgery or WBRT) chosen by number, size and symptoms.
    The neurosurgery referral code is UNVERIFIED: sent as text.
    """
    if not eligible(f) or not f.disease.brain.present:
        return []
    since = f.disease.brain.since
    done = [d for d in f.radiation_or_neurosurgery if since is None or d.when >= since]
    if done:
        return []
    return [
        Decision(
            variant="local-therapy",
            indicator="warning",
            data=(say("brain-metastasis", when=since),),
            missing=(say("missing-brain-local-therapy"),),
            refs=f.disease.brain.refs,
            note_keys=(NoteKey("leptomeningeal"),) if f.disease.leptomeningeal.present else (),
            proposals=(
                Proposal(
                    key="brain-local-therapy",
                    actions=(
                        Order(key="radiation-oncology-referral"),
                        Order(key="neurosurgery-referral"),
                    ),
                ),
            ),
        )
    ]


@rule(
    "R8b",
    hooks=PATIENT_VIEW,
    variants=("tucatinib", "tucatinib-not-offered"),
    valuesets=(
        *HER2_VALUESETS,
        "lvef",
        "heart-failure",
        "interstitial-lung-disease",
        "echocardiogram",
    ),
    ingredients=HER2_INGREDIENTS,
    parameters=(*LINE_PARAMETERS, "lvef_interval_days", "lvef_lln_percent"),
    orders=("echocardiogram",),
    regimens=(TUCATINIB,),
    notes=("cardiac-case-by-case", "lvef-due", "lvef-due-echo-ordered", "capecitabine-renal"),
)
def r8b_brain_systemic(f: PatientFacts, drafts: DraftOrders, p: Parameters) -> list[Decision]:
    """A new brain metastasis on a metastatic HER2 line without systemic progression, no
    tucatinib yet → the HER2CLIMB regimen may be offered.

    ASCO-HER2-BM-2022 Rec 7.1 (weak): tucatinib + trastuzumab + capecitabine may be offered for
    brain metastases without symptomatic mass effect after progression on ≥1 HER2 therapy for
    metastatic disease; Rec 8.2 qualifying statement (T-DXd also second line). Only for
    intracranial progression on the current line (C5): a patient stable on therapy with known,
    treated brain metastases is not offered a change at every chart open, and with systemic
    progression R6 lists the regimen instead. Not first line without metastatic HER2 therapy
    (tucatinib label; R8c, D16). When capecitabine's dose cannot be worked out because the
    Cockcroft-Gault CrCl cannot be calculated (D8), the card still comes, without the regimen,
    and says why: a missing creatinine or weight never makes the option vanish unsaid.
    """
    cns = f.lines.cns_progression
    if not eligible(f) or not f.disease.brain.present or cns is None:
        return []
    if f.lines.progression == "high" or not any(line.anchor for line in f.lines.lines):
        return []
    if f.meds.ever("HER2_TKI_TUC") or "tucatinib" in excluded_agents(f):
        return []
    if f.lines.metastatic_her2_regimens < p.regimens[TUCATINIB].min_prior_her2_regimens:
        return []  # D16: the label gates the option, so on first line there is no card
    proposals, left_out = regimen_proposals(f, p, (TUCATINIB,))
    band = capecitabine_renal(f, p)
    if not proposals and band != "unknown":
        return []  # capecitabine contraindicated, or a partner excluded: no option to offer
    renal = (renal_line(f),) if band != "full" else ()  # as R6: it shaped the option
    return [
        Decision(
            variant="tucatinib" if proposals else "tucatinib-not-offered",
            indicator="info",
            data=(
                say("new-brain-metastasis-stable", when=cns.onset, ref=cns.status_ref)
                if cns.status_ref
                else say("new-brain-metastasis", when=cns.onset),
                *therapy_data(f),
                *renal,
                *echo_lines(f, p, drafts),
            ),
            notes=tuple(say("not-suggested", regimen=x) for x in left_out),
            refs=(cns.ref, *((cns.status_ref,) if cns.status_ref else ())),
            note_keys=cardiac_notes(f, p)
            + ((NoteKey("capecitabine-renal"),) if capecitabine_reduced(proposals) else ()),
            proposals=proposals,
        )
    ]
