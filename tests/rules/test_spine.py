"""R9 vertebral metastases and cord compression (rules/spine.py)."""

from __future__ import annotations

from cds.parameters import Parameters
from cds.terminology import Terminology
from fixtures.factories import (
    XGEVA,
)
from tests.rules.helpers import bone_patient, concerns, creatinine_for, facts, run  # noqa: F401


class TestR9Spine:
    def test_vertebral_is_bone_not_cns(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient()
        p.med("MedicationStatement", XGEVA, status="active", start=20)
        p.med("MedicationStatement", "calcium carbonate", status="active", start=20)
        p.condition("http://snomed.info/sct", "94602001", "vertebral", 50)
        d = run(p, t, params)
        assert concerns(d) == ["R9a:vertebral"]
        assert not [x for x in d if x.rule.startswith("R8")]

    def test_cord_compression_is_critical_and_first(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient(dental=False)
        p.condition("http://hl7.org/fhir/sid/icd-10-cm", "G95.29", "Other cord compression", 1)
        d = run(p, t, params)
        assert d[0].concern == "R9b:cord-compression"
        assert d[0].indicator == "critical"
