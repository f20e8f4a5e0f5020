"""Reading resources into records: values, result forms, units, concepts."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from cds.fhir.elements import concept, date_by_pattern, fhir_date
from cds.fhir.reading import read_records
from cds.parameters import Parameters
from cds.settings import REPO_CARDS
from cds.terminology import Terminology
from cds.terminology_files import load_terminology
from fixtures.factories import LOINC, TRAS
from tests.facts.helpers import facts, metastatic


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

    @pytest.mark.parametrize(
        ("reference", "own"),
        [
            ("Patient/p1", True),
            ("https://ehr.example.org/fhir/Patient/p1", True),
            ("Patient/p1/_history/3", True),
            ("urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0", True),  # cannot tell: kept
            ("#contained", True),
            ("Patient/p2", False),
            ("https://ehr.example.org/fhir/Patient/p2", False),
            ("Patient/p2/_history/1", False),
        ],
    )
    def test_a_resource_of_another_patient_is_left_out_and_named(
        self, t: Terminology, reference: str, own: bool
    ) -> None:
        creatinine = {
            "resourceType": "Observation",
            "id": "c",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
            "subject": {"reference": reference},
            "valueQuantity": {"value": 3.4, "unit": "mg/dL"},
        }
        records = read_records([creatinine], t, patient_id="p1")
        assert len(records.observations) == int(own)
        assert [(e.ref, e.location) for e in records.excluded] == (
            [] if own else [("Observation/c", "subject")]
        )
        assert not own or read_records([creatinine], t, patient_id="Patient/p1").observations

    def test_a_patient_resource_of_another_id_gives_no_age_or_sex(self, t: Terminology) -> None:
        patient = {"resourceType": "Patient", "id": "p2", "gender": "male", "birthDate": "1940"}
        allergy = {
            "resourceType": "AllergyIntolerance",
            "id": "a",
            "patient": {"reference": "Patient/p2"},
            "code": {"text": "denosumab"},
        }
        records = read_records([patient, allergy], t, patient_id="p1")
        assert records.patient is None
        assert records.allergies == ()
        assert sorted(e.ref for e in records.excluded) == ["AllergyIntolerance/a", "Patient/p2"]
        assert all(not e.code.codings and not e.code.text for e in records.excluded)
        assert read_records([patient], t, patient_id="p2").patient is not None

    def test_preliminary_observations_do_not_count(self, t: Terminology) -> None:
        obs = {
            "resourceType": "Observation",
            "id": "x",
            "status": "preliminary",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
            "valueQuantity": {"value": 1.0},
        }
        her2 = obs | {"id": "h", "code": {"coding": [{"system": LOINC, "code": "48676-1"}]}}
        records = read_records([obs, her2], t)
        assert records.observations == ()
        # Both are kept aside, never read as results: a preliminary lab to be named when newer
        # than the final one, a preliminary tumour marker to be named and to say that a
        # metastatic result is on its way (R13).
        assert [o.id for o in records.preliminary] == ["x", "h"]
        assert [o.status for o in records.preliminary] == ["preliminary", "preliminary"]

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


def _medication_use(resource_type: str, rid: str = "m1", **elements: Any) -> dict[str, Any]:
    """A MedicationStatement, Request or Administration of Patient/p1 with `elements`."""
    return {
        "resourceType": resource_type,
        "id": rid,
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        **({"intent": "order"} if resource_type == "MedicationRequest" else {}),
        **elements,
    }


def _trastuzumab(resource_type: str, **elements: Any) -> dict[str, Any]:
    return _medication_use(
        resource_type, medicationCodeableConcept={"text": "trastuzumab"}, **elements
    )


def _bounded(start: str | None, end: str | None = None) -> dict[str, Any]:
    period = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
    return {"timing": {"repeat": {"boundsPeriod": period, "period": 3, "periodUnit": "wk"}}}


class TestCourseDates:
    """A medicine's start and end, from the element each resource type keeps them in."""

    @pytest.mark.parametrize(
        ("elements", "start", "end"),
        [
            # the dosing's bounds decide before the prescription's validity and authoredOn
            (
                {
                    "authoredOn": "2026-01-02",
                    "dispenseRequest": {
                        "validityPeriod": {"start": "2026-01-03", "end": "2027-01-03"}
                    },
                    "dosageInstruction": [_bounded("2026-01-05", "2026-06-01")],
                },
                date(2026, 1, 5),
                date(2026, 6, 1),
            ),
            # a loading dose then maintenance: the course spans both
            (
                {
                    "dosageInstruction": [
                        _bounded("2026-01-05", "2026-01-05"),
                        _bounded("2026-01-26", "2026-09-01"),
                    ]
                },
                date(2026, 1, 5),
                date(2026, 9, 1),
            ),
            # one dosing still open-ended: the course has not stopped
            (
                {
                    "dosageInstruction": [
                        _bounded("2026-01-05", "2026-01-05"),
                        _bounded("2026-01-26"),
                    ]
                },
                date(2026, 1, 5),
                None,
            ),
            # no bounds: validity, then authoredOn, as before
            (
                {
                    "authoredOn": "2026-01-02",
                    "dispenseRequest": {"validityPeriod": {"end": "2026-04-01"}},
                },
                date(2026, 1, 2),
                date(2026, 4, 1),
            ),
            # a partial end (FHIR R4 Period: it includes any matching date) on its last day,
            # in the dosing's bounds and in the validity alike; a partial start on its first
            (
                {"dosageInstruction": [_bounded("2026-01", "2026-06")]},
                date(2026, 1, 1),
                date(2026, 6, 30),
            ),
            (
                {
                    "authoredOn": "2026-01-02",
                    "dispenseRequest": {"validityPeriod": {"end": "2026"}},
                },
                date(2026, 1, 2),
                date(2026, 12, 31),
            ),
        ],
    )
    def test_an_order_course_from_its_dosing_bounds(
        self, t: Terminology, elements: dict[str, Any], start: date, end: date | None
    ) -> None:
        [record] = read_records([_trastuzumab("MedicationRequest", **elements)], t).medications
        assert (record.start, record.end) == (start, end)

    def test_a_statement_reads_bounds_only_without_an_effective_date(self, t: Terminology) -> None:
        bounded = [_bounded("2025-03-01", "2025-09-01")]
        without = _trastuzumab("MedicationStatement", dosage=bounded)
        with_period = without | {"effectivePeriod": {"start": "2025-02-01", "end": "2025-08-01"}}
        [a] = read_records([without], t).medications
        [b] = read_records([with_period], t).medications
        assert (a.start, a.end) == (date(2025, 3, 1), date(2025, 9, 1))
        assert (b.start, b.end) == (date(2025, 2, 1), date(2025, 8, 1))

    @pytest.mark.parametrize(
        ("rtype", "end"),
        [("MedicationStatement", None), ("MedicationAdministration", date(2026, 5, 4))],
    )
    def test_a_single_date_ends_a_dose_not_a_course(
        self, t: Terminology, rtype: str, end: date | None
    ) -> None:
        """A statement's one date is when she was taking it; an administration's is the dose."""
        one_date = _trastuzumab(rtype, effectiveDateTime="2026-05-04", status="active")
        [record] = read_records([one_date], t).medications
        assert (record.start, record.end) == (date(2026, 5, 4), end)

    @pytest.mark.parametrize(
        ("rtype", "element", "span", "end"),
        [
            # a dose charted by its month: given by the month's last day at the latest
            ("MedicationAdministration", "effectiveDateTime", (1, 31), date(2026, 5, 31)),
            ("MedicationStatement", "effectiveDateTime", (1, 31), None),
            ("MedicationStatement", "effectivePeriod", (1, 31), None),
            ("MedicationRequest", "authoredOn", (1, 1), None),  # an order's dates: as before
        ],
    )
    def test_a_start_charted_by_its_month_spans_the_month(
        self,
        t: Terminology,
        rtype: str,
        element: str,
        span: tuple[int, int],
        end: date | None,
    ) -> None:
        value: object = {"start": "2026-05"} if element == "effectivePeriod" else "2026-05"
        sent = _trastuzumab(rtype, status="completed", **{element: value})
        [record] = read_records([sent], t).medications
        assert (record.start, record.started_by) == tuple(date(2026, 5, d) for d in span)
        assert record.end == end

    @pytest.mark.parametrize(
        ("rtype", "sent", "end", "charted"),
        [
            (
                "MedicationStatement",
                {"effectivePeriod": {"start": "2026-01-04", "end": "2026-11"}},
                date(2026, 11, 30),
                "2026-11",
            ),
            (
                "MedicationStatement",
                {"effectivePeriod": {"start": "2025-01-04", "end": "2025"}},
                date(2025, 12, 31),
                "2025",
            ),
            (
                "MedicationStatement",
                {"effectivePeriod": {"start": "2026-01-04", "end": "2026-11-02"}},
                date(2026, 11, 2),
                None,
            ),
            (
                "MedicationAdministration",
                {"effectivePeriod": {"start": "2026-11-01", "end": "2026-11"}},
                date(2026, 11, 30),
                "2026-11",
            ),
            (
                "MedicationRequest",
                {
                    "authoredOn": "2026-01-04",
                    "dispenseRequest": {
                        "validityPeriod": {"start": "2026-01-04", "end": "2026-11"}
                    },
                },
                date(2026, 11, 30),
                "2026-11",
            ),
        ],
    )
    def test_an_end_charted_by_its_month_is_kept_as_charted(
        self,
        t: Terminology,
        rtype: str,
        sent: dict[str, object],
        end: date,
        charted: str | None,
    ) -> None:
        """FHIR Period: a partial end includes its whole span, so the checks read its last day;
        the card shows it as charted ('2026-11'), not as a day still to come this month."""
        [record] = read_records([_trastuzumab(rtype, status="completed", **sent)], t).medications
        assert (record.end, record.end_charted) == (end, charted)

    @pytest.mark.parametrize("sent", ["2026-05-04", "2026"])
    def test_a_start_charted_to_the_day_or_by_year_is_its_first_day(
        self, t: Terminology, sent: str
    ) -> None:
        record = read_records(
            [_trastuzumab("MedicationAdministration", effectiveDateTime=sent)], t
        ).medications[0]
        assert record.started_by == record.start == record.end

    def test_an_active_statement_with_one_old_date_is_current(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        p.med("MedicationStatement", TRAS, status="active", start=290)
        statement = p.resources[-1]
        statement["effectiveDateTime"] = statement.pop("effectivePeriod")["start"]
        assert facts(p, t, params).meds.active("HER2_MAB")

    def test_a_malformed_bound_sets_the_order_aside(self, t: Terminology) -> None:
        bad = _trastuzumab("MedicationRequest", dosageInstruction=[_bounded("01/05/2026")])
        records = read_records([bad], t)
        assert records.medications == ()
        assert "boundsPeriod" in records.excluded[0].location


class TestMedicineNames:
    """A medication record that names no medicine the service can read is named (R0b), never
    taken for some other drug: it may be the bone agent or the HER2 antibody."""

    @pytest.mark.parametrize(
        ("medication", "sent", "left_out"),
        [
            # a reference to a Medication not sent, with no display
            ({"medicationReference": {"reference": "Medication/m9"}}, [], True),
            # the same Medication sent beside it (prefetch `_include`): read
            (
                {"medicationReference": {"reference": "Medication/m9"}},
                [{"resourceType": "Medication", "id": "m9", "code": {"text": "trastuzumab"}}],
                False,
            ),
            # a reference with a display: read by its name
            (
                {"medicationReference": {"reference": "Medication/m9", "display": "Herceptin"}},
                [],
                False,
            ),
            # a display alone (FHIR allows a Reference of a display only): read by its name
            ({"medicationReference": {"display": "Herceptin"}}, [], False),
            # a Reference of nothing at all
            ({"medicationReference": {}}, [], True),
            # an NDC alone, no text
            (
                {
                    "medicationCodeableConcept": {
                        "coding": [
                            {"system": "http://hl7.org/fhir/sid/ndc", "code": "50242-0134-01"}
                        ]
                    }
                },
                [],
                True,
            ),
            # an RxNorm code the knowledge does not list is another drug: the code decides
            (
                {
                    "medicationCodeableConcept": {
                        "coding": [
                            {
                                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                "code": "197361",
                            }
                        ]
                    }
                },
                [],
                False,
            ),
        ],
    )
    def test_a_medicine_with_no_readable_name_is_left_out_and_named(
        self, t: Terminology, medication: dict[str, Any], sent: list[Any], left_out: bool
    ) -> None:
        record = _medication_use("MedicationStatement", "s1", **medication)
        records = read_records([record, *sent], t, patient_id="p1")
        assert [e.ref for e in records.excluded] == (["MedicationStatement/s1"] if left_out else [])
        if left_out:
            assert records.excluded[0].location == "medication[x]"

    def test_another_patients_unnamed_medicine_is_not_named(self, t: Terminology) -> None:
        record = _medication_use(
            "MedicationRequest",
            subject={"reference": "Patient/p2"},
            medicationReference={"reference": "Medication/m9"},
        )
        assert read_records([record], t, patient_id="p1").excluded == ()


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

    @pytest.mark.parametrize(
        ("weight", "creatinine"),
        [
            ({"value": 72, "unit": "kilograms"}, {"value": 88.4, "unit": "micromol/L"}),
            ({"value": 158.73, "unit": "pounds"}, {"value": 1.0, "unit": "mg/dl"}),
        ],
    )
    def test_units_spelled_out(
        self,
        t: Terminology,
        params: Parameters,
        weight: dict[str, object],
        creatinine: dict[str, object],
    ) -> None:
        """Units written as words, with no UCUM code, as some systems send them."""
        p = metastatic()
        p.birth = "1966-11-22"
        p.obs("2160-0", 3, valueQuantity=creatinine)
        p.obs("29463-7", 3, valueQuantity=weight)
        assert facts(p, t, params).renal.crcl == pytest.approx(68, abs=0.1)

    @pytest.mark.parametrize(
        ("code", "read"),
        [
            ("3141-9", True),
            ("8350-1", True),
            ("8351-9", True),
            ("3142-7", False),
            ("8335-2", False),
        ],
    )
    def test_a_measured_weight_under_its_own_loinc_code(
        self, t: Terminology, params: Parameters, code: str, read: bool
    ) -> None:
        """The measured weights of FHIR's vital-signs body-weight set count for Cockcroft-Gault;
        a stated or estimated weight (a LOINC code, which decides) does not."""
        p = metastatic()
        p.birth = "1966-11-22"
        p.obs("2160-0", 3, valueQuantity={"value": 1.0, "unit": "mg/dL", "code": "mg/dL"})
        p.obs(code, 3, valueQuantity={"value": 72, "unit": "kg", "code": "kg"})
        crcl = facts(p, t, params).renal.crcl
        assert crcl == (pytest.approx(68, abs=0.1) if read else None)

    def test_unknown_units_are_not_guessed(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.obs("2160-0", 3, valueQuantity={"value": 90, "unit": "mmol/mol"})
        p.obs("17861-6", 3, valueQuantity={"value": 9, "unit": "furlongs"})
        f = facts(p, t, params)
        assert f.renal.creatinine is None
        assert f.calcium.corrected is None

    @pytest.mark.parametrize(
        ("value", "read"),
        [
            pytest.param({"valueInteger": 58}, 58, id="integer"),
            pytest.param({"valueQuantity": {"value": 58, "unit": "percent"}}, 58, id="percent"),
            # As an echocardiogram report writes it: one number, as a percent.
            pytest.param({"valueString": "58%"}, 58, id="text"),
            pytest.param({"valueString": " 58 % "}, 58, id="text-spaced"),
            pytest.param({"valueString": "57.5 Percent"}, 57.5, id="text-word"),
            pytest.param({"valueString": "58"}, 58, id="text-number"),
            # A range, a bound or a sentence is no measurement: left out (and named).
            pytest.param({"valueString": "55-60%"}, None, id="text-range"),
            pytest.param({"valueString": "> 55%"}, None, id="text-bound"),
            pytest.param({"valueString": "EF 58%"}, None, id="text-sentence"),
            pytest.param({"valueString": "0.58"}, None, id="text-fraction"),
        ],
    )
    def test_lvef_as_sent(
        self, t: Terminology, params: Parameters, value: dict[str, Any], read: float | None
    ) -> None:
        p = metastatic()
        p.obs("18043-0", 3, **value)
        f = facts(p, t, params)
        assert (f.lvef.latest.value if f.lvef.latest else None) == read


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


def test_what_a_concept_remembers_is_kept_apart_for_each_loaded_knowledge(
    t: Terminology, tmp_path: Path
) -> None:
    """A Concept outlives the knowledge it was matched against (it is shared across calls):
    knowledge loaded again with a value set changed must get its own answer, not the memo's."""
    changed = tmp_path / "cards"
    shutil.copytree(REPO_CARDS, changed)
    creatinine = changed / "valuesets" / "creatinine.yaml"
    creatinine.write_text(creatinine.read_text().replace('code: "2160-0"', 'code: "0000-0"'))
    other = load_terminology(changed)
    code = concept({"coding": [{"system": "http://loinc.org", "code": "2160-0"}]})
    for _ in range(2):  # the second time from the memo
        assert t["creatinine"].matches(code)
        assert not other["creatinine"].matches(code)


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
    # A copy with a result set aside (dataclasses.replace) works its picks out again: the
    # memos of the chart it was copied from held the result.
    fewer = replace(only, observations=only.observations[:1])
    assert ids(fewer.observations_in(t["creatinine"])) == ["c1"]
    assert ids(only.observations_in(t["creatinine"])) == ["c1", "c2"]
