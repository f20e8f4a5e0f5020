"""R9 vertebral metastases and cord compression (rules/spine.py)."""

from __future__ import annotations

from typing import Any

import pytest

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


_RADIOTHERAPY = {
    "coding": [
        {
            "system": "http://snomed.info/sct",
            "code": "108290001",
            "display": "Radiation oncology AND/OR radiotherapy",
        }
    ]
}


class TestR9bTreatmentThatFollowed:
    """Only radiotherapy done, begun, or ordered and in force follows a cord compression as its
    treatment: a draft nobody signed, a request on hold, a course in preparation or one of
    unknown status leaves the emergency card (C9)."""

    @pytest.mark.parametrize(
        ("rtype", "status", "treated"),
        [
            ("ServiceRequest", "active", True),
            ("ServiceRequest", "completed", True),
            ("ServiceRequest", "draft", False),
            ("ServiceRequest", "on-hold", False),
            ("ServiceRequest", "unknown", False),
            ("ServiceRequest", "revoked", False),
            ("Procedure", "completed", True),
            ("Procedure", "in-progress", True),
            ("Procedure", "stopped", True),
            ("Procedure", "preparation", False),
            ("Procedure", "not-done", False),
            ("Procedure", "unknown", False),
            ("Encounter", "planned", True),
            ("Encounter", "finished", True),
            ("Encounter", "cancelled", False),
            ("Encounter", "unknown", False),
        ],
    )
    def test_radiotherapy_by_status(
        self, t: Terminology, params: Parameters, rtype: str, status: str, treated: bool
    ) -> None:
        p = bone_patient(dental=False)
        p.condition("http://hl7.org/fhir/sid/icd-10-cm", "G95.29", "Other cord compression", 1)
        today = p.day(0)
        record: dict[str, Any] = {"resourceType": rtype, "id": "rt", "status": status}
        if rtype == "ServiceRequest":
            record |= {"intent": "order", "code": _RADIOTHERAPY, "authoredOn": today}
        elif rtype == "Procedure":
            record |= {"code": _RADIOTHERAPY, "performedDateTime": today}
        else:
            record |= {
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                },
                "serviceType": _RADIOTHERAPY,
                "period": {"start": today},
            }
        p.add(record)
        assert ("R9b:cord-compression" not in concerns(run(p, t, params))) is treated
