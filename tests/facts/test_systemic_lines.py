"""Chemotherapy and endocrine lines in the metastatic setting (R15)."""

from __future__ import annotations

import pytest

from cds.parameters import Parameters
from cds.terminology import Terminology
from tests.facts.helpers import facts, metastatic


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
