"""The evaluation around the rules: the breast-cancer gate, card order, missing data on orders."""

from __future__ import annotations

import pytest

from cds.parameters import Parameters
from cds.rules import load_rules
from cds.terminology import Terminology
from fixtures.factories import (
    PAMIDRONATE,
    XGEVA,
    ZOL4,
    Patient,
    draft_med,
)
from tests.rules.helpers import bone_patient, concerns, creatinine_for, facts, run, text  # noqa: F401


class TestGates:
    def test_no_breast_cancer_no_cards(self, t: Terminology, params: Parameters) -> None:
        p = Patient("p")
        p.bone_mets(100)
        assert run(p, t, params) == []

    @pytest.mark.parametrize(
        ("elements", "cards"),
        [
            ({}, True),
            ({"deceasedBoolean": False}, True),
            ({"deceasedBoolean": True}, False),
            ({"deceasedDateTime": "2026-11-19"}, False),  # 3 days before the scenario day
            ({"deceasedDateTime": "2026-11-19T23:10:00-05:00"}, False),
            ({"deceasedDateTime": "2027-02-01"}, True),  # after today: a record error
        ],
    )
    def test_no_cards_for_a_patient_recorded_as_deceased(
        self, t: Terminology, params: Parameters, elements: dict[str, object], cards: bool
    ) -> None:
        p = bone_patient()
        p.demographics.update(elements)
        assert bool(run(p, t, params)) is cards
        assert (
            bool(run(p, t, params, "order-sign", [draft_med("p", "d", ZOL4, "4 g", 4000)])) is cards
        )

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
                    # A rule about what the record itself says (an order not to give) cites
                    # the standard that defines it.
                    "FHIR R4",
                )
            ), rule.id


class TestOrdering:
    def test_one_card_per_concern_critical_first(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient(dental=False)
        p.condition("http://hl7.org/fhir/sid/icd-10-cm", "G95.20", "cord compression", 1)
        d = run(p, t, params)
        assert len(concerns(d)) == len(set(concerns(d)))
        ranks = [{"critical": 0, "warning": 1, "info": 2}[x.indicator] for x in d]
        assert ranks == sorted(ranks)

    def test_two_drafts_each_above_its_label_dose_keep_a_card_each(
        self, t: Terminology, params: Parameters
    ) -> None:
        """Zoledronic acid 8 mg and pamidronate 180 mg in one order: R2b's decision for the
        second draft shared the first's concern and was dropped, so the pamidronate dose was
        never named. Each keeps its card now; R2c's one concern, seen from each draft, is one
        card (the same records)."""
        drafts = [
            draft_med("p", "zol", ZOL4, "8 mg IV", 8),
            draft_med("p", "pam", PAMIDRONATE, "180 mg IV", 180),
        ]
        d = run(bone_patient(), t, params, "order-sign", drafts)
        assert concerns(d) == [
            "R2b:above-label",
            "R2b:above-label#2",
            "R2c:drafted-together",
            "R3b:supplement-with-order",
        ]
        assert [x.refs[0] for x in d[:2]] == ["MedicationRequest/zol", "MedicationRequest/pam"]


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
        assert any("body weight" in text(m) for m in r2[0].missing)

    def test_denosumab_without_calcium(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient()
        p.resources = [r for r in p.resources if "17861-6" not in str(r.get("code"))]
        d = run(p, t, params, "order-sign", [draft_med("p", "d", XGEVA, "120 mg", 120)])
        assert "R3a:calcium-unknown" in concerns(d)
