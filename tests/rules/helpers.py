"""What the rule tests share: facts and decisions for a patient built with the scenario
factories."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from cds.card_book import read_sentences
from cds.facts import PatientFacts, extract_facts
from cds.facts.orders import NO_DRAFTS, DraftOrders, read_draft_orders
from cds.parameters import Parameters
from cds.rules import Decision, evaluate
from cds.said import Said, Sentences
from cds.settings import REPO_CARDS
from cds.terminology import Terminology
from fixtures.factories import (
    AS_OF,
    Patient,
    service_request,
)

SENTENCES = Sentences(read_sentences(REPO_CARDS / "sentences.yaml"))


def text(line: Said | str) -> str:
    """A line of a card as the clinician reads it."""
    return SENTENCES.text(line)


def lines(d: Decision) -> list[str]:
    """Every line a decision puts on its card (data, missing, notes, card-text values)."""
    return [text(x) for x in (*d.data, *d.missing, *d.notes, *d.bindings.values())]


def facts(p: Patient, t: Terminology, params: Parameters) -> PatientFacts:
    return extract_facts([p.patient(), *p.resources], t, params, as_of=p.as_of)


def run(
    p: Patient,
    t: Terminology,
    params: Parameters,
    hook: str = "patient-view",
    drafts: list[dict[str, Any]] | None = None,
    selections: Sequence[str] = (),
) -> list[Decision]:
    d: DraftOrders = NO_DRAFTS
    if drafts is not None:
        bundle = {"resourceType": "Bundle", "entry": [{"resource": x} for x in drafts]}
        d = read_draft_orders(bundle, selections, t, patient_id=p.pid)
    out = evaluate(hook, facts(p, t, params), d, params)
    for decision in out:
        lines(decision)  # every decision a rule test makes renders: its values fit the templates
    return out


def concerns(decisions: list[Decision]) -> list[str]:
    return [d.concern for d in decisions]


def bone_patient(
    pid: str = "p",
    *,
    her2: str = "neg",
    age_birth: str = "1964-05-17",
    creatinine: float = 0.8,
    weight: float = 68.0,
    calcium: float = 9.4,
    dental: bool = True,
) -> Patient:
    p = Patient(pid, birth=age_birth)
    p.breast_cancer()
    p.bone_mets(100)
    p.her2(90, her2)
    p.er(90, "pos")
    p.pr(90, "pos")
    p.labs(creatinine=creatinine, weight=weight, calcium=calcium)
    if dental:
        p.dental_exam(30)
    return p


def creatinine_for(crcl: float, *, age: int = 62, weight: float = 68.0) -> float:
    """The creatinine that gives this Cockcroft-Gault CrCl for a woman of this age and weight."""
    return (140 - age) * weight * 0.85 / (72 * crcl)


def ordered(
    system: str,
    code: str,
    *,
    status: str = "active",
    days_ago: int | None = 12,
    rid: str = "sr-1",
) -> dict[str, Any]:
    """A ServiceRequest for patient p coded as a card's suggestion codes it, `days_ago`."""
    authored = (AS_OF - timedelta(days=days_ago)).isoformat() if days_ago is not None else None
    concept = {"coding": [{"system": system, "code": code}]}
    return service_request(rid, concept, status=status, subject="p", authored=authored)
