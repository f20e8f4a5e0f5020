"""Chemotherapy and endocrine lines in the metastatic setting (R15)."""

from __future__ import annotations

import pytest

from cds.parameters import Parameters
from cds.terminology import Terminology
from fixtures.factories import PROGRESSION, STABLE, WORSENED
from tests.facts.helpers import facts, metastatic

_LETROZOLE = ("72965", "Letrozole")
_FULVESTRANT = ("282357", "Fulvestrant")
_PACLITAXEL = ("56946", "PACLitaxel")


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

    @pytest.mark.parametrize(
        ("second", "status", "active", "progression"),
        [
            pytest.param("active", STABLE, True, "none", id="going-on-stable"),
            pytest.param("active", None, True, "none", id="going-on-no-restaging"),
            pytest.param("active", WORSENED, True, "high", id="going-on-worsened"),
            pytest.param("stopped", None, False, "high", id="stopped-for-progression"),
        ],
    )
    def test_the_last_line_and_its_progression(
        self,
        t: Terminology,
        params: Parameters,
        second: str,
        status: tuple[str, str] | None,
        active: bool,
        progression: str,
    ) -> None:
        """F7 on the last systemic line (C6 for R15): letrozole stopped for progression, then
        fulvestrant - going on (stable, not restaged, or worsened), or stopped for progression."""
        p = metastatic(met_days=600)
        p.med(
            "MedicationStatement",
            _LETROZOLE,
            status="stopped",
            start=500,
            end=200,
            reason=PROGRESSION,
        )
        if second == "active":
            p.med("MedicationStatement", _FULVESTRANT, status="active", start=190)
        else:
            p.med(
                "MedicationStatement",
                _FULVESTRANT,
                status="stopped",
                start=190,
                end=20,
                reason=PROGRESSION,
            )
        if status is not None:
            p.disease_status(10, *status)
        s = facts(p, t, params).systemic
        assert [(line.drugs, line.active) for line in s.lines] == [
            (frozenset({"letrozole"}), False),
            (frozenset({"fulvestrant"}), active),
        ]
        assert s.progression == progression

    def test_the_same_drug_given_again_keeps_its_line_going(
        self, t: Terminology, params: Parameters
    ) -> None:
        """Paclitaxel stopped, then given again: one line, going on while the new course is."""
        p = metastatic(met_days=600)
        p.med("MedicationStatement", _PACLITAXEL, status="stopped", start=300, end=200)
        p.med("MedicationStatement", _PACLITAXEL, status="active", start=100)
        s = facts(p, t, params).systemic
        assert [(line.kind, line.active) for line in s.lines] == [("chemotherapy", True)]
