"""F1 disease: breast cancer, metastatic sites, dates (mCODE patients too)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from cds.facts import extract_facts
from cds.parameters import Parameters
from cds.terminology import Terminology
from fixtures.factories import (
    Patient,
)
from tests.conftest import AS_OF, SHARED, needs_shared
from tests.facts.helpers import facts, metastatic


class TestDisease:
    def test_regional_nodes_alone_are_not_metastatic(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = Patient("p")
        p.breast_cancer()
        p.condition("http://hl7.org/fhir/sid/icd-10-cm", "C77.3", "axillary nodes", 100)
        assert not facts(p, t, params).disease.metastatic.present

    @pytest.mark.parametrize("status", ["resolved", "remission", "inactive", "abated"])
    def test_a_primary_over_long_ago_with_a_distant_metastasis_is_recurrent_disease(
        self, t: Terminology, params: Parameters, status: str
    ) -> None:
        """D11, as for a Z85.3 history: with the metastasis active, F1 holds."""
        p = Patient("p")
        p.breast_cancer(3000)
        [primary] = p.resources
        if status == "abated":
            primary["abatementDateTime"] = p.day(2500)
        else:
            primary["clinicalStatus"] = {"coding": [{"code": status}]}
        assert not facts(p, t, params).disease.breast_cancer.present  # no metastasis: not ours
        p.bone_mets(30)
        f = facts(p, t, params)
        assert f.disease.breast_cancer.present
        assert f.disease.bone.present

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

    @pytest.mark.parametrize(
        ("onset", "recorded", "expected", "named"),
        [
            # onset typed ahead: dated by when it was recorded
            (400, -300, -300, "condition-onset-after-today"),
            (400, 500, None, "condition-dated-after-today"),  # both ahead: present, undated
            (400, None, None, "condition-onset-after-today-undated"),
            (None, 400, None, "condition-recorded-after-today-undated"),
            (1, 1, 1, None),  # a day ahead is a clock ahead (clock_lead_days), read as is
            (-300, 400, -300, "condition-recorded-after-today"),
        ],
    )
    def test_a_condition_date_in_the_future_is_no_date(
        self,
        t: Terminology,
        params: Parameters,
        onset: int | None,
        recorded: int | None,
        expected: int | None,
        named: str | None,
    ) -> None:
        """A metastasis whose onset is typed a year ahead is present, not yet to come: read as
        a metastasis yet to come, the therapies since it were adjuvant and its tissue results
        older than it (days relative to the as-of date: + is the future)."""
        p = metastatic(met_days=100)
        for r in p.resources:
            if r["resourceType"] == "Condition" and r["code"]["coding"][0]["code"] == "94222008":
                met = r
        for element, days in (("onsetDateTime", onset), ("recordedDate", recorded)):
            met.pop(element)
            if days is not None:
                met[element] = (AS_OF + timedelta(days=days)).isoformat()
        f = facts(p, t, params)
        assert f.disease.metastatic.present
        assert f.disease.metastatic_date == (
            None if expected is None else AS_OF + timedelta(days=expected)
        )
        # The dates set aside are named (R0b), each Condition once; the resource is not left
        # out: the other cards carry no note about it.
        said = [e.reason for e in f.dates_set_aside]
        assert [getattr(s, "key", s) for s in said] == ([named] if named else [])
        assert [e.ref for e in f.dates_set_aside] == ([f"Condition/{met['id']}"] if named else [])
        assert f.excluded == ()

    def test_an_abatement_in_the_future_is_not_yet_and_named(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic(met_days=100)
        mscc = p.condition("http://hl7.org/fhir/sid/icd-10-cm", "G95.20", "cord compression", 5)
        mscc["abatementDateTime"] = (AS_OF + timedelta(days=360)).isoformat()
        f = facts(p, t, params)
        assert f.disease.cord_compression.present
        [named] = f.dates_set_aside
        assert (named.location, named.ref) == ("abatement[x]", f"Condition/{mscc['id']}")
        assert getattr(named.reason, "key", None) == "condition-abated-after-today"


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


class TestStagingByName:
    """A staging result under a local code is read by its name (D11), only with a word of
    cancer staging: a CKD or pressure-ulcer stage IV is no metastatic breast cancer."""

    @pytest.mark.parametrize(
        ("name", "value", "metastatic"),
        [
            ("Cancer stage", "Stage IV", True),
            ("AJCC stage group", "IV", True),
            ("Stage group.clinical Cancer", "Stage IV", True),
            ("Distant metastases.clinical [Class] Cancer", "cM1", True),
            ("Cancer stage", "Stage IIB", False),
            ("CKD stage", "Stage IV", False),
            ("Pressure ulcer stage", "Stage IV", False),
        ],
    )
    def test_a_stage_named_without_loinc(
        self, t: Terminology, params: Parameters, name: str, value: str, metastatic: bool
    ) -> None:
        p = Patient("staged")
        p.breast_cancer()
        p.obs(
            "S1", 30, system="urn:oid:2.16.840.1.113883.3.0.1", valueCodeableConcept={"text": value}
        )
        p.resources[-1]["code"]["coding"][0]["display"] = name
        assert facts(p, t, params).disease.metastatic.present is metastatic
