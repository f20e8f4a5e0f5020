"""R1 start a bone-modifying agent (rules/bone.py)."""

from __future__ import annotations

import pytest

from cds.facts.orders import NO_DRAFTS
from cds.parameters import Parameters
from cds.rules import RegimenOrder, evaluate
from cds.terminology import Terminology
from fixtures.factories import (
    PAMIDRONATE,
    XGEVA,
    ZOL4,
)
from tests.rules.helpers import bone_patient, concerns, creatinine_for, facts, run, text


class TestR1BoneAgent:
    def test_bone_mets_without_bma_is_a_warning(self, t: Terminology, params: Parameters) -> None:
        d = run(bone_patient(), t, params)
        assert concerns(d) == ["R1:start"]
        assert d[0].indicator == "warning"
        assert [p.key for p in d[0].proposals] == [
            "denosumab",
            "zoledronic-acid-12-weekly",
            "zoledronic-acid-4-weekly",
            "pamidronate",
        ]

    def test_on_oncologic_bma_no_card(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient()
        p.med("MedicationStatement", XGEVA, status="active", start=20)
        assert "R1:start" not in concerns(run(p, t, params))

    def test_unknown_renal_function_prefills_no_bisphosphonate(
        self, t: Terminology, params: Parameters
    ) -> None:
        """C2: without Cockcroft-Gault no dose band is chosen; the card says what is missing."""
        p = bone_patient()
        p.resources = [r for r in p.resources if "2160-0" not in str(r.get("code"))]
        d = run(p, t, params)[0]
        assert [x.key for x in d.proposals] == ["denosumab"]
        assert {"zoledronic-acid-renal-unknown", "pamidronate-renal-unknown"} <= set(d.note_keys)
        assert any("creatinine" in text(m) for m in d.missing)

    def test_egfr_never_stands_in_for_crcl(self, t: Terminology, params: Parameters) -> None:
        """C2: an 84-year-old, creatinine 1.4, eGFR 36, no weight: no zoledronic dose from eGFR
        (Cockcroft-Gault at 50 kg would be about 24 mL/min: not recommended)."""
        p = bone_patient(age_birth="1942-06-01", creatinine=1.4)
        p.resources = [r for r in p.resources if "29463-7" not in str(r.get("code"))]
        p.obs("98979-8", 7, valueQuantity={"value": 36, "unit": "mL/min/{1.73_m2}"})
        f = facts(p, t, params)
        assert f.renal.crcl is None
        assert f.renal.egfr is not None
        d = evaluate("patient-view", f, NO_DRAFTS, params)[0]
        assert [x.key for x in d.proposals] == ["denosumab"]
        assert any("body weight" in text(m) for m in d.missing)
        assert all("3 mg" not in str(x) for x in d.proposals)

    @pytest.mark.parametrize(
        ("crcl", "zoledronic_dose", "offered"),
        [
            pytest.param(29, None, False, id="crcl-29-not-offered"),
            pytest.param(30, "3 mg", True, id="crcl-30-3.0mg"),
            pytest.param(39, "3 mg", True, id="crcl-39-3.0mg"),
            pytest.param(40, "3.3 mg", True, id="crcl-40-3.3mg"),
            pytest.param(49, "3.3 mg", True, id="crcl-49-3.3mg"),
            pytest.param(50, "3.5 mg", True, id="crcl-50-3.5mg"),
            pytest.param(60, "3.5 mg", True, id="crcl-60-3.5mg"),
            pytest.param(61, "4 mg", True, id="crcl-61-full-dose"),
        ],
    )
    def test_zoledronic_dose_by_crcl(
        self,
        t: Terminology,
        params: Parameters,
        crcl: float,
        zoledronic_dose: str | None,
        offered: bool,
    ) -> None:
        p = bone_patient(age_birth="1964-05-17", creatinine=creatinine_for(crcl))
        f = facts(p, t, params)
        assert f.renal.crcl == pytest.approx(crcl, abs=0.01)
        d = evaluate("patient-view", f, NO_DRAFTS, params)[0]
        zol = [p for p in d.proposals if p.key.startswith("zoledronic-acid")]
        assert len(zol) == (2 if offered else 0)  # the 12-weekly and 4-weekly choices
        for choice in zol:
            order = choice.actions[0]
            assert isinstance(order, RegimenOrder)
            assert order.dose == zoledronic_dose

    @pytest.mark.parametrize(
        ("weight", "crcl_known"),
        [pytest.param(68.0, True, id="with-weight"), pytest.param(None, False, id="no-weight")],
    )
    def test_crcl_bands_need_a_weight(
        self, t: Terminology, params: Parameters, weight: float | None, crcl_known: bool
    ) -> None:
        """CrCl 45 by Cockcroft-Gault gives 3.3 mg; the same creatinine without a weight gives
        no band at all (C2)."""
        p = bone_patient(creatinine=creatinine_for(45))
        if weight is None:
            p.resources = [r for r in p.resources if "29463-7" not in str(r.get("code"))]
        d = run(p, t, params)[0]
        doses = {
            a.dose
            for x in d.proposals
            for a in x.actions
            if isinstance(a, RegimenOrder) and a.key.startswith("zoledronic")
        }
        assert doses == ({"3.3 mg"} if crcl_known else set())

    def test_hypocalcaemia_prefills_no_agent(self, t: Terminology, params: Parameters) -> None:
        """§3c D4 (overriding §3): hypocalcaemia blocks every pre-filled agent, not denosumab
        alone - each can lower calcium further."""
        d = run(bone_patient(calcium=7.8), t, params)[0]
        assert (d.concern, d.proposals) == ("R1:held-hypocalcaemia", ())

    def test_allergy_removes_the_agent(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient()
        p.allergy("993449", "Denosumab")
        d = run(p, t, params)[0]
        assert [x.key for x in d.proposals] == [
            "zoledronic-acid-12-weekly",
            "zoledronic-acid-4-weekly",
            "pamidronate",
        ]

    @pytest.mark.parametrize(
        ("status", "offered"),
        [("active", False), (None, False), ("inactive", True), ("resolved", True)],
    )
    def test_an_allergy_no_longer_a_risk_removes_nothing(
        self, t: Terminology, params: Parameters, status: str | None, offered: bool
    ) -> None:
        """AllergyIntolerance.clinicalStatus is a FHIR modifier: 'inactive' (the patient is no
        longer at risk of a reaction) and 'resolved' lift the allergy; active, or no status,
        keep it. (An inactive allergy to denosumab used to keep it off the card.)"""
        p = bone_patient()
        p.allergy("993449", "Denosumab")
        if status is not None:
            p.resources[-1]["clinicalStatus"] = {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                        "code": status,
                    }
                ]
            }
        d = run(p, t, params)[0]
        assert ("denosumab" in [x.key for x in d.proposals]) is offered
        assert ("denosumab-allergy" in d.note_keys) is not offered

    def test_an_allergy_to_bisphosphonates_removes_every_bisphosphonate(
        self, t: Terminology, params: Parameters
    ) -> None:
        """An allergy recorded to the class, as words: zoledronic acid and pamidronate are not
        offered, each named; denosumab is."""
        p = bone_patient()
        p.allergy("993449", "Denosumab")
        p.resources[-1]["code"] = {"text": "Bisphosphonates"}
        d = run(p, t, params)[0]
        assert [x.key for x in d.proposals] == ["denosumab"]
        assert {"zoledronic-acid-allergy", "pamidronate-allergy"} <= set(d.note_keys)

    def test_an_order_not_to_give_removes_the_agent_and_is_named(
        self, t: Terminology, params: Parameters
    ) -> None:
        """An order not to give zoledronic acid (doNotPerform) is the clinician's decision about
        that agent: it is no course of it (R1 still fires) and it is not offered."""
        p = bone_patient()
        order = p.med("MedicationRequest", ZOL4, status="active", start=10, mg=4)
        order["doNotPerform"] = True
        d = run(p, t, params)[0]
        assert d.concern == "R1:start"
        assert [x.key for x in d.proposals] == ["denosumab", "pamidronate"]
        assert "zoledronic-acid-prohibited" in d.note_keys
        assert f"MedicationRequest/{order['id']}" in d.refs
        assert any("Order not to give zoledronic acid" in text(x) for x in d.data)

    @pytest.mark.parametrize("status", ["completed", "stopped", "cancelled"])
    def test_an_order_not_to_give_that_was_lifted_removes_nothing(
        self, t: Terminology, params: Parameters, status: str
    ) -> None:
        p = bone_patient()
        p.med("MedicationRequest", ZOL4, status=status, start=10, mg=4)["doNotPerform"] = True
        d = run(p, t, params)[0]
        assert "zoledronic-acid-12-weekly" in [x.key for x in d.proposals]

    def test_every_agent_forbidden_or_not_tolerated_means_no_card(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient()
        p.allergy("993449", "Denosumab")
        for drug in (ZOL4, PAMIDRONATE):
            p.med("MedicationRequest", drug, status="active", start=10)["doNotPerform"] = True
        assert "R1" not in [x.rule for x in run(p, t, params)]

    def test_proposals_carry_dental_and_supplements_when_needed(
        self, t: Terminology, params: Parameters
    ) -> None:
        d = run(bone_patient(dental=False), t, params)
        r1 = next(x for x in d if x.rule == "R1")
        keys = [(type(a).__name__, a.key) for a in r1.proposals[0].actions]  # type: ignore[union-attr]
        assert keys == [
            ("RegimenOrder", "denosumab"),
            ("RegimenOrder", "calcium-vitamin-d"),
            ("Order", "dental-referral"),
        ]
        # C9: the referral the R1 suggestions carry is not repeated as a separate card.
        assert "R4a:dental-review" not in concerns(d)

    def test_bma_rules_apply_whatever_the_subtype(self, t: Terminology, params: Parameters) -> None:
        for her2 in ("pos", "neg"):
            assert "R1:start" in concerns(run(bone_patient(her2=her2), t, params))
