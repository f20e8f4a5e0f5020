"""What the fact tests share: facts from a patient built with the scenario factories."""

from __future__ import annotations

from typing import Any

from cds.facts import PatientFacts, extract_facts
from cds.fhir.records import ObservationRecord
from cds.fhir.values import Value
from cds.parameters import Parameters
from cds.terminology import Concept, Terminology
from fixtures.factories import (
    Patient,
)


def facts(p: Patient, t: Terminology, params: Parameters) -> PatientFacts:
    return extract_facts([p.patient(), *p.resources], t, params, as_of=p.as_of)


def metastatic(pid: str = "p", *, met_days: int = 100) -> Patient:
    p = Patient(pid)
    p.breast_cancer(2000)
    p.bone_mets(met_days)
    return p


def obs_with(**value: Any) -> ObservationRecord:
    return ObservationRecord(id="o", code=Concept(), effective=None, value=Value(**value))
