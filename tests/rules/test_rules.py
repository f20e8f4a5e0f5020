"""Rules R1-R14: positive, negative and unknown-data cases, with boundary tables."""

from __future__ import annotations

from typing import Any

import pytest

from cds.facts import PatientFacts, extract_facts
from cds.facts.orders import NO_DRAFTS, DraftOrders, read_draft_orders
from cds.parameters import Parameters
from cds.rules import Decision, evaluate, load_rules
from cds.rules.cardiac import lvef_hold
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
        assert [p.key for p in d[0].proposals] == ["denosumab", "zoledronic-acid", "pamidronate"]

    def test_on_oncologic_bma_no_card(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient()
        p.med("MedicationStatement", XGEVA, status="active", start=20)
        assert "R1:start" not in concerns(run(p, t, params))

    def test_unknown_renal_function_offers_all_with_a_caveat(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient()
        p.resources = [r for r in p.resources if "2160-0" not in str(r.get("code"))]
        d = run(p, t, params)[0]
        assert len(d.proposals) == 3
        assert "zoledronic-acid-renal-unknown" in d.note_keys
        assert any("creatinine" in m for m in d.missing)

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
            pytest.param(61, None, True, id="crcl-61-full-dose"),
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
        zol = [p for p in d.proposals if p.key == "zoledronic-acid"]
        assert bool(zol) is offered
        if zol:
            assert zol[0].actions[0].dose == zoledronic_dose  # type: ignore[union-attr]

    def test_hypocalcaemia_removes_denosumab(self, t: Terminology, params: Parameters) -> None:
        d = run(bone_patient(calcium=7.8), t, params)[0]
        assert "denosumab" not in [p.key for p in d.proposals]
        assert "denosumab-hypocalcaemia" in d.note_keys

    def test_allergy_removes_the_agent(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient()
        p.allergy("993449", "Denosumab")
        d = run(p, t, params)[0]
        assert [x.key for x in d.proposals] == ["zoledronic-acid", "pamidronate"]

    def test_proposals_carry_dental_and_supplements_when_needed(
        self, t: Terminology, params: Parameters
    ) -> None:
        d = run(bone_patient(dental=False), t, params)
        r1 = next(x for x in d if x.rule == "R1")
        keys = [a.key for a in r1.proposals[0].actions]  # type: ignore[union-attr]
        assert keys == [
            "denosumab-120",
            "calcium-supplement",
            "vitamin-d-supplement",
            "dental-referral",
        ]
        assert "R4a:dental-review" in concerns(d)

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
        assert [type(a).__name__ for a in actions] == ["DeleteDraft", "Order"]


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
        p = bone_patient(dental=False)
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
        ("baseline", "latest", "hold"),
        [
            pytest.param(65, 50, False, id="drop-15-at-lln"),
            pytest.param(66, 50, True, id="drop-16"),
            pytest.param(58, 49, False, id="drop-9-below-lln"),
            pytest.param(59, 49, True, id="drop-10-below-lln"),
            pytest.param(62, 52, False, id="drop-10-above-lln"),
        ],
    )
    def test_hold_thresholds(
        self, params: Parameters, baseline: float, latest: float, hold: bool
    ) -> None:
        assert lvef_hold(baseline, latest, params) is hold

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
