"""Rules R1-R14: positive, negative and unknown-data cases, with boundary tables."""

from __future__ import annotations

from typing import Any

import pytest

from cds.facts import PatientFacts, extract_facts
from cds.facts.orders import NO_DRAFTS, DraftOrders, read_draft_orders
from cds.parameters import Parameters
from cds.rules import Decision, RegimenOrder, UpdateDraft, evaluate, load_rules
from cds.rules.cardiac import lvef_action
from cds.terminology import Terminology
from fixtures.build_scenarios import (
    DOCE,
    DOXO,
    PERT,
    PROGRESSION,
    TDXD,
    TRAS,
    WORSENED,
    XGEVA,
    ZOL4,
    Patient,
    draft_med,
)


def facts(p: Patient, t: Terminology, params: Parameters) -> PatientFacts:
    return extract_facts([p.patient(), *p.resources], t, params, as_of=p.as_of)


def run(
    p: Patient,
    t: Terminology,
    params: Parameters,
    hook: str = "patient-view",
    drafts: list[dict[str, Any]] | None = None,
) -> list[Decision]:
    d: DraftOrders = NO_DRAFTS
    if drafts is not None:
        d = read_draft_orders(
            {"resourceType": "Bundle", "entry": [{"resource": x} for x in drafts]}, (), t
        )
    return evaluate(hook, facts(p, t, params), d, params)


def concerns(decisions: list[Decision]) -> list[str]:
    return [d.concern for d in decisions]


def bone_patient(
    pid: str = "p",
    *,
    her2: str = "neg",
    age_birth: str = "1964-05-17",
    creatinine: float = 0.8,
    weight: float = 68.0,
    calcium: float = 9.4,
    dental: bool = True,
) -> Patient:
    p = Patient(pid, birth=age_birth)
    p.breast_cancer()
    p.bone_mets(100)
    p.her2(90, her2)
    p.er(90, "pos")
    p.pr(90, "pos")
    p.labs(creatinine=creatinine, weight=weight, calcium=calcium)
    if dental:
        p.dental_exam(30)
    return p


def creatinine_for(crcl: float, *, age: int = 62, weight: float = 68.0) -> float:
    """The creatinine that gives this Cockcroft-Gault CrCl for a woman of this age and weight."""
    return (140 - age) * weight * 0.85 / (72 * crcl)


class TestGates:
    def test_no_breast_cancer_no_cards(self, t: Terminology, params: Parameters) -> None:
        p = Patient("p")
        p.bone_mets(100)
        assert run(p, t, params) == []

    def test_every_rule_predicate_cites_its_evidence(self) -> None:
        """The catalog renders these docstrings; each one names its source."""
        for rule in load_rules().values():
            assert len(rule.doc) > 60, rule.id
            assert any(
                w in rule.doc
                for w in (
                    "ASCO",
                    "label",
                    "ESMO",
                    "ASTRO",
                    "MRONJ",
                    "clinical-logic",
                    "Xgeva",
                    "Zometa",
                    "SmPC",
                )
            ), rule.id


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
        assert any("creatinine" in m for m in d.missing)

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
        assert any("body weight" in m for m in d.missing)
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


class TestR2BisphosphonateOrders:
    def draft(self, mg: float = 4, text: str = "4 mg IV over 15 minutes") -> dict[str, Any]:
        return draft_med("p", "z", ZOL4, text, mg)

    @pytest.mark.parametrize(
        ("crcl", "expected"),
        [
            pytest.param(29, ["R2:renal-contraindicated"], id="crcl-29-critical"),
            pytest.param(30, ["R2:dose-adjust"], id="crcl-30-adjust"),
            pytest.param(60, ["R2:dose-adjust"], id="crcl-60-adjust"),
            pytest.param(61, [], id="crcl-61-ok"),
        ],
    )
    def test_renal_bands(
        self, t: Terminology, params: Parameters, crcl: float, expected: list[str]
    ) -> None:
        p = bone_patient(creatinine=creatinine_for(crcl))
        d = run(p, t, params, "order-sign", [self.draft()])
        assert [c for c in concerns(d) if c.startswith("R2")] == expected

    def test_reduced_draft_dose_is_accepted(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient(creatinine=creatinine_for(45))
        d = run(p, t, params, "order-sign", [self.draft(mg=3.3, text="3.3 mg IV over 15 min")])
        assert not [c for c in concerns(d) if c.startswith("R2")]

    @pytest.mark.parametrize(
        ("quantity", "expected"),
        [
            pytest.param({"value": 0.004, "unit": "g", "code": "g"}, "R2:dose-adjust", id="g"),
            pytest.param({"value": 4000, "unit": "ug", "code": "ug"}, "R2:dose-adjust", id="ug"),
            pytest.param({"value": 4, "unit": "mg", "code": "mg"}, "R2:dose-adjust", id="mg"),
            pytest.param({"value": 3, "unit": "mg", "code": "mg"}, None, id="3mg-ok"),
            pytest.param({"value": 3000, "code": "ug"}, None, id="3000ug-ok"),
            pytest.param({"value": 1, "code": "{pill}"}, "R2:dose-unknown", id="pill-unknown"),
            pytest.param({"value": 4}, "R2:dose-unknown", id="no-unit-unknown"),
        ],
    )
    def test_draft_dose_units(
        self,
        t: Terminology,
        params: Parameters,
        quantity: dict[str, Any],
        expected: str | None,
    ) -> None:
        """C2: a draft dose is read with its UCUM unit; an unknown unit is 'dose unknown'."""
        p = bone_patient(creatinine=creatinine_for(35))
        draft = draft_med("p", "z", ZOL4, "IV over 15 minutes every 12 weeks")
        draft["dosageInstruction"][0]["doseAndRate"] = [{"doseQuantity": quantity}]
        got = [c for c in concerns(run(p, t, params, "order-sign", [draft])) if c.startswith("R2")]
        assert got == ([expected] if expected else [])

    def test_dose_change_keeps_route_time_and_interval(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient(creatinine=creatinine_for(35))
        d = run(
            p, t, params, "order-sign", [self.draft(text="4 mg IV over 15 minutes every 12 weeks")]
        )
        update = d[0].proposals[0].actions[0]
        assert isinstance(update, UpdateDraft)
        assert update.dose_mg == 3.0

    def test_infusion_time_from_timing_duration(self, t: Terminology, params: Parameters) -> None:
        """C2: timing.repeat.duration + durationUnit is read before free text."""
        p = bone_patient()
        for value, unit, fires in ((10, "min", True), (15, "min", False), (0.25, "h", False)):
            draft = self.draft(text="4 mg IV every 12 weeks")
            draft["dosageInstruction"][0]["timing"] = {
                "repeat": {"duration": value, "durationUnit": unit}
            }
            d = run(p, t, params, "order-sign", [draft])
            assert ("R2:infusion-time" in concerns(d)) is fires

    def test_pamidronate_under_two_hours(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient()
        for minutes, fires in ((119, True), (120, False)):
            draft = draft_med(
                "p",
                "pam",
                ("1737461", "Pamidronate disodium 90 MG Injection"),
                f"90 mg IV over {minutes} minutes every 4 weeks",
                90,
            )
            assert (
                "R2:infusion-time" in concerns(run(p, t, params, "order-sign", [draft]))
            ) is fires

    def test_creatinine_rise_never_also_reduces(self, t: Terminology, params: Parameters) -> None:
        """C2: on treatment, a creatinine rise means withhold - not withhold and reduce."""
        p = bone_patient(creatinine=creatinine_for(45))
        p.obs("2160-0", 300, valueQuantity={"value": 0.6, "unit": "mg/dL", "code": "mg/dL"})
        p.med("MedicationAdministration", ZOL4, status="completed", start=200, mg=4)
        got = [
            c
            for c in concerns(run(p, t, params, "order-sign", [self.draft()]))
            if c.startswith("R2")
        ]
        assert got == ["R2:creatinine-rise"]

    def test_infusion_time_boundary(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient()
        for minutes, fires in ((14, True), (15, False)):
            d = run(
                p, t, params, "order-sign", [self.draft(text=f"4 mg IV over {minutes} minutes")]
            )
            assert ("R2:infusion-time" in concerns(d)) is fires

    @pytest.mark.parametrize(
        ("baseline", "latest", "fires"),
        [
            pytest.param(0.8, 1.29, False, id="normal-baseline-rise-0.49"),
            pytest.param(0.8, 1.3, True, id="normal-baseline-rise-0.5"),
            pytest.param(1.5, 2.49, False, id="abnormal-baseline-rise-0.99"),
            pytest.param(1.5, 2.5, True, id="abnormal-baseline-rise-1.0"),
        ],
    )
    def test_creatinine_rise(
        self, t: Terminology, params: Parameters, baseline: float, latest: float, fires: bool
    ) -> None:
        p = bone_patient()
        p.resources = [r for r in p.resources if "2160-0" not in str(r.get("code"))]
        p.obs("2160-0", 300, valueQuantity={"value": baseline, "unit": "mg/dL", "code": "mg/dL"})
        p.obs("2160-0", 3, valueQuantity={"value": latest, "unit": "mg/dL", "code": "mg/dL"})
        p.obs("35591-7", 3, valueQuantity={"value": 80, "unit": "mL/min"})  # isolate the rise
        d = run(p, t, params, "order-sign", [self.draft()])
        assert ("R2:creatinine-rise" in concerns(d)) is fires

    def test_severe_renal_suggests_delete_and_denosumab(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient(creatinine=creatinine_for(20))
        d = run(p, t, params, "order-sign", [self.draft()])[0]
        assert d.indicator == "critical"
        actions = d.proposals[0].actions
        # C2: the replacement carries the supports of R1 (calcium + vitamin D here). D19: the
        # draft is removed last, so a client applying actions in order never holds no order.
        assert [(type(a).__name__, getattr(a, "key", None)) for a in actions] == [
            ("RegimenOrder", "denosumab"),
            ("RegimenOrder", "calcium-vitamin-d"),
            ("DeleteDraft", None),
        ]


class TestR3Calcium:
    def test_denosumab_order_with_low_calcium_is_critical(
        self, t: Terminology, params: Parameters
    ) -> None:
        d = run(
            bone_patient(calcium=8.0),
            t,
            params,
            "order-sign",
            [draft_med("p", "d", XGEVA, "120 mg SC q4w", 120)],
        )
        assert concerns(d)[0] == "R3a:hypocalcaemia"
        assert d[0].indicator == "critical"

    def test_supplements_not_suggested_when_hypercalcaemic(
        self, t: Terminology, params: Parameters
    ) -> None:
        for calcium, fires in ((10.4, True), (10.6, False)):
            p = bone_patient(calcium=calcium)
            p.med("MedicationStatement", XGEVA, status="active", start=20)
            assert ("R3b:supplement" in concerns(run(p, t, params))) is fires

    def test_calcium_check_on_denosumab(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient()
        p.resources = [r for r in p.resources if "17861-6" not in str(r.get("code"))]
        p.med("MedicationStatement", XGEVA, status="active", start=20)
        p.med("MedicationStatement", "calcium carbonate", status="active", start=20)
        assert "R3c:check-calcium" in concerns(run(p, t, params))


class TestR4Dental:
    @pytest.mark.parametrize(
        ("days", "fires"),
        [pytest.param(183, False, id="6-months"), pytest.param(184, True, id="6-months+1")],
    )
    def test_look_back(self, t: Terminology, params: Parameters, days: int, fires: bool) -> None:
        """A BMA started 10 days ago: the dental card depends on the look-back alone (with R1
        firing, the referral travels inside its suggestions instead, C9)."""
        p = bone_patient(dental=False)
        p.med("MedicationStatement", XGEVA, status="active", start=10)
        p.dental_exam(days)
        assert ("R4a:dental-review" in concerns(run(p, t, params))) is fires

    def test_first_bma_order_without_dental(self, t: Terminology, params: Parameters) -> None:
        d = run(
            bone_patient(dental=False),
            t,
            params,
            "order-select",
            [draft_med("p", "d", XGEVA, "120 mg SC q4w", 120)],
        )
        assert "R4b:dental-before-bma" in concerns(d)

    def test_no_dental_card_once_on_bma(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient(dental=False)
        p.med("MedicationStatement", XGEVA, status="completed", start=300, end=200)
        d = run(p, t, params, "order-select", [draft_med("p", "d", XGEVA, "120 mg", 120)])
        assert "R4b:dental-before-bma" not in concerns(d)


class TestR6NextLine:
    def her2_patient(self) -> Patient:
        p = Patient("h")
        p.breast_cancer(2000)
        p.bone_mets(900)
        p.her2(890, "pos")
        p.er(890, "neg")
        p.pr(890, "neg")
        p.labs()
        p.lvef(20, 60)
        p.med("MedicationStatement", XGEVA, status="active", start=800)
        p.med("MedicationStatement", "calcium carbonate", status="active", start=800)
        p.dental_exam(30)
        return p

    def test_never_for_her2_negative_equivocal_or_unknown(
        self, t: Terminology, params: Parameters
    ) -> None:
        for her2 in ("neg", None, "equivocal"):
            p = bone_patient()
            p.resources = [r for r in p.resources if "48676-1" not in str(r.get("code"))]
            if her2 == "neg":
                p.her2(90, "neg")
            elif her2 == "equivocal":
                p.her2_ihc(90, "2+")
            assert not [c for c in concerns(run(p, t, params)) if c.startswith(("R6", "R7"))]

    def test_first_line_options_are_info_and_unranked(
        self, t: Terminology, params: Parameters
    ) -> None:
        d = next(x for x in run(self.her2_patient(), t, params) if x.rule == "R6")
        assert d.variant == "line-1"
        assert d.indicator == "info"
        assert [p.key for p in d.proposals] == [
            "thp-docetaxel",
            "thp-paclitaxel",
            "phesgo-docetaxel",  # §3c D17: the subcutaneous form, with docetaxel (label)
            "tdxd-pertuzumab",
        ]

    def test_no_card_while_the_line_continues(self, t: Terminology, params: Parameters) -> None:
        p = self.her2_patient()
        for drug in (TRAS, PERT):
            p.med("MedicationStatement", drug, status="active", start=700)
        assert not [x for x in run(p, t, params) if x.rule in ("R6", "R7")]

    def test_second_line_after_progression_excludes_nothing_used(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = self.her2_patient()
        for drug in (DOCE, TRAS, PERT):
            p.med(
                "MedicationStatement", drug, status="stopped", start=700, end=30, reason=PROGRESSION
            )
        d = next(x for x in run(p, t, params) if x.rule == "R6")
        assert d.variant == "line-2"
        assert [x.key for x in d.proposals] == ["tdxd", "tdm1"]

    def test_tdxd_hidden_with_ild(self, t: Terminology, params: Parameters) -> None:
        p = self.her2_patient()
        for drug in (DOCE, TRAS, PERT):
            p.med(
                "MedicationStatement", drug, status="stopped", start=700, end=30, reason=PROGRESSION
            )
        p.condition("", "", "", 300, text="Pneumonitis")
        d = next(x for x in run(p, t, params) if x.rule == "R6")
        assert [x.key for x in d.proposals] == ["tdm1"]
        assert any("interstitial" in n for n in d.notes)

    def test_tdxd_not_reoffered_after_progression(self, t: Terminology, params: Parameters) -> None:
        p = self.her2_patient()
        for drug in (DOCE, TRAS, PERT):
            p.med(
                "MedicationStatement",
                drug,
                status="stopped",
                start=700,
                end=400,
                reason=PROGRESSION,
            )
        p.med("MedicationStatement", TDXD, status="active", start=390)
        p.disease_status(10, *WORSENED)
        d = next(x for x in run(p, t, params) if x.rule == "R6")
        assert d.variant == "line-3-plus"
        keys = [x.key for x in d.proposals]
        assert "tdxd" not in keys
        assert "tdm1" in keys
        assert "active-regimen-review" in d.note_keys

    def test_echocardiogram_added_when_lvef_is_old(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = self.her2_patient()
        p.resources = [r for r in p.resources if "10230-1" not in str(r.get("code"))]
        d = next(x for x in run(p, t, params) if x.rule == "R6")
        assert all(a.key == "echocardiogram" for a in [x.actions[-1] for x in d.proposals])  # type: ignore[union-attr]


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


class TestR10Anthracycline:
    def on_trastuzumab(self) -> Patient:
        p = bone_patient(her2="pos")
        p.med("MedicationStatement", TRAS, status="active", start=60)
        return p

    def test_order_while_on_trastuzumab_is_critical_with_delete(
        self, t: Terminology, params: Parameters
    ) -> None:
        d = run(
            self.on_trastuzumab(),
            t,
            params,
            "order-sign",
            [draft_med("p", "dox", DOXO, "60 mg/m2")],
        )
        r10 = next(x for x in d if x.rule == "R10")
        assert (r10.concern, r10.indicator) == ("R10:concurrent", "critical")
        assert type(r10.proposals[0].actions[0]).__name__ == "DeleteDraft"

    @pytest.mark.parametrize(
        ("days", "fires"),
        [pytest.param(213, True, id="7-months"), pytest.param(214, False, id="7-months+1")],
    )
    def test_washout(self, t: Terminology, params: Parameters, days: int, fires: bool) -> None:
        p = bone_patient(her2="pos")
        p.med("MedicationStatement", TRAS, status="completed", start=600, end=days)
        d = run(p, t, params, "order-sign", [draft_med("p", "dox", DOXO, "60 mg/m2")])
        assert ("R10:washout" in concerns(d)) is fires


class TestR11Lvef:
    @pytest.mark.parametrize(
        ("drug", "baseline", "latest", "action"),
        [
            # Herceptin: ≥16-point drop, or below the LLN (50) with a ≥10-point drop.
            pytest.param("trastuzumab", 65, 50, None, id="tras-drop-15-at-lln"),
            pytest.param("trastuzumab", 66, 50, "withhold", id="tras-drop-16"),
            pytest.param("trastuzumab", 58, 49, None, id="tras-drop-9-below-lln"),
            pytest.param("trastuzumab", 59, 49, "withhold", id="tras-drop-10-below-lln"),
            pytest.param("trastuzumab", 62, 52, None, id="tras-drop-10-above-lln"),
            # Perjeta: <40, or 40-45 with a ≥10-point drop.
            pytest.param("pertuzumab", 45, 39, "withhold", id="pert-39"),
            pytest.param("pertuzumab", 41, 40, None, id="pert-40-drop-1"),
            pytest.param("pertuzumab", 54, 45, None, id="pert-45-drop-9"),
            pytest.param("pertuzumab", 55, 45, "withhold", id="pert-45-drop-10"),
            pytest.param("pertuzumab", 70, 46, None, id="pert-46-drop-24"),
            # Kadcyla: <40 withhold; 40-45 drop ≥10 withhold, <10 repeat; >45 continue.
            pytest.param("trastuzumab emtansine", 50, 39, "withhold", id="tdm1-39"),
            pytest.param("trastuzumab emtansine", 49, 40, "repeat", id="tdm1-40-drop-9"),
            pytest.param("trastuzumab emtansine", 50, 40, "withhold", id="tdm1-40-drop-10"),
            pytest.param("trastuzumab emtansine", 60, 46, None, id="tdm1-46-drop-14"),
            # Enhertu: <40 or drop >20 interrupt; 40-45 drop ≥10 interrupt, <10 repeat;
            # >45 with a 10-20 drop continue.
            pytest.param("trastuzumab deruxtecan", 62, 46, None, id="tdxd-62-to-46"),
            pytest.param("trastuzumab deruxtecan", 66, 46, None, id="tdxd-46-drop-20"),
            pytest.param("trastuzumab deruxtecan", 67, 46, "withhold", id="tdxd-46-drop-21"),
            pytest.param("trastuzumab deruxtecan", 54, 45, "repeat", id="tdxd-45-drop-9"),
            pytest.param("trastuzumab deruxtecan", 55, 45, "withhold", id="tdxd-45-drop-10"),
            pytest.param("trastuzumab deruxtecan", 45, 39, "withhold", id="tdxd-39"),
        ],
    )
    def test_label_thresholds_per_drug(
        self, params: Parameters, drug: str, baseline: float, latest: float, action: str | None
    ) -> None:
        """C4: each drug's own label decides; 62→46% on T-DXd continues."""
        rule = params.lvef_by_drug[drug]
        assert lvef_action(rule, baseline, latest, params.lvef_lln_percent) == action

    def test_tdxd_drop_is_not_a_trastuzumab_hold(self, t: Terminology, params: Parameters) -> None:
        """C4: on T-DXd, LVEF 62→46% gives no 'withhold trastuzumab' (Enhertu: continue)."""
        p = bone_patient(her2="pos")
        p.lvef(130, 62)
        p.med("MedicationStatement", TDXD, status="active", start=120)
        p.lvef(5, 46)
        assert not [c for c in concerns(run(p, t, params)) if c.startswith("R11")]

    def test_withhold_card_names_the_drug(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient(her2="pos")
        p.lvef(130, 60)
        p.med("MedicationStatement", TDXD, status="active", start=120)
        p.lvef(5, 38)
        d = next(x for x in run(p, t, params) if x.rule == "R11c")
        assert (d.variant, d.indicator, d.bindings["drugs"]) == ("withhold", "critical", "T-DXd")
        assert d.note_keys == ("lvef-trastuzumab-deruxtecan-withhold",)

    def test_no_lvef_due_on_tdxd_alone(self, t: Terminology, params: Parameters) -> None:
        """C4: the Enhertu label sets no 3-monthly LVEF."""
        p = bone_patient(her2="pos")
        p.med("MedicationStatement", TDXD, status="active", start=300)
        p.lvef(200, 60)
        assert "R11a:lvef-due" not in concerns(run(p, t, params))

    def test_lvef_due_boundary(self, t: Terminology, params: Parameters) -> None:
        for days, fires in ((104, False), (105, True)):
            p = bone_patient(her2="pos")
            p.med("MedicationStatement", XGEVA, status="active", start=20)
            p.med("MedicationStatement", TRAS, status="active", start=300)
            p.lvef(days, 60)
            assert ("R11a:lvef-due" in concerns(run(p, t, params))) is fires

    def test_no_baseline_low_lvef_is_a_warning(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient(her2="pos")
        p.med("MedicationStatement", TRAS, status="active", start=300)
        p.lvef(10, 45)
        assert "R11c:low-no-baseline" in concerns(run(p, t, params))


class TestR13R14Testing:
    def test_no_metastatic_specimen_suggests_retest(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = Patient("p")
        p.breast_cancer(2000)
        p.bone_mets(100)
        p.her2(1900, "neg")
        d = run(p, t, params)
        assert "R13:retest" in concerns(d)

    def test_unknown_metastatic_date_no_retest_card(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = Patient("p")
        p.breast_cancer(2000)
        p.add(
            {
                "resourceType": "Condition",
                "id": "m",
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "94222008"}]},
            }
        )
        assert "R13:retest" not in concerns(run(p, t, params))

    def test_ihc_2_plus_then_ish_resolves(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient()
        p.resources = [r for r in p.resources if "48676-1" not in str(r.get("code"))]
        p.her2_ihc(80, "2+")
        assert "R14:reflex-ish" in concerns(run(p, t, params))
        p.obs("49683-6", 80, valueQuantity={"value": 2.4})
        p.obs("74860-8", 80, valueQuantity={"value": 5.0})
        assert "R14:reflex-ish" not in concerns(run(p, t, params))


class TestOrdering:
    def test_one_card_per_concern_critical_first(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient(dental=False)
        p.condition("http://hl7.org/fhir/sid/icd-10-cm", "G95.20", "cord compression", 1)
        d = run(p, t, params)
        assert len(concerns(d)) == len(set(concerns(d)))
        ranks = [{"critical": 0, "warning": 1, "info": 2}[x.indicator] for x in d]
        assert ranks == sorted(ranks)


class TestMissingDataOnOrders:
    """On order hooks missing data is never a pass: the card says what is missing."""

    def test_zoledronic_with_creatinine_but_no_weight(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient()
        p.resources = [r for r in p.resources if "29463-7" not in str(r.get("code"))]
        d = run(p, t, params, "order-sign", [draft_med("p", "z", ZOL4, "4 mg IV", 4)])
        r2 = [x for x in d if x.rule == "R2"]
        assert [x.concern for x in r2] == ["R2:crcl-unknown"]
        assert any("body weight" in m for m in r2[0].missing)

    def test_denosumab_without_calcium(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient()
        p.resources = [r for r in p.resources if "17861-6" not in str(r.get("code"))]
        d = run(p, t, params, "order-sign", [draft_med("p", "d", XGEVA, "120 mg", 120)])
        assert "R3a:calcium-unknown" in concerns(d)


class TestR15Her2Low:
    """R15: T-DXd for HER2-low/ultralow by the DESTINY-Breast04/-06 criteria; never HER2-0."""

    def patient(self, ihc: str | None, hr: str) -> Patient:
        p = Patient("p")
        p.breast_cancer()
        p.bone_mets(300)
        p.her2(290, "neg")
        if ihc is not None:
            p.her2_ihc(290, ihc)
        p.er(290, hr)
        p.pr(290, hr)
        p.labs()
        p.lvef(30, 60)
        p.med("MedicationStatement", XGEVA, status="active", start=280)
        p.med(
            "MedicationStatement",
            "Calcium carbonate 500 mg + vitamin D3",
            status="active",
            start=280,
        )
        p.dental_exam(30)
        return p

    @pytest.mark.parametrize(
        ("ihc", "hr", "chemo", "endocrine", "expected"),
        [
            pytest.param("1+", "neg", True, False, "R15:db04", id="low-hr-neg-chemo"),
            pytest.param("1+", "neg", False, False, None, id="low-hr-neg-no-chemo"),
            pytest.param("1+", "pos", True, False, None, id="low-hr-pos-chemo-not-refractory"),
            pytest.param("1+", "pos", True, True, "R15:db04", id="low-hr-pos-chemo-refractory"),
            pytest.param("1+", "pos", False, True, "R15:db06", id="low-hr-pos-endocrine-only"),
            pytest.param(
                "0, faint incomplete staining", "pos", False, True, "R15:db06", id="ultralow-db06"
            ),
            pytest.param(
                "0, faint incomplete staining", "neg", True, False, None, id="ultralow-hr-neg"
            ),
            pytest.param(
                "0, faint incomplete staining", "pos", True, True, None, id="ultralow-after-chemo"
            ),
            pytest.param("0, no staining", "pos", False, True, None, id="her2-0"),
            pytest.param(None, "neg", True, False, "R15:ihc-score-needed", id="score-unknown"),
            pytest.param(None, "neg", False, False, None, id="score-unknown-not-eligible"),
        ],
    )
    def test_criteria(
        self,
        t: Terminology,
        params: Parameters,
        ihc: str | None,
        hr: str,
        chemo: bool,
        endocrine: bool,
        expected: str | None,
    ) -> None:
        p = self.patient(ihc, hr)
        if endocrine:
            p.med(
                "MedicationStatement", ("72965", "Letrozole"), status="stopped", start=270, end=150
            )
        if chemo:
            p.med(
                "MedicationStatement",
                ("194000", "Capecitabine"),
                status="stopped",
                start=140,
                end=20,
            )
        got = [c for c in concerns(run(p, t, params)) if c.startswith("R15")]
        assert got == ([expected] if expected else [])

    def test_her2_positive_rules_never_fire(self, t: Terminology, params: Parameters) -> None:
        p = self.patient("1+", "neg")
        p.med(
            "MedicationStatement", ("194000", "Capecitabine"), status="stopped", start=140, end=20
        )
        assert [
            c for c in concerns(run(p, t, params)) if c[:3] in ("R6:", "R8a", "R8b", "R11")
        ] == []

    def test_unknown_hr_status_meets_neither(self, t: Terminology, params: Parameters) -> None:
        p = self.patient("1+", "neg")
        p.resources = [
            r for r in p.resources if "85337-4" not in str(r) and "85339-0" not in str(r)
        ]
        p.med(
            "MedicationStatement", ("194000", "Capecitabine"), status="stopped", start=140, end=20
        )
        assert not [c for c in concerns(run(p, t, params)) if c.startswith("R15")]

    def test_tdxd_suggestion_is_the_label_dose(self, t: Terminology, params: Parameters) -> None:
        p = self.patient("1+", "neg")
        p.med(
            "MedicationStatement", ("194000", "Capecitabine"), status="stopped", start=140, end=20
        )
        d = next(x for x in run(p, t, params) if x.rule == "R15")
        assert [a.key for prop in d.proposals for a in prop.actions] == ["tdxd"]  # type: ignore[union-attr]
        assert params.regimens["tdxd"].drugs[0].dose == "5.4 mg/kg IV every 3 weeks"


def test_lvef_rules_scan_the_exposures_a_bounded_number_of_times(
    t: Terminology, params: Parameters, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 28 item 6: every active exposure rescanned all exposures - quadratic, seconds on a
    1.5 MB chart inside every limit. The scans no longer grow with the number of records."""
    from cds.facts.medications import Medications

    scans = 0
    ever = Medications.ever

    def counting(self: Medications, *classes: str) -> Any:
        nonlocal scans
        scans += 1
        return ever(self, *classes)  # type: ignore[arg-type]

    def run_with(n: int) -> int:
        nonlocal scans
        p = bone_patient(her2="pos")
        for i in range(n):
            p.med("MedicationAdministration", TRAS, status="completed", start=1 + i % 20, mg=420)
        f = facts(p, t, params)
        scans = 0
        monkeypatch.setattr(Medications, "ever", counting)
        evaluate("patient-view", f, NO_DRAFTS, params)
        monkeypatch.setattr(Medications, "ever", ever)
        return scans

    assert run_with(200) == run_with(10)
