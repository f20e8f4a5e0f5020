"""Patient facts F1-F9 and the ASCO/CAP HER2 algorithm (clinical-logic §2, §5)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds.app import create_app
from cds.facts import PatientFacts, extract_facts
from cds.facts.conformance import Checker
from cds.facts.fhir_json import concept, date_by_pattern, fhir_date
from cds.facts.labs import cockcroft_gault
from cds.facts.reading import read_records
from cds.facts.receptors import ihc_score, interpret_her2, ish_group
from cds.facts.records import ObservationRecord, Value
from cds.parameters import Parameters
from cds.services import load_knowledge
from cds.settings import REPO_CARDS, Settings
from cds.terminology import Concept, Terminology
from fixtures.build_scenarios import (
    DOCE,
    PERT,
    PROGRESSION,
    PROLIA,
    SNOMED,
    STABLE,
    TDXD,
    TOXICITY,
    TRAS,
    WORSENED,
    XGEVA,
    ZOL4,
    Patient,
)
from tests.conftest import AS_OF, SHARED, needs_shared


def facts(p: Patient, t: Terminology, params: Parameters) -> PatientFacts:
    return extract_facts([p.patient(), *p.resources], t, params, as_of=p.as_of)


def metastatic(pid: str = "p", *, met_days: int = 100) -> Patient:
    p = Patient(pid)
    p.breast_cancer(2000)
    p.bone_mets(met_days)
    return p


class TestHer2Table:
    """Every row of the §5 interpretation table."""

    @pytest.mark.parametrize(
        ("ihc", "group", "status", "category", "reflex", "needs_ihc"),
        [
            pytest.param(3, None, "positive", "positive", False, False, id="ihc3-no-ish"),
            # C7: every IHC score against every ISH group (ASCO/CAP 2018, affirmed 2023).
            *[
                pytest.param(3, g, "positive", "positive", False, False, id=f"ihc3-group{g}")
                for g in (1, 2, 3, 4, 5)
            ],
            pytest.param(2, None, "equivocal", "equivocal", True, False, id="ihc2-no-ish"),
            pytest.param(2, 1, "positive", "positive", False, False, id="ihc2-group1"),
            pytest.param(2, 2, "negative", "low", False, False, id="ihc2-group2-low"),
            pytest.param(2, 3, "positive", "positive", False, False, id="ihc2-group3-positive"),
            pytest.param(2, 4, "negative", "low", False, False, id="ihc2-group4-low"),
            pytest.param(2, 5, "negative", "low", False, False, id="ihc2-group5-low"),
            pytest.param(1, None, "negative", "low", False, False, id="ihc1-low"),
            pytest.param(1, 1, "positive", "positive", False, False, id="ihc1-group1-positive"),
            *[
                pytest.param(1, g, "negative", "low", False, False, id=f"ihc1-group{g}")
                for g in (2, 3, 4, 5)
            ],
            pytest.param(0, None, "negative", "0", False, False, id="ihc0"),
            pytest.param(0, 1, "positive", "positive", False, False, id="ihc0-group1-positive"),
            *[
                pytest.param(0, g, "negative", "0", False, False, id=f"ihc0-group{g}")
                for g in (2, 3, 4, 5)
            ],
            pytest.param(None, 1, "positive", "positive", False, False, id="ish-only-group1"),
            pytest.param(None, 5, "negative", "unknown", False, False, id="ish-only-group5"),
            pytest.param(None, 2, "unknown", "unknown", False, True, id="ish-only-group2"),
            pytest.param(None, 3, "unknown", "unknown", False, True, id="ish-only-group3"),
            pytest.param(None, 4, "unknown", "unknown", False, True, id="ish-only-group4"),
            pytest.param(None, None, "unknown", "unknown", False, False, id="nothing"),
        ],
    )
    def test_derived(
        self,
        ihc: int | None,
        group: int | None,
        status: str,
        category: str,
        reflex: bool,
        needs_ihc: bool,
    ) -> None:
        got = interpret_her2(
            final=None, ihc=ihc, ihc_status=None, ish_qualitative=None, group=group
        )
        assert got == (status, category, True, reflex, needs_ihc)

    def test_reported_interpretation_wins_and_keeps_the_ihc_score(self) -> None:
        got = interpret_her2(
            final="negative", ihc=1, ihc_status=None, ish_qualitative=None, group=None
        )
        assert got == ("negative", "low", False, False, False)

    def test_ultralow_needs_membrane_staining(self) -> None:
        faint = interpret_her2(
            final=None,
            ihc=0,
            ihc_status=None,
            ish_qualitative=None,
            group=None,
            ihc_text="0 - faint incomplete membrane staining in 5% of cells",
        )
        none = interpret_her2(
            final=None,
            ihc=0,
            ihc_status=None,
            ish_qualitative=None,
            group=None,
            ihc_text="0, no staining",
        )
        assert faint[1] == "ultralow"
        assert none[1] == "0"

    def test_qualitative_ish_amplified(self) -> None:
        assert (
            interpret_her2(
                final=None, ihc=None, ihc_status=None, ish_qualitative="positive", group=None
            )[0]
            == "positive"
        )


class TestHer2LowCategory:
    """R15: the IHC score read precisely, from every form a result arrives in."""

    @pytest.mark.parametrize(
        ("value", "category"),
        [
            pytest.param({"valueString": "0"}, "0", id="string-0"),
            pytest.param({"valueString": "0, no membrane staining"}, "0", id="0-no-staining"),
            pytest.param(
                {"valueString": "0 with faint incomplete membrane staining in ≤10% of cells"},
                "ultralow",
                id="0-faint-ultralow",
            ),
            pytest.param({"valueString": "IHC 0 (ultralow)"}, "ultralow", id="0-ultralow-word"),
            pytest.param({"valueString": "1+"}, "low", id="string-1+"),
            pytest.param({"valueInteger": 1}, "low", id="integer-1"),
            pytest.param({"valueCodeableConcept": {"text": "Score 1+"}}, "low", id="text-1+"),
            pytest.param({"note": [{"text": "HER2 IHC 1+"}]}, "low", id="note-1+"),
            pytest.param(
                {"component": [{"code": {"text": "score"}, "valueString": "1+"}]},
                "low",
                id="component-1+",
            ),
            pytest.param({"valueString": "3+"}, "positive", id="string-3+"),
        ],
    )
    def test_category_with_a_negative_final_result(
        self, t: Terminology, params: Parameters, value: dict[str, Any], category: str
    ) -> None:
        p = metastatic()
        if category != "positive":
            p.her2(90, "neg")
        p.obs("85319-2", 90, **value)
        her2 = facts(p, t, params).receptors.her2
        assert her2 is not None
        assert her2.her2_category == category

    def test_ihc_2_plus_ish_not_amplified_is_low(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.her2_ihc(90, "2+")
        p.obs("49683-6", 90, valueQuantity={"value": 1.3, "unit": "{ratio}"})
        p.obs("74860-8", 90, valueQuantity={"value": 2.5, "unit": "{copies}/{nucleus}"})
        her2 = facts(p, t, params).receptors.her2
        assert her2 is not None
        assert (her2.status, her2.her2_category) == ("negative", "low")

    def test_only_negative_known_is_unknown_category(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        p.her2(90, "neg")
        her2 = facts(p, t, params).receptors.her2
        assert her2 is not None
        assert (her2.status, her2.her2_category) == ("negative", "unknown")


class TestSystemicLines:
    """R15: chemotherapy and endocrine lines in the metastatic setting."""

    def test_cdk46_with_endocrine_is_one_endocrine_line(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic(met_days=600)
        p.med("MedicationStatement", ("72965", "Letrozole"), status="active", start=500)
        p.med("MedicationStatement", ("1601380", "palbociclib"), status="active", start=495)
        s = facts(p, t, params).systemic
        assert (s.endocrine, s.chemotherapy) == (1, 0)

    def test_repeated_doses_of_the_same_drug_are_one_line(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic(met_days=600)
        for start in (300, 250, 200):
            p.med(
                "MedicationAdministration", ("56946", "PACLitaxel"), status="completed", start=start
            )
        assert facts(p, t, params).systemic.chemotherapy == 1

    @pytest.mark.parametrize(
        ("gap_days", "within"),
        [pytest.param(183, True, id="6-months"), pytest.param(184, False, id="6-months+1")],
    )
    def test_adjuvant_chemotherapy_window(
        self, t: Terminology, params: Parameters, gap_days: int, within: bool
    ) -> None:
        p = metastatic(met_days=100)
        p.med(
            "MedicationStatement",
            ("56946", "PACLitaxel"),
            status="completed",
            start=gap_days + 200,
            end=100 + gap_days,
        )
        s = facts(p, t, params).systemic
        assert s.adjuvant_chemo_within_6_months is within
        assert s.chemotherapy == 0


class TestIshGroups:
    @pytest.mark.parametrize(
        ("ratio", "copies", "group"),
        [
            pytest.param(2.0, 4.0, 1, id="ratio-2.0-copies-4.0"),
            pytest.param(1.99, 4.0, 4, id="ratio-1.99-copies-4.0"),
            pytest.param(2.0, 3.99, 2, id="ratio-2.0-copies-3.99"),
            pytest.param(1.99, 3.99, 5, id="ratio-1.99-copies-3.99"),
            pytest.param(1.5, 5.99, 4, id="copies-5.99-group4"),
            pytest.param(1.5, 6.0, 3, id="copies-6.0-group3"),
            pytest.param(None, 6.0, None, id="ratio-missing"),
            pytest.param(2.1, None, None, id="copies-missing"),
        ],
    )
    def test_group(self, ratio: float | None, copies: float | None, group: int | None) -> None:
        assert ish_group(ratio, copies) == group


def obs_with(**value: Any) -> ObservationRecord:
    return ObservationRecord(id="o", code=Concept(), effective=None, value=Value(**value))


class TestIhcScoreParsing:
    @pytest.mark.parametrize(
        ("value", "score"),
        [
            pytest.param({"string": "3+"}, 3, id="plain-3+"),
            pytest.param({"string": "Equivocal (Score 2+)"}, 2, id="cap-2+"),
            pytest.param({"string": "HER2 IHC 1+"}, 1, id="her2-prefix-not-2"),
            pytest.param({"string": "Negative (Score 0)"}, 0, id="score-0"),
            pytest.param({"integer": 2}, 2, id="integer"),
            pytest.param({"concept": Concept(text="2 +")}, 2, id="coded-text"),
            pytest.param({"string": "staining in 10% of cells"}, None, id="percent-not-score"),
            pytest.param({"string": "ratio 2.0"}, None, id="decimal-not-score"),
            pytest.param({"string": "positive"}, None, id="no-score"),
        ],
    )
    def test_score(self, value: dict[str, Any], score: int | None) -> None:
        assert ihc_score(obs_with(**value)) == score

    def test_score_from_a_note(self) -> None:
        obs = ObservationRecord(
            id="o", code=Concept(), effective=None, value=Value(), notes=("IHC score 3+",)
        )
        assert ihc_score(obs) == 3


class TestReceptors:
    def test_metastatic_result_is_used_and_discordance_reported(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        p.her2(1500, "neg")
        p.her2(90, "pos")
        f = facts(p, t, params)
        assert f.receptors.her2 is not None
        assert f.receptors.her2.status == "positive"
        assert f.receptors.her2.specimen_site == "metastatic"
        assert f.receptors.her2_positive is True
        assert "HER2 negative on the primary" in f.receptors.discordances()[0]

    def test_primary_only_is_marked_primary(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.her2(1500, "pos")
        f = facts(p, t, params)
        assert f.receptors.her2 is not None
        assert f.receptors.her2.specimen_site == "primary"
        assert not f.receptors.has_metastatic_specimen

    def test_specimen_collection_date_wins_over_observation_date(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic(met_days=100)
        o = p.obs(
            "48676-1",
            5,
            valueCodeableConcept={"coding": [{"system": "http://loinc.org", "code": "LA6576-8"}]},
        )
        o["specimen"] = {"reference": "Specimen/s1"}
        p.resources.append(
            {
                "resourceType": "Specimen",
                "id": "s1",
                "collection": {"collectedDateTime": p.day(1500)},
            }
        )
        f = facts(p, t, params)
        assert f.receptors.her2 is not None
        assert f.receptors.her2.specimen_site == "primary"

    @pytest.mark.parametrize(
        ("percent", "status", "low"),
        [
            pytest.param(0.5, "negative", False, id="0.5%-negative"),
            pytest.param(1.0, "positive", True, id="1%-low-positive"),
            pytest.param(10.0, "positive", True, id="10%-low-positive"),
            pytest.param(11.0, "positive", False, id="11%-positive"),
        ],
    )
    def test_er_percent(
        self, t: Terminology, params: Parameters, percent: float, status: str, low: bool
    ) -> None:
        p = metastatic()
        p.obs("85329-1", 90, valueQuantity={"value": percent, "unit": "%"})
        f = facts(p, t, params)
        assert f.receptors.er is not None
        assert (f.receptors.er.status, f.receptors.er.low_positive) == (status, low)

    def test_ichom_er_negative_only_with_its_code(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        absent = {"coding": [{"system": "http://snomed.info/sct", "code": "373572006"}]}
        p.obs("445028008", 90, system="http://snomed.info/sct", valueCodeableConcept=absent)
        f = facts(p, t, params)
        assert f.receptors.er is not None
        assert f.receptors.er.status == "negative"

    def test_hr_status_is_unknown_without_data(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.er(90, "neg")
        assert facts(p, t, params).receptors.hr_positive is None  # PR unknown
        p.pr(90, "neg")
        assert facts(p, t, params).receptors.hr_positive is False

    def test_serum_her2_only(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.obs("42914-2", 10, valueQuantity={"value": 20, "unit": "ng/mL"})
        f = facts(p, t, params)
        assert f.receptors.serum_her2_only
        assert f.receptors.her2 is None


class TestRenal:
    def test_cockcroft_gault(self) -> None:
        assert cockcroft_gault(age=60, weight_kg=72, creatinine_mg_dl=1.0, female=False) == 80
        assert cockcroft_gault(age=60, weight_kg=72, creatinine_mg_dl=1.0, female=True) == 68

    def test_umol_per_litre_is_converted(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.birth = "1966-11-22"  # 60 on AS_OF
        p.labs(creatinine=1.0, weight=72, units="si")
        f = facts(p, t, params)
        assert f.renal.method == "cockcroft-gault"
        assert f.renal.crcl == pytest.approx(68, abs=0.5)

    def test_missing_weight_leaves_crcl_unknown_and_says_why(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        p.obs("2160-0", 3, valueQuantity={"value": 1.0, "unit": "mg/dL", "code": "mg/dL"})
        f = facts(p, t, params)
        assert f.renal.crcl is None
        assert any("body weight" in m for m in f.renal.missing)

    def test_stale_creatinine_is_not_used(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.labs(days_ago=31)
        assert facts(p, t, params).renal.crcl is None

    def test_reported_crcl_is_used(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.obs("35591-7", 3, valueQuantity={"value": 42, "unit": "mL/min"})
        f = facts(p, t, params)
        assert (f.renal.crcl, f.renal.method) == (42, "reported")

    def test_egfr_is_never_creatinine_clearance(self, t: Terminology, params: Parameters) -> None:
        """C2: an eGFR is context only; CrCl stays unknown without Cockcroft-Gault inputs."""
        p = metastatic()
        p.obs("98979-8", 3, valueQuantity={"value": 55, "unit": "mL/min/{1.73_m2}"})
        f = facts(p, t, params)
        assert (f.renal.crcl, f.renal.method) == (None, None)
        assert f.renal.egfr is not None
        assert f.renal.egfr.value == 55

    @pytest.mark.parametrize("value", [0, -1.0])
    def test_impossible_creatinine_is_unusable(
        self, t: Terminology, params: Parameters, value: float
    ) -> None:
        """A creatinine of 0 is unusable data, never a divisor."""
        p = metastatic()
        p.labs(creatinine=0.8)
        p.resources = [r for r in p.resources if "2160-0" not in str(r.get("code"))]
        p.obs("2160-0", 3, valueQuantity={"value": value, "unit": "mg/dL", "code": "mg/dL"})
        assert facts(p, t, params).renal.crcl is None

    def test_unknown_sex_leaves_crcl_unknown(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.gender = "unknown"
        p.labs()
        assert facts(p, t, params).renal.crcl is None


class TestCalcium:
    def test_albumin_correction(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.labs(calcium=8.0, albumin=3.0)  # 8.0 + 0.8 × 1.0 = 8.8: not low
        f = facts(p, t, params)
        assert f.calcium.corrected == pytest.approx(8.8)
        assert f.calcium.low is False

    def test_low_against_the_reference_range(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.labs(calcium=8.4, albumin=4.0)
        assert facts(p, t, params).calcium.low is True

    def test_mmol_per_litre_and_fallback_limit(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.obs("17861-6", 2, valueQuantity={"value": 2.0, "unit": "mmol/L", "code": "mmol/L"})
        f = facts(p, t, params)
        assert f.calcium.corrected == pytest.approx(8.02, abs=0.01)
        assert f.calcium.low is True  # under the 8.5 mg/dL fallback
        assert f.calcium.albumin_corrected is False

    def test_no_calcium_is_unknown_not_normal(self, t: Terminology, params: Parameters) -> None:
        f = facts(metastatic(), t, params)
        assert (f.calcium.low, f.calcium.high) == (None, None)


class TestLvef:
    def test_baseline_is_the_last_before_her2_therapy(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic(met_days=400)
        p.lvef(300, 64)
        p.lvef(250, 60)
        p.med("MedicationStatement", TRAS, status="active", start=240)
        p.lvef(20, 50)
        f = facts(p, t, params)
        assert f.lvef.baseline is not None
        assert f.lvef.latest is not None
        assert (f.lvef.baseline.value, f.lvef.latest.value) == (60, 50)

    def test_text_coded_ejection_fraction(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        o = p.obs("x", 5, system="urn:local", valueQuantity={"value": 55, "unit": "%"})
        o["code"]["text"] = "LV ejection fraction (echo)"
        f = facts(p, t, params)
        assert f.lvef.latest is not None
        assert f.lvef.latest.value == 55


class TestMedications:
    @pytest.mark.parametrize(
        ("text", "ingredients"),
        [
            pytest.param(
                "ado-trastuzumab emtansine 3.6 mg/kg",
                {"trastuzumab emtansine"},
                id="tdm1-not-trastuzumab",
            ),
            pytest.param(
                "fam-trastuzumab deruxtecan-nxki",
                {"trastuzumab deruxtecan"},
                id="tdxd-not-trastuzumab",
            ),
            pytest.param("trastuzumab-dkst 6 mg/kg", {"trastuzumab"}, id="biosimilar"),
            pytest.param("Phesgo 600/600", {"trastuzumab", "pertuzumab"}, id="phesgo"),
            pytest.param("Kadcyla", {"trastuzumab emtansine"}, id="brand"),
        ],
    )
    def test_text_last_resort(self, t: Terminology, text: str, ingredients: set[str]) -> None:
        got = {m.ingredient for m in t.medications.match(Concept(text=text), t.rxnorm)}
        assert got == ingredients

    @pytest.mark.parametrize(
        ("med", "mg", "weeks", "dose"),
        [
            pytest.param(XGEVA, None, None, "onc", id="xgeva-product"),
            pytest.param(PROLIA, None, None, "osteo", id="prolia-product"),
            pytest.param(("993449", "Denosumab"), 120, None, "onc", id="ingredient-120mg"),
            pytest.param(("993449", "Denosumab"), 60, None, "osteo", id="ingredient-60mg"),
            pytest.param(("993449", "Denosumab"), None, 4, "onc", id="ingredient-q4w"),
            pytest.param(("993449", "Denosumab"), None, None, "unknown", id="ingredient-no-dose"),
            pytest.param(("77655", "Zoledronic acid"), 5, None, "osteo", id="zoledronic-5mg"),
            pytest.param(ZOL4, None, None, "onc", id="zometa-product"),
        ],
    )
    def test_bma_dose_class(
        self,
        t: Terminology,
        params: Parameters,
        med: tuple[str, str],
        mg: float | None,
        weeks: float | None,
        dose: str,
    ) -> None:
        p = metastatic()
        p.med("MedicationStatement", med, status="active", start=10, mg=mg, every_weeks=weeks)
        f = facts(p, t, params)
        assert f.meds.exposures[0].bma_dose == dose

    def test_unknown_dose_counts_as_on_a_bma(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.med("MedicationStatement", ("993449", "Denosumab"), status="active", start=10)
        assert facts(p, t, params).meds.active_bma()

    def test_administration_window(self, t: Terminology, params: Parameters) -> None:
        for days, active in ((35, True), (36, False)):
            p = metastatic()
            p.med("MedicationAdministration", XGEVA, status="completed", start=days)
            assert bool(facts(p, t, params).meds.active_bma()) is active

    def test_zoledronic_acid_has_a_12_week_window(self, t: Terminology, params: Parameters) -> None:
        for days, active in ((100, True), (101, False)):
            p = metastatic()
            p.med("MedicationAdministration", ZOL4, status="completed", start=days)
            assert bool(facts(p, t, params).meds.active_bma()) is active

    def test_not_taken_and_entered_in_error_are_not_exposure(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        p.med("MedicationStatement", TRAS, status="not-taken", start=10)
        p.med("MedicationStatement", PERT, status="entered-in-error", start=10)
        f = facts(p, t, params)
        assert not f.meds.ever("HER2_MAB")

    def test_stale_active_order_is_not_trusted(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.med("MedicationRequest", TRAS, status="active", start=400)
        assert not facts(p, t, params).meds.active("HER2_MAB")

    def test_medication_reference_is_resolved(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.resources.append(
            {
                "resourceType": "Medication",
                "id": "m1",
                "code": {
                    "coding": [
                        {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1046402"}
                    ]
                },
            }
        )
        p.add(
            {
                "resourceType": "MedicationStatement",
                "id": "ms-ref",
                "status": "active",
                "medicationReference": {"reference": "Medication/m1"},
                "effectiveDateTime": p.day(5),
            }
        )
        p.add(
            {
                "resourceType": "MedicationRequest",
                "id": "mr-contained",
                "status": "active",
                "intent": "order",
                "authoredOn": p.day(5),
                "contained": [
                    {"resourceType": "Medication", "id": "c", "code": {"text": "pertuzumab 420 mg"}}
                ],
                "medicationReference": {"reference": "#c"},
            }
        )
        f = facts(p, t, params)
        assert {e.ingredient for e in f.meds.exposures} == {"denosumab", "pertuzumab"}


class TestLines:
    def thp(self, p: Patient, start: int, end: int | None = None, reason: Any = None) -> None:
        status = "active" if end is None else "stopped"
        for drug in (DOCE, TRAS, PERT):
            p.med("MedicationStatement", drug, status=status, start=start, end=end, reason=reason)

    def test_chemo_stop_is_not_a_new_line(self, t: Terminology, params: Parameters) -> None:
        p = metastatic(met_days=600)
        p.med("MedicationStatement", DOCE, status="completed", start=500, end=380)
        for drug in (TRAS, PERT):
            p.med("MedicationStatement", drug, status="active", start=500)
        f = facts(p, t, params)
        assert len(f.lines.lines) == 1
        assert f.lines.current is not None

    def test_new_anchor_is_a_new_line(self, t: Terminology, params: Parameters) -> None:
        p = metastatic(met_days=600)
        self.thp(p, 500, 200, PROGRESSION)
        p.med("MedicationStatement", TDXD, status="active", start=190)
        f = facts(p, t, params)
        assert [sorted(line.anchor) for line in f.lines.lines] == [
            ["pertuzumab", "trastuzumab"],
            ["trastuzumab deruxtecan"],
        ]
        assert f.lines.lines_completed == 1

    @pytest.mark.parametrize(
        ("gap_days", "within"),
        [pytest.param(365, True, id="12-months"), pytest.param(366, False, id="12-months+1")],
    )
    def test_adjuvant_window(
        self, t: Terminology, params: Parameters, gap_days: int, within: bool
    ) -> None:
        p = metastatic(met_days=100)
        p.med(
            "MedicationRequest", TRAS, status="completed", start=gap_days + 400, end=100 + gap_days
        )
        f = facts(p, t, params)
        assert f.lines.adjuvant_within_12_months is within
        assert f.lines.lines == ()

    @pytest.mark.parametrize(
        ("gap_days", "within", "label_window"),
        [
            pytest.param(183, True, True, id="6-months"),
            pytest.param(184, True, False, id="6-months+1"),
            pytest.param(365, True, False, id="12-months"),
            pytest.param(366, False, False, id="12-months+1"),
        ],
    )
    def test_adjuvant_tdm1_counts(
        self, t: Terminology, params: Parameters, gap_days: int, within: bool, label_window: bool
    ) -> None:
        """C6: T-DM1 (KATHERINE) is trastuzumab-based adjuvant therapy; ≤6 months also meets the
        Enhertu label."""
        p = metastatic(met_days=100)
        tdm1 = ("1371041", "Ado-trastuzumab emtansine")
        p.med(
            "MedicationStatement",
            tdm1,
            status="completed",
            start=gap_days + 300,
            end=100 + gap_days,
        )
        f = facts(p, t, params)
        assert f.lines.adjuvant_within_12_months is within
        assert f.lines.adjuvant_within_label_window is label_window

    def test_partner_change_after_progression_is_a_new_line(
        self, t: Terminology, params: Parameters
    ) -> None:
        """C6: THP, progression, then trastuzumab + capecitabine: two lines."""
        p = metastatic(met_days=600)
        p.med("MedicationStatement", DOCE, status="stopped", start=500, end=200, reason=PROGRESSION)
        p.med("MedicationStatement", PERT, status="stopped", start=500, end=200, reason=PROGRESSION)
        p.med("MedicationStatement", TRAS, status="active", start=500)
        p.med("MedicationStatement", ("194000", "Capecitabine"), status="active", start=190)
        f = facts(p, t, params)
        assert len(f.lines.lines) == 2
        # §3c D16: the current line (still working) is not yet a prior regimen for the labels;
        # THP, ended by progression, is.
        assert f.lines.metastatic_her2_regimens == 1

    def test_partner_change_without_progression_stays_one_line(
        self, t: Terminology, params: Parameters
    ) -> None:
        """C6: a change for toxicity or planned maintenance is not a new line."""
        p = metastatic(met_days=600)
        p.med("MedicationStatement", DOCE, status="stopped", start=500, end=200, reason=TOXICITY)
        p.med("MedicationStatement", TRAS, status="active", start=500)
        p.med("MedicationStatement", PERT, status="active", start=500)
        p.med("MedicationStatement", ("194000", "Capecitabine"), status="active", start=190)
        assert len(facts(p, t, params).lines.lines) == 1

    def test_a_later_stable_status_supersedes_worsened(
        self, t: Terminology, params: Parameters
    ) -> None:
        """C6: worsened early on the current line, stable since: not progressing on it."""
        p = metastatic(met_days=600)
        self.thp(p, 500)
        p.disease_status(300, *WORSENED)
        p.disease_status(30, *STABLE)
        assert facts(p, t, params).lines.progression == "none"

    def test_new_brain_metastasis_with_stable_disease_is_cns_only(
        self, t: Terminology, params: Parameters
    ) -> None:
        """C5: a new brain metastasis while systemic disease is documented stable."""
        p = metastatic(met_days=600)
        self.thp(p, 500)
        p.condition(SNOMED, "94225005", "Secondary malignant neoplasm of brain", 20)
        p.disease_status(15, *STABLE)
        f = facts(p, t, params)
        assert f.lines.progression == "none"
        assert f.lines.cns_progression is not None

    def test_progression_by_disease_status(self, t: Terminology, params: Parameters) -> None:
        p = metastatic(met_days=600)
        self.thp(p, 500)
        p.disease_status(20, *WORSENED)
        f = facts(p, t, params)
        assert f.lines.progression == "high"
        assert f.lines.next_line_number() == 2

    def test_progression_by_stop_reason(self, t: Terminology, params: Parameters) -> None:
        p = metastatic(met_days=600)
        self.thp(p, 500, 20, PROGRESSION)
        assert facts(p, t, params).lines.progression == "high"

    def test_new_site_is_progression(self, t: Terminology, params: Parameters) -> None:
        """F7(c): a new visceral site on the line is progression (RECIST new lesion)."""
        p = metastatic(met_days=600)
        self.thp(p, 500)
        p.condition(SNOMED, "94381002", "Secondary malignant neoplasm of liver", 30)
        f = facts(p, t, params)
        assert f.lines.progression == "high"
        assert "new visceral metastasis" in f.lines.progression_reasons[0]

    def test_new_brain_site_alone_is_not_systemic_progression(
        self, t: Terminology, params: Parameters
    ) -> None:
        """C5: a new brain metastasis, systemic status undocumented: CNS progression only."""
        p = metastatic(met_days=600)
        self.thp(p, 500)
        p.condition(SNOMED, "94225005", "Secondary malignant neoplasm of brain", 30)
        f = facts(p, t, params)
        assert f.lines.progression == "none"
        assert f.lines.cns_progression is not None
        assert f.lines.cns_progression.status_ref is None

    def test_toxicity_is_not_progression(self, t: Terminology, params: Parameters) -> None:
        p = metastatic(met_days=600)
        self.thp(p, 500, 20, TOXICITY)
        f = facts(p, t, params)
        assert f.lines.progression == "none"
        assert "trastuzumab" in f.meds.ingredients_stopped_for("toxicity")

    def test_stopped_without_reason_is_undetermined(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic(met_days=600)
        self.thp(p, 500, 60)
        f = facts(p, t, params)
        assert f.lines.progression == "undetermined"
        # C9: what is not evidence of progression is a finding, never "Progression".
        assert f.lines.progression_reasons == ()
        assert any("no disease-status record" in r for r in f.lines.findings)


class TestRecords:
    def test_invalid_resource_is_excluded_and_counted(self, t: Terminology) -> None:
        bad = {
            "resourceType": "Observation",
            "id": "x",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
            "valueQuantity": {"value": "high"},
        }
        records = read_records([bad], t)
        assert records.observations == ()
        assert records.excluded[0].resource_type == "Observation"
        assert "valueQuantity" in records.excluded[0].location

    def test_preliminary_observations_do_not_count(self, t: Terminology) -> None:
        obs = {
            "resourceType": "Observation",
            "id": "x",
            "status": "preliminary",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
            "valueQuantity": {"value": 1.0},
        }
        assert read_records([obs], t).observations == ()

    def test_refuted_condition_does_not_count(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.condition("http://snomed.info/sct", "94225005", "brain", 10, verification="refuted")
        assert not facts(p, t, params).disease.brain.present

    def test_irrelevant_resources_are_not_parsed(self, t: Terminology) -> None:
        records = read_records(
            [
                {"resourceType": "Observation", "status": "final", "code": {"text": "heart rate"}},
                {"resourceType": "Immunization", "id": "i"},
            ],
            t,
        )
        assert records.observations == ()
        assert records.received == {"Observation", "Immunization"}

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("2024", date(2024, 1, 1)),
            ("2024-03", date(2024, 3, 1)),
            ("2024-03-05T23:00:00-05:00", date(2024, 3, 5)),
            ("garbage", None),
            (None, None),
        ],
    )
    def test_partial_dates(self, value: Any, expected: date | None) -> None:
        assert fhir_date(value) == expected

    @pytest.mark.parametrize(
        "value",
        [
            "2026-02-11",
            "2026-02-11T10:00:00Z",
            "2026-02-11junk",
            "2026-02-30",  # not a real day
            "2026-13-01",
            "0000-01-01",
            "2026-02-1x",  # a broken day: the pattern reads the month
            "\u0662\u0660\u0662\u0666-02-11",  # digits, but not ASCII ones
            " 2026-02-11",
            "20260211",  # ISO basic format, which FHIR does not allow
            "2026-W06-3",  # an ISO week date, likewise
            "2026-002-11",
        ],
    )
    def test_fast_full_dates_read_as_the_pattern_does(self, value: str) -> None:
        assert fhir_date(value) == date_by_pattern(value)


class TestDisease:
    def test_regional_nodes_alone_are_not_metastatic(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = Patient("p")
        p.breast_cancer()
        p.condition("http://hl7.org/fhir/sid/icd-10-cm", "C77.3", "axillary nodes", 100)
        assert not facts(p, t, params).disease.metastatic.present

    def test_vertebral_from_body_site(self, t: Terminology, params: Parameters) -> None:
        p = Patient("p")
        p.breast_cancer()
        p.condition(
            "http://snomed.info/sct",
            "128462008",
            "Secondary malignant neoplastic disease",
            50,
            body_site={"coding": [{"system": "http://snomed.info/sct", "code": "421060004"}]},
        )
        f = facts(p, t, params)
        assert f.disease.vertebral.present
        assert f.disease.bone.present

    def test_cord_compression_needs_bone_metastases(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = Patient("p")
        p.breast_cancer()
        p.condition("http://hl7.org/fhir/sid/icd-10-cm", "G95.20", "cord compression", 5)
        assert not facts(p, t, params).disease.cord_compression.present

    def test_metastatic_date_is_the_earliest(self, t: Terminology, params: Parameters) -> None:
        p = metastatic(met_days=100)
        p.condition("http://snomed.info/sct", "94381002", "liver", 300)
        f = facts(p, t, params)
        assert f.disease.metastatic_date == AS_OF - timedelta(days=300)


MCODE = SHARED / "fhir-examples" / "mcode-ig" / "Bundle-mcode-patient-bundle-jenny-m.json"


@needs_shared(MCODE)
def test_mcode_jenny_m(t: Terminology, params: Parameters) -> None:
    """Outside check: HER2-negative, ER-positive, PR-negative, not metastatic."""
    f = extract_facts([json.loads(MCODE.read_text())], t, params, as_of=AS_OF)
    assert f.receptors.her2 is not None
    assert f.receptors.her2.status == "negative"
    assert f.receptors.er is not None
    assert f.receptors.er.status == "positive"
    assert f.receptors.pr is not None
    assert f.receptors.pr.status == "negative"
    assert not f.disease.metastatic.present
    assert f.excluded == ()


class TestResultForms:
    """Results as EHRs send them: coded answers, text, strings, integers, ratios, components."""

    @pytest.mark.parametrize(
        ("value", "status"),
        [
            pytest.param({"valueString": "Equivocal"}, "equivocal", id="text-equivocal"),
            pytest.param({"valueString": "HER2 not amplified"}, "negative", id="not-amplified"),
            pytest.param({"valueString": "Amplified"}, "positive", id="amplified"),
            pytest.param({"valueString": "Inconclusive, repeat"}, "unknown", id="inconclusive"),
            pytest.param(
                {
                    "valueCodeableConcept": {
                        "coding": [{"system": "http://snomed.info/sct", "code": "280414007"}]
                    }
                },
                "equivocal",
                id="snomed-equivocal",
            ),
            pytest.param(
                {
                    "valueCodeableConcept": {
                        "coding": [{"system": "http://loinc.org", "code": "LA9663-1"}]
                    }
                },
                "unknown",
                id="loinc-inconclusive",
            ),
            pytest.param(
                {
                    "valueCodeableConcept": {
                        "coding": [{"system": "http://snomed.info/sct", "code": "427685000"}]
                    }
                },
                "positive",
                id="ichom-her2-positive",
            ),
        ],
    )
    def test_her2_interpretation_values(
        self, t: Terminology, params: Parameters, value: dict[str, Any], status: str
    ) -> None:
        p = metastatic()
        p.obs("48676-1", 90, **value)
        f = facts(p, t, params)
        assert f.receptors.her2 is not None
        assert f.receptors.her2.status == status

    def test_ish_numbers_as_ratio_integer_and_string(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        p.obs(
            "49683-6", 90, valueRatio={"numerator": {"value": 5.0}, "denominator": {"value": 2.0}}
        )
        p.obs("74860-8", 90, valueString="mean 6.1 copies per cell")
        f = facts(p, t, params)
        assert f.receptors.her2 is not None
        assert (f.receptors.her2.ish_group, f.receptors.her2.status) == (1, "positive")

    def test_ihc_score_in_a_component(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.obs("85319-2", 90, component=[{"code": {"text": "IHC score"}, "valueInteger": 3}])
        f = facts(p, t, params)
        assert f.receptors.her2 is not None
        assert (f.receptors.her2.ihc_score, f.receptors.her2.status) == (3, "positive")

    def test_qualitative_ihc_negative_without_score(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        p.obs(
            "85319-2",
            90,
            valueCodeableConcept={
                "coding": [{"system": "http://snomed.info/sct", "code": "260385009"}]
            },
        )
        f = facts(p, t, params)
        assert f.receptors.her2 is not None
        assert (f.receptors.her2.status, f.receptors.her2.her2_category) == ("negative", "unknown")

    def test_pr_negative_snomed(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.obs(
            "16113-3",
            90,
            valueCodeableConcept={
                "coding": [{"system": "http://snomed.info/sct", "code": "441118006"}]
            },
        )
        f = facts(p, t, params)
        assert f.receptors.pr is not None
        assert f.receptors.pr.status == "negative"


class TestUnits:
    def test_albumin_in_g_per_litre_and_weight_in_pounds(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        p.birth = "1966-11-22"
        p.obs("2160-0", 3, valueQuantity={"value": 1.0, "unit": "mg/dL", "code": "mg/dL"})
        p.obs("29463-7", 3, valueQuantity={"value": 158.73, "unit": "lb", "code": "[lb_av]"})
        p.obs("17861-6", 3, valueQuantity={"value": 8.0, "unit": "mg/dL", "code": "mg/dL"})
        p.obs("1751-7", 3, valueQuantity={"value": 30, "unit": "g/L", "code": "g/L"})
        f = facts(p, t, params)
        assert f.renal.crcl == pytest.approx(68, abs=0.1)  # 158.73 lb = 72 kg
        assert f.calcium.corrected == pytest.approx(8.8)

    def test_unknown_units_are_not_guessed(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.obs("2160-0", 3, valueQuantity={"value": 90, "unit": "mmol/mol"})
        p.obs("17861-6", 3, valueQuantity={"value": 9, "unit": "furlongs"})
        f = facts(p, t, params)
        assert f.renal.creatinine is None
        assert f.calcium.corrected is None

    def test_lvef_as_integer(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.obs("18043-0", 3, valueInteger=58)
        f = facts(p, t, params)
        assert f.lvef.latest is not None
        assert f.lvef.latest.value == 58


class TestActivities:
    def test_dental_encounter_and_completed_referral_count(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        p.add(
            {
                "resourceType": "Encounter",
                "id": "e1",
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                },
                "serviceType": {"text": "Dental clinic"},
                "period": {"start": p.day(40)},
            }
        )
        p.add(
            {
                "resourceType": "ServiceRequest",
                "id": "sr1",
                "status": "completed",
                "intent": "order",
                "authoredOn": p.day(20),
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "103697008"}]},
            }
        )
        p.add(
            {
                "resourceType": "ServiceRequest",
                "id": "sr2",
                "status": "active",
                "intent": "order",
                "authoredOn": p.day(5),
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "103697008"}]},
            }
        )
        f = facts(p, t, params)
        assert [d.ref for d in f.dental_evaluations] == ["Encounter/e1", "ServiceRequest/sr1"]

    def test_dialysis_procedure(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.add(
            {
                "resourceType": "Procedure",
                "id": "d",
                "status": "completed",
                "code": {"text": "Haemodialysis session"},
                "performedDateTime": p.day(2),
            }
        )
        assert facts(p, t, params).on_dialysis


def test_a_broken_narrative_does_not_exclude_a_resource(t: Terminology) -> None:
    """The narrative is not read by any rule, so it cannot cost us the clinical data."""
    obs = {
        "resourceType": "Observation",
        "id": "x",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
        "valueQuantity": {"value": 1.0, "unit": "mg/dL"},
        "text": {"status": "not-a-status"},  # invalid: unknown status and no div
    }
    records = read_records([obs], t)
    assert records.excluded == ()
    assert len(records.observations) == 1


class TestFullValidationMemo:
    def obs(self, value: Any) -> dict[str, Any]:
        return {
            "resourceType": "Observation",
            "id": "x",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
            "valueQuantity": {"value": value, "unit": "mg/dL"},
        }

    def test_same_content_hits_and_changed_content_misses(self, t: Terminology) -> None:
        cache = Checker("full")
        read_records([self.obs(1.0)], t, cache)
        read_records([self.obs(1.0)], t, cache)
        assert (cache.hits, cache.misses) == (1, 1)
        read_records([self.obs(1.1)], t, cache)
        assert cache.misses == 2

    def test_invalid_verdicts_are_cached_and_still_excluded(self, t: Terminology) -> None:
        cache = Checker("full")
        for _ in range(2):
            records = read_records([self.obs("high")], t, cache)
            assert records.observations == ()
            assert records.excluded[0].location.startswith("valueQuantity")
        assert cache.hits == 1

    def test_capacity_is_bounded(self, t: Terminology) -> None:
        cache = Checker("full", capacity=2)
        for v in (1.0, 2.0, 3.0):
            read_records([self.obs(v)], t, cache)
        read_records([self.obs(1.0)], t, cache)  # evicted: validated again
        assert (cache.hits, cache.misses) == (0, 4)


def test_the_service_reuses_full_verdicts_across_calls(tmp_path: Path) -> None:
    """CDS_VALIDATION=full: the service validates with R4B and remembers verdicts by content."""
    from tests.conftest import ROOT

    settings = Settings(validation="full", feedback_db=tmp_path / "f.sqlite3")
    knowledge = load_knowledge(REPO_CARDS, validation=settings.validation)
    request = json.loads(
        (ROOT / "fixtures/mbc-bone-patient-view/her2-positive-first-line/request.json").read_text()
    )
    with TestClient(create_app(settings, knowledge=knowledge)) as client:
        client.post("/cds-services/mbc-bone-patient-view", json=request)
        hits = knowledge.checker.hits
        client.post("/cds-services/mbc-bone-patient-view", json=request)
    assert knowledge.checker.mode == "full"
    assert knowledge.checker.hits > hits


def test_one_concept_per_distinct_codeable_concept() -> None:
    """Identical CodeableConcepts (a lab code in every chart) share one Concept, so matching
    works each one out once; anything else is still read as sent, whatever its shape."""
    loinc = {"coding": [{"system": "http://loinc.org", "code": "2160-0", "display": "Creatinine"}]}
    first = concept(json.loads(json.dumps(loinc)))
    assert concept(json.loads(json.dumps(loinc))) is first
    assert first.codings[0].code == "2160-0"
    other = concept({**loinc, "text": "Creatinine, serum"})
    assert other is not first
    assert other.text == "Creatinine, serum"
    # Not JSON to orjson (an integer beyond 64 bits): built, not remembered.
    odd = {"coding": [{"system": "s", "code": "c", "version": 2**70}]}
    assert concept(odd).codings[0].code == "c"
    assert concept(odd) is not concept(odd)
    # Long free text is built each time, never kept.
    long = {"text": "x" * 5000}
    assert concept(long).text == "x" * 5000
    assert concept(long) is not concept(long)


def test_observations_are_picked_by_value_set_in_the_order_sent(t: Terminology) -> None:
    """Each distinct concept is matched once, the observations keep the order they came in,
    and a code-only pick never reads text."""

    def obs(rid: str, code: dict[str, Any]) -> dict[str, Any]:
        return {"resourceType": "Observation", "id": rid, "status": "final", "code": code}

    loinc = "http://loinc.org"
    creatinine = {"coding": [{"system": loinc, "code": "2160-0"}]}
    egfr = {"coding": [{"system": loinc, "code": "62238-1"}]}
    ef_text = {"text": "Ejection fraction"}  # the LVEF set's documented text pattern
    records = read_records(
        [
            obs("c1", creatinine),
            obs("e2", egfr),
            obs("c3", json.loads(json.dumps(creatinine))),
            obs("f4", ef_text),
        ],
        t,
    )

    def ids(picked: tuple[Any, ...]) -> list[str]:
        return [o.id for o in picked]

    assert ids(records.observations_in(t["creatinine"])) == ["c1", "c3"]
    assert ids(records.observations_in(t["egfr"])) == ["e2"]
    assert ids(records.observations_in(t["calcium"])) == []
    assert ids(records.observations_in(t["lvef"])) == ["f4"]
    assert ids(records.observations_coded_in(t["lvef"])) == []
    only = read_records([obs("c1", creatinine), obs("c2", creatinine)], t)
    assert ids(only.observations_in(t["creatinine"])) == ["c1", "c2"]
