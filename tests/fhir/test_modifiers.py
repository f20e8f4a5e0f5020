"""FHIR modifiers: a resource whose meaning one can turn around is never read as ordinary."""

from __future__ import annotations

from typing import Any

import pytest

from cds.facts.orders import read_draft_orders
from cds.fhir.conformance import Checker
from cds.fhir.modifiers import modifier_of, unconfirmed_status
from cds.fhir.reading import read_records
from cds.fhir.screening import entered_in_error
from cds.said import Said
from cds.terminology import Terminology

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ZOL = {"coding": [{"system": RXNORM, "code": "1114085"}], "text": "zoledronic acid 4 mg"}
LOCAL = {"url": "http://example.org/fhir/StructureDefinition/result-invalidated"}


def order(**more: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": "zol",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p"},
        "medicationCodeableConcept": ZOL,
        "authoredOn": "2026-11-20",
        **more,
    }


def creatinine(**more: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "cr",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0"}]},
        "effectiveDateTime": "2026-11-30",
        "valueQuantity": {"value": 0.8, "unit": "mg/dL", "code": "mg/dL"},
        **more,
    }


class TestWhereAModifierStands:
    def test_an_order_not_to_give_names_what_it_forbids(self) -> None:
        found = modifier_of(order(doNotPerform=True))
        assert found == ("doNotPerform", Said("request-not-to-perform", (("what", ZOL["text"]),)))

    def test_a_service_request_not_to_perform_is_one_too(self) -> None:
        request = {"resourceType": "ServiceRequest", "doNotPerform": True, "code": {}}
        assert modifier_of(request) == ("doNotPerform", Said("request-not-to-perform-unnamed", ()))

    @pytest.mark.parametrize("flag", [False, None])
    def test_an_order_to_give_carries_no_modifier(self, flag: bool | None) -> None:
        sent = order() if flag is None else order(doNotPerform=flag)
        assert modifier_of(sent) is None

    def test_do_not_perform_as_text_is_taken_at_its_word(self) -> None:
        """A draft order is not field-checked: "true" sent as text is no order to give."""
        assert modifier_of(order(doNotPerform="true")) is not None

    def test_only_requests_have_do_not_perform(self) -> None:
        """A statement has no such element in R4: one sent is a field nothing reads."""
        statement = order(resourceType="MedicationStatement", doNotPerform=True)
        assert modifier_of(statement) is None

    @pytest.mark.parametrize(
        ("resource", "where"),
        [
            (creatinine(modifierExtension=[LOCAL]), "modifierExtension"),
            (
                creatinine(referenceRange=[{"text": "x"}, {"modifierExtension": [LOCAL]}]),
                "referenceRange[1].modifierExtension",
            ),
            (
                creatinine(component=[{"modifierExtension": [LOCAL]}]),
                "component[0].modifierExtension",
            ),
            (
                order(dosageInstruction=[{"text": "4 mg"}, {"modifierExtension": [LOCAL]}]),
                "dosageInstruction[1].modifierExtension",
            ),
            (
                order(dosageInstruction=[{"timing": {"modifierExtension": [LOCAL]}}]),
                "dosageInstruction[0].timing.modifierExtension",
            ),
            (
                order(dispenseRequest={"modifierExtension": [LOCAL]}),
                "dispenseRequest.modifierExtension",
            ),
        ],
    )
    def test_a_modifier_extension_where_the_records_read(
        self, resource: dict[str, Any], where: str
    ) -> None:
        found = modifier_of(resource)
        assert found is not None
        assert found[0] == where
        assert found[1] == Said("modifier-extension", (("urls", LOCAL["url"]),))

    def test_a_modifier_extension_where_nothing_is_read_changes_nothing(self) -> None:
        assert modifier_of(order(substitution={"modifierExtension": [LOCAL]})) is None

    def test_a_modifier_extension_without_a_url_is_one_still(self) -> None:
        found = modifier_of(creatinine(modifierExtension=[{"valueBoolean": True}]))
        assert found == ("modifierExtension", Said("modifier-extension-no-url", ()))


class TestTheChart:
    def test_an_order_not_to_give_is_read_as_one(self, t: Terminology) -> None:
        """The chart's reader keeps it: its medicine is then not offered (tests/rules)."""
        records = read_records([order(doNotPerform=True)], t, patient_id="p")
        assert [m.do_not_perform for m in records.medications] == [True]
        assert records.excluded == ()
        assert [m.do_not_perform for m in read_records([order()], t).medications] == [False]

    def test_a_service_request_not_to_perform_is_left_out_and_named(self, t: Terminology) -> None:
        referral = {
            "resourceType": "ServiceRequest",
            "id": "s",
            "status": "active",
            "intent": "order",
            "doNotPerform": True,
            "code": {"text": "Dental referral"},
        }
        records = read_records([referral], t)
        assert records.activities == ()
        assert [e.location for e in records.excluded] == ["doNotPerform"]
        assert len(read_records([referral | {"doNotPerform": False}], t).activities) == 1

    def test_a_modifier_extension_on_an_order_not_to_give_still_counts(
        self, t: Terminology
    ) -> None:
        sent = order(doNotPerform=True, modifierExtension=[LOCAL])
        [left_out] = read_records([sent], t).excluded
        assert left_out.location == "modifierExtension"

    @pytest.mark.parametrize("mode", ["fields", "full"])
    def test_a_modified_result_is_left_out_in_both_modes(self, t: Terminology, mode: Any) -> None:
        records = read_records([creatinine(modifierExtension=[LOCAL])], t, Checker(mode))
        assert records.observations == ()
        assert [e.location for e in records.excluded] == ["modifierExtension"]

    @pytest.mark.parametrize("mode", ["fields", "full"])
    def test_do_not_perform_that_is_not_a_boolean_is_invalid(
        self, t: Terminology, mode: Any
    ) -> None:
        records = read_records([order(doNotPerform="true")], t, Checker(mode))
        assert records.medications == ()
        [left_out] = records.excluded
        assert left_out.location == "doNotPerform"
        assert isinstance(left_out.reason, str)  # the check's words: not valid FHIR R4


class TestDraftOrders:
    def test_a_draft_not_to_give_is_named_not_checked(self, t: Terminology) -> None:
        draft = order(status="draft", intent="proposal", id="d1", doNotPerform=True)
        drafts = read_draft_orders([draft], ["MedicationRequest/d1"], t)
        assert drafts.medications == ()
        [unread] = drafts.unreadable
        assert (unread.ref, unread.selected) == ("MedicationRequest/d1", True)
        assert unread.reason.key == "request-not-to-perform"

    def test_a_dental_extraction_not_to_be_done_is_no_extraction(self, t: Terminology) -> None:
        extraction = {
            "resourceType": "ServiceRequest",
            "id": "s1",
            "status": "draft",
            "intent": "proposal",
            "doNotPerform": True,
            "code": {"text": "Tooth extraction"},
        }
        drafts = read_draft_orders([extraction], [], t)
        assert drafts.services == ()
        assert [u.ref for u in drafts.unreadable] == ["ServiceRequest/s1"]
        without = read_draft_orders([extraction | {"doNotPerform": False}], [], t)
        assert [s.invasive_dental for s in without.services] == [True]

    def test_a_draft_with_a_modifier_on_its_dosing_is_not_checked(self, t: Terminology) -> None:
        draft = order(id="d2", dosageInstruction=[{"text": "4 mg", "modifierExtension": [LOCAL]}])
        drafts = read_draft_orders([draft], [], t)
        assert drafts.medications == ()
        assert drafts.unreadable[0].reason.key == "modifier-extension"


def condition(code: dict[str, Any], status: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Condition",
        "id": "c",
        "code": code,
        "onsetDateTime": "2026-10-01",
    }
    if status is not None:
        system = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
        out["verificationStatus"] = {"coding": [{"system": system, "code": status}]}
    return out


BONE_METASTASIS = {
    "coding": [{"system": "http://snomed.info/sct", "code": "94222008"}],
    "text": "Secondary malignant neoplasm of bone",
}


class TestUnconfirmedDiagnoses:
    """Condition.verificationStatus is a modifier: a suspected diagnosis starts no treatment."""

    @pytest.mark.parametrize("status", ["unconfirmed", "provisional", "differential"])
    def test_a_suspected_metastasis_is_left_out_and_named(
        self, t: Terminology, status: str
    ) -> None:
        records = read_records([condition(BONE_METASTASIS, status)], t)
        assert records.conditions == ()
        [left_out] = records.excluded
        assert (left_out.ref, left_out.location) == ("Condition/c", "verificationStatus")
        assert left_out.reason == Said("condition-unconfirmed", (("status", status),))

    @pytest.mark.parametrize("status", ["confirmed", None])
    def test_a_confirmed_metastasis_is_read(self, t: Terminology, status: str | None) -> None:
        records = read_records([condition(BONE_METASTASIS, status)], t)
        assert len(records.conditions) == 1
        assert records.excluded == ()

    def test_a_suspected_breast_cancer_written_out_is_left_out(self, t: Terminology) -> None:
        records = read_records([condition({"text": "Carcinoma of breast"}, "differential")], t)
        assert records.conditions == ()
        assert [e.location for e in records.excluded] == ["verificationStatus"]

    @pytest.mark.parametrize("text", ["Pneumonitis", "Spinal cord compression"])
    def test_a_suspected_toxicity_or_emergency_still_counts(
        self, t: Terminology, text: str
    ) -> None:
        """A suspected ILD interrupts T-DXd and a suspected cord compression needs an MRI: the
        cards they raise are safety checks, so the suspicion is read."""
        records = read_records([condition({"text": text}, "provisional")], t)
        assert len(records.conditions) == 1
        assert records.excluded == ()


class TestTheMedicationNamed:
    """A record's medicine is what its Medication says: a modifier extension there counts."""

    def medicine(self, **more: Any) -> dict[str, Any]:
        return {"resourceType": "Medication", "id": "m", "code": ZOL, **more}

    def statement(self, reference: str, **more: Any) -> dict[str, Any]:
        return {
            "resourceType": "MedicationStatement",
            "id": "s",
            "status": "active",
            "medicationReference": {"reference": reference},
            "effectiveDateTime": "2026-11-20",
            **more,
        }

    @pytest.mark.parametrize(
        "medicine",
        [{"modifierExtension": [LOCAL]}, {"ingredient": [{"modifierExtension": [LOCAL]}]}],
    )
    def test_one_sent_beside_the_record(self, t: Terminology, medicine: dict[str, Any]) -> None:
        records = read_records([self.statement("Medication/m"), self.medicine(**medicine)], t)
        assert records.medications == ()
        [left_out] = records.excluded
        assert left_out.location == "medicationReference"
        assert left_out.reason == Said("medication-modifier-extension", (("urls", LOCAL["url"]),))

    def test_one_whose_extension_has_no_url(self, t: Terminology) -> None:
        medicine = self.medicine(modifierExtension=[{"valueBoolean": True}])
        [left_out] = read_records([self.statement("Medication/m"), medicine], t).excluded
        assert left_out.reason == Said("medication-modifier-extension-no-url", ())

    def test_one_contained_in_the_record(self, t: Terminology) -> None:
        contained = [self.medicine(id="c", modifierExtension=[LOCAL])]
        records = read_records([self.statement("#c", contained=contained)], t)
        assert [e.location for e in records.excluded] == ["medicationReference"]

    def test_one_without_a_modifier_is_read(self, t: Terminology) -> None:
        records = read_records([self.statement("Medication/m"), self.medicine()], t)
        assert len(records.medications) == 1
        assert records.excluded == ()

    @pytest.mark.parametrize(
        "reference",
        [
            "https://ehr.example.org/fhir/Medication/m",
            "http://ehr.example.org/fhir/Medication/m/_history/3",
            "Medication/m/_history/3",
            "m",
        ],
    )
    def test_one_named_absolute_or_by_version_is_read(self, t: Terminology, reference: str) -> None:
        """FHIR R4 lets a reference be absolute or name a version: the Medication sent beside
        the record is still the one it names. An absolute reference was read as a Medication
        that did not come: the denosumab in use named so was left out, and 'start a
        bone-modifying agent' shown (found by sending every reference of the scenario library
        absolute)."""
        records = read_records([self.statement(reference), self.medicine()], t)
        assert [c.code for m in records.medications for c in m.medication.codings] == ["1114085"]
        assert records.excluded == ()

    @pytest.mark.parametrize(
        ("full_url", "reference", "read"),
        [
            ("urn:uuid:0c3d7f0e-5b8a-4c1e-9f55-3b2a1d4e6f70",) * 2 + (True,),
            ("https://ehr.example.org/fhir/Medication/m", "Medication/m", True),
            ("urn:uuid:0c3d7f0e-5b8a-4c1e-9f55-3b2a1d4e6f70", "urn:uuid:another", False),
        ],
    )
    def test_a_draft_naming_one_by_its_entry_full_url_is_checked(
        self, t: Terminology, full_url: str, reference: str, read: bool
    ) -> None:
        """Entries of one draftOrders Bundle may name each other by fullUrl (urn:uuid), as
        FHIR R4 Bundles do: the draft's drug is the Medication of that entry. Before, such a
        draft was 'could not be checked' (R0). A urn no entry holds stays unread."""
        draft = order(id="d", medicationReference={"reference": reference}, status="draft")
        del draft["medicationCodeableConcept"]
        bundle = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": draft}, {"fullUrl": full_url, "resource": self.medicine()}],
        }
        drafts = read_draft_orders(bundle, [], t)
        assert [d.ref for d in drafts.medications] == (["MedicationRequest/d"] if read else [])
        assert [u.reason.key for u in drafts.unreadable] == (
            [] if read else ["medication-reference-missing"]
        )

    def test_a_draft_naming_one_is_not_checked(self, t: Terminology) -> None:
        draft = order(id="d", medicationReference={"reference": "Medication/m"}, status="draft")
        del draft["medicationCodeableConcept"]
        bundle = [draft, self.medicine(modifierExtension=[LOCAL])]
        drafts = read_draft_orders(bundle, [], t)
        assert drafts.medications == ()
        assert drafts.unreadable[0].reason.key == "medication-modifier-extension"


@pytest.mark.parametrize("code", [["refuted"], {"code": "refuted"}, 7, None])
def test_a_verification_status_code_that_is_not_a_string_is_no_status(code: Any) -> None:
    """A coding's code sent as a list was looked up in a set: a TypeError, a 500 (found by a
    sweep of every prefetch value sent as a list)."""
    condition = {
        "resourceType": "Condition",
        "verificationStatus": {"coding": [{"code": code}]},
        "code": {"text": "Secondary malignant neoplasm of bone"},
    }
    assert unconfirmed_status(condition) is None
    assert not entered_in_error(condition)
