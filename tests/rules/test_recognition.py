"""Codes before text (clinical-logic §3c D11, D12): what a coded record is, its codes decide."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cds.facts.medications import stop_reason
from cds.fhir.records import MedicationRecord
from cds.parameters import Parameters
from cds.terminology import Coding, Concept, Terminology
from fixtures.factories import ICD10, SNOMED, TDXD, Patient
from tests.rules.helpers import concerns, facts, run, text


def _bone_mets_patient(pid: str = "p") -> Patient:
    p = Patient(pid)
    p.bone_mets(60, icd=True)
    p.labs()
    p.dental_exam(30)
    return p


class TestBreastCancerByCode:
    def test_skin_cancer_of_the_breast_is_not_breast_cancer(
        self, t: Terminology, params: Parameters
    ) -> None:
        """A squamous cell carcinoma of the skin of the breast (C44.521) whose text names the
        breast is classified by its code: no breast cancer, no bone-agent card for a
        lung-cancer patient with bone metastases."""
        p = _bone_mets_patient()
        p.condition(
            ICD10,
            "C44.521",
            "Squamous cell carcinoma of skin of breast",
            300,
            text="Squamous cell carcinoma of skin of right breast",
        )
        p.condition("", "", "", 400, text="Adenocarcinoma of lung")
        f = facts(p, t, params)
        assert not f.disease.breast_cancer.present
        assert run(p, t, params) == []

    def test_a_text_only_breast_cancer_is_still_read_from_its_text(
        self, t: Terminology, params: Parameters
    ) -> None:
        """Text patterns remain the last resort for a condition sent with no code at all."""
        p = _bone_mets_patient()
        p.condition("", "", "", 900, text="Invasive ductal carcinoma of left breast")
        assert facts(p, t, params).disease.breast_cancer.present

    def test_a_local_code_alone_does_not_stop_the_text(
        self, t: Terminology, params: Parameters
    ) -> None:
        """A code in a local system decides nothing: its text is read."""
        p = _bone_mets_patient()
        p.condition("urn:oid:1.2.3.4", "BC1", "Carcinoma of breast", 900)
        assert facts(p, t, params).disease.breast_cancer.present

    def test_personal_history_with_a_metastasis_is_recurrent_breast_cancer(
        self, t: Terminology, params: Parameters
    ) -> None:
        """Z85.3 with a distant metastasis counts as breast cancer (recurrence), in any status."""
        p = _bone_mets_patient()
        p.condition(
            ICD10,
            "Z85.3",
            "Personal history of malignant neoplasm of breast",
            2000,
            status="resolved",
        )
        f = facts(p, t, params)
        assert f.disease.breast_cancer.present
        assert "R1:start" in concerns(run(p, t, params))

    def test_personal_history_without_a_metastasis_is_not_breast_cancer(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = Patient("p")
        p.condition(ICD10, "Z85.3", "Personal history of malignant neoplasm of breast", 2000)
        assert not facts(p, t, params).disease.breast_cancer.present


class TestSafetyConditionsByCode:
    def _on_tdxd(self) -> Patient:
        p = _bone_mets_patient()
        p.breast_cancer(2000)
        p.her2(50, "pos")
        p.med("MedicationStatement", TDXD, status="active", start=200, dose="5.4 mg/kg q3w")
        return p

    def test_drug_induced_ild_coded_j70_2_on_tdxd_is_critical(
        self, t: Terminology, params: Parameters
    ) -> None:
        """D12: 'Acute drug-induced interstitial lung disorders' (J70.2) after T-DXd started
        is ILD on T-DXd: interrupt and evaluate, grade not recorded."""
        p = self._on_tdxd()
        p.condition(ICD10, "J70.2", "Acute drug-induced interstitial lung disorders", 20)
        decisions = run(p, t, params)
        assert "R12:ild-grade-unknown" in concerns(decisions)
        assert decisions[0].indicator == "critical"

    @pytest.mark.parametrize(
        ("status", "end", "card"),
        [("active", None, True), ("unknown", None, True), ("unknown", 100, False)],
    )
    def test_ild_on_tdxd_of_unknown_status_is_still_critical(
        self, t: Terminology, params: Parameters, status: str, end: int | None, card: bool
    ) -> None:
        """Whether she still receives T-DXd is unknown: the lung check is not dropped, and the
        card names the record; one ended by its dates is history."""
        p = _bone_mets_patient()
        p.breast_cancer(2000)
        p.her2(50, "pos")
        p.med("MedicationStatement", TDXD, status=status, start=200, end=end)
        p.condition(ICD10, "J70.2", "Acute drug-induced interstitial lung disorders", 20)
        decisions = [d for d in run(p, t, params) if d.rule == "R12"]
        assert bool(decisions) is card
        if card and status == "unknown":
            assert any("status 'unknown'" in text(x) for x in decisions[0].data)

    def test_pneumonitis_coded_in_snomed_is_read(self, t: Terminology, params: Parameters) -> None:
        p = self._on_tdxd()
        p.condition(SNOMED, "205237003", "Pneumonitis (disorder)", 20)
        assert "R12:ild-grade-unknown" in concerns(run(p, t, params))

    def test_radiation_pneumonitis_coded_elsewhere_is_not_drug_ild_by_text(
        self, t: Terminology, params: Parameters
    ) -> None:
        """J70.0 (radiation) is not in the ILD set: its text 'pneumonitis' does not pull it in."""
        p = self._on_tdxd()
        p.condition(
            ICD10,
            "J70.0",
            "Acute pulmonary manifestations due to radiation",
            20,
            text="Radiation pneumonitis",
        )
        assert not any(c.startswith("R12:ild") for c in concerns(run(p, t, params)))

    def test_mronj_coded_m87_180_is_recognised(self, t: Terminology, params: Parameters) -> None:
        """D5/D11: 'Osteonecrosis due to drugs, jaw' (M87.180) is MRONJ, though no text
        pattern of the old set matched its display."""
        p = _bone_mets_patient()
        p.breast_cancer(2000)
        p.condition(ICD10, "M87.180", "Osteonecrosis due to drugs, jaw", 30)
        assert facts(p, t, params).disease.mronj.present
        assert "R1:held-mronj" in concerns(run(p, t, params))

    def test_dialysis_coded_z99_2_is_recognised(self, t: Terminology, params: Parameters) -> None:
        p = _bone_mets_patient()
        p.condition(ICD10, "Z99.2", "Dependence on renal dialysis", 300)
        assert facts(p, t, params).on_dialysis


def test_grade_1_ild_card_gives_the_labels_28_day_rule(client: TestClient) -> None:
    """§3c D18: what a clinician reads on the grade-1 card is the Enhertu label's rule."""
    folder = Path(__file__).parents[2] / "fixtures/mbc-bone-patient-view/tdxd-pneumonitis-grade-1"
    body = json.loads((folder / "request.json").read_text())
    [card] = client.post("/cds-services/mbc-bone-patient-view", json=body).json()["cards"]
    assert card["indicator"] == "critical"
    assert "within 28 days of onset" in card["detail"]
    assert "one dose level lower" in card["detail"]
    assert card["source"]["url"].startswith("https://dailymed.nlm.nih.gov/")


def _sites(text: str, t: Terminology) -> set[str]:
    concept = Concept(text=text)
    sets = (
        "secondary-neoplasm",
        "bone-metastasis",
        "vertebral-metastasis",
        "brain-metastasis",
        "visceral-metastasis",
    )
    return {s.removesuffix("-metastasis") for s in sets if t[s].matches(concept)}


class TestMetastasesByText:
    """A metastasis sent as text only (a free-text problem, or coded only in a local system) is
    read from its words (D11); it used to be no metastasis at all, and no bone card."""

    @pytest.mark.parametrize(
        ("text", "sites"),
        [
            ("Bone metastases", {"secondary-neoplasm", "bone"}),
            ("Osseous metastatic disease", {"secondary-neoplasm", "bone"}),
            ("Secondary malignant neoplasm of bone", {"secondary-neoplasm", "bone"}),
            ("Metastatic breast cancer to bone", {"secondary-neoplasm", "bone"}),
            ("Breast cancer, metastatic to the liver", {"secondary-neoplasm", "visceral"}),
            ("Metastases to the thoracic spine", {"secondary-neoplasm", "bone", "vertebral"}),
            ("Spinal mets", {"secondary-neoplasm", "bone", "vertebral"}),
            ("Metastatic bone disease", {"secondary-neoplasm", "bone"}),
            ("Brain metastases", {"secondary-neoplasm", "brain"}),
            ("Pulmonary metastases", {"secondary-neoplasm", "visceral"}),
            ("Metastatic breast cancer", {"secondary-neoplasm"}),
            ("Stage IV breast cancer", {"secondary-neoplasm"}),
            ("Bone marrow metastasis", {"secondary-neoplasm"}),
            ("Metastasis to bone marrow", {"secondary-neoplasm"}),  # distant, not bone
            # Regional, negated, uncertain or someone else's: not a distant metastasis.
            ("Metastatic breast cancer to axillary lymph nodes", set()),
            ("No evidence of bone metastases", set()),
            ("Negative for metastatic disease", set()),
            ("Bone metastases, no evidence of cord compression", {"secondary-neoplasm", "bone"}),
            ("Suspected bone metastases", set()),
            ("Rule out brain metastases", set()),
            ("Family history of metastatic breast cancer", set()),
            ("No bone metastases on scan", set()),
            ("Bone scan", set()),
            ("Osteoporosis", set()),
        ],
    )
    def test_the_words_of_a_metastasis(self, t: Terminology, text: str, sites: set[str]) -> None:
        assert _sites(text, t) == sites

    @pytest.mark.parametrize(
        ("text", "breast", "history"),
        [
            ("Invasive ductal carcinoma of left breast", True, False),
            ("Squamous cell carcinoma of skin of right breast", False, False),
            ("Personal history of malignant neoplasm of breast", False, True),
            ("History of breast cancer", False, True),
            ("Family history of breast cancer", False, False),
        ],
    )
    def test_the_words_of_a_breast_cancer(
        self, t: Terminology, text: str, breast: bool, history: bool
    ) -> None:
        concept = Concept(text=text)
        got = (t["breast-cancer"].matches(concept), t["breast-cancer-history"].matches(concept))
        assert got == (breast, history)

    def test_a_coded_condition_is_read_by_its_code_not_its_words(self, t: Terminology) -> None:
        concept = Concept(codings=(Coding(SNOMED, "94381002"),), text="Bone metastases")
        assert not t["bone-metastasis"].matches(concept)
        assert t["visceral-metastasis"].matches(concept)

    def test_bone_metastases_written_as_text_start_a_bone_agent(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = Patient("text-mets")
        p.condition("", "", "", 400, text="Invasive ductal carcinoma of left breast")
        p.condition("", "", "", 60, text="Metastatic breast cancer to bone")
        p.labs()
        p.dental_exam(30)
        f = facts(p, t, params)
        assert (f.disease.metastatic.present, f.disease.bone.present) == (True, True)
        assert "R1:start" in concerns(run(p, t, params))


def _stopped_with(reason: Concept) -> MedicationRecord:
    return MedicationRecord(
        id="m",
        resource_type="MedicationRequest",
        status="stopped",
        intent="order",
        medication=Concept(),
        start=None,
        end=None,
        status_reasons=(reason,),
        doses=(),
    )


@pytest.mark.parametrize(
    ("reason", "read"),
    [
        # Words for 'not tolerated', sent as text only or under a local code: read.
        pytest.param(Concept(text="Not tolerated"), "toxicity", id="not-tolerated"),
        pytest.param(Concept(text="Patient intolerant"), "toxicity", id="intolerant"),
        pytest.param(Concept(text="Stopped due to toxicity"), "toxicity", id="toxicity"),
        pytest.param(Concept(text="Adverse drug reaction"), "toxicity", id="adverse-reaction"),
        pytest.param(Concept(text="side effects"), "toxicity", id="side-effects"),
        pytest.param(
            Concept(codings=(Coding("http://hospital.example.org/reasons", "TOX", "Toxicity"),)),
            "toxicity",
            id="local-code",
        ),
        # Their look-alikes: no toxicity, tolerated, a risk.
        pytest.param(Concept(text="No toxicity, course completed"), None, id="no-toxicity"),
        pytest.param(Concept(text="Well tolerated; course completed"), None, id="well-tolerated"),
        pytest.param(Concept(text="Stopped: risk of toxicity"), None, id="risk-of"),
        pytest.param(Concept(text="Not due to toxicity"), None, id="not-due-to"),
        # Progression by its code only: words for it are not read (a false progression would
        # give a next-line card while the line works).
        pytest.param(Concept(text="Disease progression"), None, id="progression-words"),
        pytest.param(
            Concept(codings=(Coding(SNOMED, "266721009", "No response to treatment"),)),
            "progression",
            id="progression-code",
        ),
        # A code of a known system decides: its words are not read.
        pytest.param(
            Concept(
                codings=(Coding(SNOMED, "105480006", "Refusal of treatment by patient"),),
                text="refused: side effects",
            ),
            "other",
            id="coded-refusal",
        ),
    ],
)
def test_a_stop_reason_not_tolerated_is_read_from_its_words(
    t: Terminology, reason: Concept, read: str | None
) -> None:
    assert stop_reason(_stopped_with(reason), t) == read
