"""R0b: chart resources a rule would read that were left out are named, never dropped unseen."""

from __future__ import annotations

import pytest

from cds.parameters import Parameters
from cds.terminology import Terminology
from fixtures.factories import (
    ICD10,
    TRAS,
    XGEVA,
    ZOL4,
    Patient,
    draft_med,
    given_every_3_weeks,
)
from tests.rules.helpers import bone_patient, concerns, facts, lines, run, text


def _creatinine(p: Patient, value: object) -> None:
    p.obs("2160-0", 3, valueQuantity={"value": value, "unit": "mg/dL"})


class TestLeftOut:
    def test_nothing_left_out_no_card(self, t: Terminology, params: Parameters) -> None:
        assert not [c for c in concerns(run(bone_patient(), t, params)) if c.startswith("R0b")]

    def test_each_resource_left_out_is_named_with_where_and_why(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient()
        _creatinine(p, "not-a-number")  # fails its check
        _creatinine(p, 0)  # no patient has it
        [card] = [d for d in run(p, t, params) if d.rule == "R0b"]
        assert (card.variant, card.indicator) == ("left-out", "info")
        assert card.bindings["count"] == "2"
        named = lines(card)
        assert any(
            line.startswith("Observation/obs-")
            and line.endswith(": not valid FHIR R4 at valueQuantity.value")
            for line in named
        )
        assert any(
            line.endswith(": Serum creatinine 0 mg/dL, a value no patient can have")
            for line in named
        )
        assert len(card.refs) == 2
        assert all(r.startswith("Observation/obs-") for r in card.refs)

    def test_dates_after_today_set_aside_are_named_on_a_card_of_their_own(
        self, t: Terminology, params: Parameters
    ) -> None:
        """A Condition typed a year ahead is read without the date, not left out: its dates
        are named on a card of their own, one line and one count per resource, and the left-
        out card (and the note on every card) stays for resources left out."""
        p = bone_patient()
        met = next(r for r in p.resources if r["resourceType"] == "Condition" and "bone" in str(r))
        met["onsetDateTime"] = met["recordedDate"] = p.day(-300)
        mscc = p.condition(ICD10, "G95.20", "Unspecified cord compression", 3)
        mscc["abatementDateTime"] = p.day(-360)
        decisions = [d for d in run(p, t, params) if d.rule == "R0b"]
        [card] = decisions
        assert (card.variant, card.indicator) == ("dates-after-today", "info")
        assert card.bindings["count"] == "2"
        assert card.refs == (f"Condition/{met['id']}", f"Condition/{mscc['id']}")
        assert [text(x) for x in card.data] == [
            f"Condition/{met['id']}: onset {p.day(-300)} and recorded date {p.day(-300)} are "
            "after today: set aside, the condition read as present with no date",
            f"Condition/{mscc['id']}: abatement {p.day(-360)} is after today: set aside, the "
            "condition read as not abated",
        ]
        _creatinine(p, 0)  # and a resource left out: both cards
        assert sorted(d.variant for d in run(p, t, params) if d.rule == "R0b") == [
            "dates-after-today",
            "left-out",
        ]

    def test_an_active_status_set_aside_for_the_doses_charted_is_named(
        self, t: Terminology, params: Parameters
    ) -> None:
        """An adjuvant trastuzumab order never closed, its doses charted until three years ago:
        read as ended with its last dose, and named with it on a card of its own."""
        p = bone_patient()
        order = p.med("MedicationRequest", TRAS, status="active", start=1400)
        given_every_3_weeks(p, TRAS, last=1100, doses=17)
        last = p.resources[-1]
        [card] = [d for d in run(p, t, params) if d.rule == "R0b"]
        assert (card.variant, card.indicator) == ("status-set-aside", "info")
        assert card.bindings["count"] == "1"
        assert card.refs == (f"MedicationRequest/{order['id']}",)
        assert [text(x) for x in card.data] == [
            f"MedicationRequest/{order['id']} (trastuzumab): recorded as active since "
            f"{p.day(1400)}, but its last dose was charted on {p.day(1100)} "
            f"(MedicationAdministration/{last['id']}), more than 180 days ago: read as ended "
            "that day"
        ]

    def test_a_result_reported_as_a_bound_is_named_and_not_used(
        self, t: Terminology, params: Parameters
    ) -> None:
        """'< 0.5 mg/dL' is a bound, not a creatinine: Cockcroft-Gault is not computed from
        it as if it were one; the card says what was sent."""
        p = bone_patient()
        p.obs("2160-0", 1, valueQuantity={"value": 0.5, "comparator": "<", "unit": "mg/dL"})
        f = facts(p, t, params)
        assert f.renal.creatinine is not None
        assert f.renal.creatinine.value == 0.8  # the measurement before it
        [card] = [d for d in run(p, t, params) if d.rule == "R0b"]
        assert any(
            line.endswith(
                ": Serum creatinine < 0.5 mg/dL: a bound, not a measurement the checks can use"
            )
            for line in lines(card)
        )

    @pytest.mark.parametrize(
        ("quantity", "said"),
        [
            ({"value": 3.0}, "Serum creatinine 3 with no unit: the checks do not guess one"),
            (
                {"value": 0.3, "unit": "mmol/L"},
                "Serum creatinine 0.3 in 'mmol/L', a unit the checks do not read",
            ),
        ],
    )
    def test_a_result_in_a_unit_not_read_is_named(
        self, t: Terminology, params: Parameters, quantity: dict[str, object], said: str
    ) -> None:
        """A newer creatinine the checks cannot read used to be passed over for an older one
        with nothing said: the card now names it, beside the dated value the checks used."""
        p = bone_patient()
        p.obs("2160-0", 1, valueQuantity=quantity)
        [card] = [d for d in run(p, t, params) if d.rule == "R0b"]
        assert any(line.endswith(": " + said) for line in lines(card))

    @pytest.mark.parametrize("value", [{"value": 0.46}, {"value": 0.46, "unit": "%"}])
    def test_an_lvef_of_1_or_less_is_no_percent(
        self, t: Terminology, params: Parameters, value: dict[str, object]
    ) -> None:
        """0.46 is 46% sent as a fraction without its unit: read as 0.46% it was a critical
        'withhold' card. It is left out and named, never multiplied."""
        p = bone_patient()
        p.obs("10230-1", 10, valueQuantity=value)
        f = facts(p, t, params)
        assert f.lvef.latest is None
        assert [e.location for e in f.excluded] == ["valueQuantity.value"]

    def test_every_hook(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient()
        _creatinine(p, "not-a-number")
        for hook in ("patient-view", "order-select", "order-sign"):
            assert "R0b:left-out" in concerns(run(p, t, params, hook))


class TestDiagnosisLeftOut:
    """F1 unmet because its own evidence was left out: R0b alone says so."""

    def _unreadable_breast_cancer(self) -> Patient:
        p = bone_patient()
        [breast] = [
            r for r in p.resources if r["resourceType"] == "Condition" and "254837009" in str(r)
        ]
        breast["onsetDateTime"] = "2022-02-30"
        return p

    def test_only_r0b_runs_and_warns(self, t: Terminology, params: Parameters) -> None:
        p = self._unreadable_breast_cancer()
        f = facts(p, t, params)
        assert not f.disease.breast_cancer.present
        assert f.disease.bone.present  # R1 would fire for breast cancer: it must not run
        [card] = run(p, t, params)
        assert (card.concern, card.indicator) == ("R0b:diagnosis-left-out", "warning")
        assert card.refs == f.breast_cancer_left_out

    def test_a_readable_breast_cancer_beside_it_runs_every_rule(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = self._unreadable_breast_cancer()
        p.breast_cancer(1400)
        got = concerns(run(p, t, params))
        assert "R0b:left-out" in got
        assert "R0b:diagnosis-left-out" not in got
        assert len(got) > 1

    def test_not_a_breast_cancer_patient_gets_no_card(
        self, t: Terminology, params: Parameters
    ) -> None:
        """Most charts an EHR opens: something left out is not this service's to say."""
        p = Patient("other")
        p.condition(
            "http://snomed.info/sct", "94222008", "Secondary malignant neoplasm of bone", 60
        )
        _creatinine(p, "not-a-number")
        assert facts(p, t, params).excluded
        assert run(p, t, params) == []

    @pytest.mark.parametrize("metastatic", [True, False])
    def test_a_history_of_breast_cancer_counts_only_with_a_metastasis(
        self, t: Terminology, params: Parameters, metastatic: bool
    ) -> None:
        """As F1 reads it (D11): a personal history left out is this service's patient only
        when a metastasis is recorded."""
        p = Patient("history")
        history = p.condition(
            ICD10, "Z85.3", "Personal history of malignant neoplasm of breast", 1800
        )
        history["recordedDate"] = "last year"  # fails its check
        if metastatic:
            p.bone_mets(60)
        expected = ["R0b:diagnosis-left-out"] if metastatic else []
        assert concerns(run(p, t, params)) == expected

    def test_a_metastasis_left_out_beside_a_history_of_breast_cancer(
        self, t: Terminology, params: Parameters
    ) -> None:
        """D11 needs the history and a metastasis: with the metastasis left out, F1 fails for
        want of readable evidence, and R0b says so (it used to be silent)."""
        p = Patient("history")
        p.condition(ICD10, "Z85.3", "Personal history of malignant neoplasm of breast", 1800)
        p.bone_mets(60)
        [bone] = [r for r in p.resources if "94222008" in str(r)]
        [bone["code"]["coding"]] = bone["code"]["coding"]  # one object: fails its check
        assert concerns(run(p, t, params)) == ["R0b:diagnosis-left-out"]


def _as_text(p: Patient, loinc: str) -> str:
    """Send a lab's result as text (its number and unit written out): left out unread."""
    [r] = [r for r in p.resources if loinc in str(r.get("code"))]
    q = r.pop("valueQuantity")
    r["valueString"] = f"{q['value']} {q['unit']}"
    return f"Observation/{r['id']}"


class TestMissingButOnRecord:
    """A result on record that could not be read is named where the card says what is missing:
    a lab drawn is unreadable, not missing."""

    @pytest.mark.parametrize(
        ("loinc", "draft", "concern", "missing"),
        [
            ("2160-0", ZOL4, "R2:no-creatinine", "serum creatinine within 30 days"),
            ("29463-7", ZOL4, "R2:crcl-unknown", "body weight within 90 days"),
            ("17861-6", XGEVA, "R3a:calcium-unknown", "serum calcium within 30 days"),
        ],
    )
    def test_on_the_order_cards(
        self,
        t: Terminology,
        params: Parameters,
        loinc: str,
        draft: tuple[str, str],
        concern: str,
        missing: str,
    ) -> None:
        p = bone_patient()
        ref = _as_text(p, loinc)
        drafts = [draft_med("p", "d1", draft, "as ordered", 4 if draft == ZOL4 else 120)]
        [d] = [d for d in run(p, t, params, "order-select", drafts) if d.concern == concern]
        assert f"{missing} that can be read: {ref} left out" in [text(m) for m in d.missing]

    def test_on_the_start_card_and_the_calcium_check(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient()
        ref = _as_text(p, "17861-6")
        [d] = [d for d in run(p, t, params) if d.rule == "R1"]
        said = "serum calcium (and albumin) within the freshness window that can be read"
        assert f"{said}: {ref} left out" in [text(m) for m in d.missing]
        p.med("MedicationStatement", XGEVA, status="active", start=200)
        [d] = [d for d in run(p, t, params) if d.rule == "R3c"]
        said = "serum calcium within 35 days that can be read"
        assert f"{said}: {ref} left out" in [text(m) for m in d.missing]

    def test_an_older_unread_result_is_not_named(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient()
        p.resources = [r for r in p.resources if "2160-0" not in str(r.get("code"))]
        p.obs("2160-0", 45, valueString="0.9 mg/dL")  # outside the 30 days: not this window's
        drafts = [draft_med("p", "d1", ZOL4, "as ordered", 4)]
        [d] = [
            d for d in run(p, t, params, "order-select", drafts) if d.concern == "R2:no-creatinine"
        ]
        assert [text(m) for m in d.missing] == ["serum creatinine within 30 days"]


class TestDraftOfAnotherPatient:
    """R0: a draft whose subject is another patient is not checked against this chart."""

    @pytest.mark.parametrize(
        ("subject", "another"),
        [
            ("Patient/someone-else", True),
            ("https://ehr.example.org/fhir/Patient/someone-else", True),
            ("Patient/someone-else/_history/2", True),
            ("Patient/p", False),
            ("https://ehr.example.org/fhir/Patient/p/_history/1", False),
            ("urn:uuid:7f1c7a4e-0000-4000-8000-000000000000", False),  # not read as an id
            (None, False),  # no subject: the context's patient
        ],
    )
    def test_by_its_subject(
        self, t: Terminology, params: Parameters, subject: str | None, another: bool
    ) -> None:
        draft = draft_med("p", "zol", ZOL4, "4 mg IV over 15 minutes", 4)
        if subject is None:
            del draft["subject"]
        else:
            draft["subject"] = {"reference": subject}
        found = concerns(run(bone_patient(dental=False), t, params, "order-sign", [draft]))
        mine = ["R4b:dental-before-bma", "R3b:supplement-with-order"]
        assert found == (["R0:another-patient"] if another else mine)

    def test_named_on_its_own_card_beside_an_unreadable_one(
        self, t: Terminology, params: Parameters
    ) -> None:
        other = draft_med("someone-else", "xgeva", XGEVA, "120 mg SC", 120)
        unnamed = draft_med("p", "ref", XGEVA, "120 mg SC", 120)
        del unnamed["medicationCodeableConcept"]
        unnamed["medicationReference"] = {"reference": "Medication/absent"}
        out = {d.concern: d for d in run(bone_patient(), t, params, "order-sign", [other, unnamed])}
        assert sorted(out) == ["R0:another-patient", "R0:unreadable"]
        card = out["R0:another-patient"]
        assert card.refs == ("MedicationRequest/xgeva",)
        assert lines(card)[0] == (
            "MedicationRequest/xgeva: an order for Patient/someone-else, not for the patient in "
            "context"
        )
        assert out["R0:unreadable"].refs == ("MedicationRequest/ref",)

    def test_order_select_names_it_whichever_draft_is_selected(
        self, t: Terminology, params: Parameters
    ) -> None:
        """As an unreadable draft is: never passed over silently because another was chosen."""
        other = draft_med("someone-else", "xgeva", XGEVA, "120 mg SC", 120)
        mine = draft_med("p", "zol", ZOL4, "4 mg IV over 15 minutes", 4)
        for selected in ("xgeva", "zol"):
            chosen = [f"MedicationRequest/{selected}"]
            out = run(bone_patient(), t, params, "order-select", [other, mine], chosen)
            assert [c for c in concerns(out) if c.startswith("R0")] == ["R0:another-patient"]
