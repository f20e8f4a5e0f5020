"""R13 receptor re-testing, R14 HER2 results needing more testing (rules/receptors.py)."""

from __future__ import annotations

from typing import Any

import pytest

from cds.parameters import Parameters
from cds.rules import Order
from cds.terminology import Terminology
from fixtures.factories import (
    Patient,
)
from tests.rules.helpers import (  # noqa: F401
    bone_patient,
    concerns,
    creatinine_for,
    facts,
    run,
    text,
)


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

    @pytest.mark.parametrize(
        ("days_ago", "status", "retest", "named"),
        [
            (10, "preliminary", False, True),  # the biopsy is done: results on their way
            (10, "unknown", False, True),
            (10, "final", False, False),  # a metastatic result: nothing to ask
            (1800, "preliminary", True, True),  # pending from before the metastasis
        ],
    )
    def test_a_metastatic_result_still_preliminary_is_no_reason_to_rebiopsy(
        self,
        t: Terminology,
        params: Parameters,
        days_ago: int,
        status: str,
        retest: bool,
        named: bool,
    ) -> None:
        p = Patient("p")
        p.breast_cancer(2000)
        p.bone_mets(100)
        p.her2(1900, "neg")
        p.her2(days_ago, "neg")
        p.resources[-1]["status"] = status
        decisions = run(p, t, params)
        assert ("R13:retest" in concerns(decisions)) is retest
        said = [text(e.reason) for e in facts(p, t, params).excluded]
        pending = f"has status '{status}', not final: the checks use final results only"
        assert any(pending in x for x in said) is named

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


class TestR14IshUnread:
    """IHC 2+ with an ISH on record that gives no ASCO/CAP reading: named, its report asked
    for, no new ISH suggested; HER2 stays equivocal."""

    @pytest.mark.parametrize(
        ("ish", "why"),
        [
            ([("49683-6", {"valueQuantity": {"value": 2.3}})], "HER2/CEP17 ratio 2.3 without"),
            ([("74860-8", {"valueQuantity": {"value": 5.1}})], "average HER2 copy number 5.1"),
            ([("85318-4", {"valueQuantity": {"value": 2.5}})], "no result that can be read"),
            ([("85318-4", {"valueString": "Equivocal"})], "reported as equivocal"),
            ([("85318-4", {"valueString": "Indeterminate"})], "reported as inconclusive"),
        ],
    )
    def test_named_not_reordered(
        self, t: Terminology, params: Parameters, ish: list[tuple[str, dict[str, Any]]], why: str
    ) -> None:
        p = bone_patient()
        p.resources = [r for r in p.resources if "48676-1" not in str(r.get("code"))]
        p.her2_ihc(80, "2+")
        for code, value in ish:
            p.obs(code, 76, **value)
        decisions = [d for d in run(p, t, params) if d.rule == "R14"]
        assert concerns(decisions) == ["R14:ish-unread"]
        [line] = [text(x) for x in decisions[0].data]
        assert line.startswith("HER2 IHC 2+ on ")
        assert f"; ISH on {p.day(76)}: {why}" in line
        assert decisions[0].proposals == ()
        assert facts(p, t, params).receptors.her2.status == "equivocal"  # type: ignore[union-attr]

    def test_a_readable_ish_gives_no_card(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient()
        p.resources = [r for r in p.resources if "48676-1" not in str(r.get("code"))]
        p.her2_ihc(80, "2+")
        p.obs("85318-4", 76, valueString="Not amplified")  # readable: HER2-low, no card
        assert [d for d in run(p, t, params) if d.rule == "R14"] == []


class TestR13Her2NotRetested:
    """F4 per marker: ER/PR re-tested at metastasis, HER2 not."""

    def chart(self, her2_days: int | None) -> Patient:
        p = Patient("p")
        p.breast_cancer(2000)
        p.bone_mets(100)
        if her2_days is not None:
            p.her2(her2_days, "pos")
        p.er(90, "neg")
        p.pr(90, "neg")
        p.labs()
        return p

    @pytest.mark.parametrize(
        ("her2_days", "expected", "her2_line"),
        [
            (1990, ["R13:her2-not-retested"], "HER2 positive from a primary specimen"),
            (None, ["R13:her2-not-retested"], "HER2: no result on record"),
            (90, [], None),  # HER2 re-tested with ER and PR
        ],
    )
    def test_by_where_the_her2_in_use_comes_from(
        self,
        t: Terminology,
        params: Parameters,
        her2_days: int | None,
        expected: list[str],
        her2_line: str | None,
    ) -> None:
        decisions = [d for d in run(self.chart(her2_days), t, params) if d.rule == "R13"]
        assert concerns(decisions) == expected
        if decisions:
            [d] = decisions
            assert any(text(x).startswith(her2_line or "") for x in d.data)
            assert [a for p in d.proposals for a in p.actions] == [Order(key="test-her2")]

    def test_nothing_retested_is_the_biopsy_card(self, t: Terminology, params: Parameters) -> None:
        p = Patient("p")
        p.breast_cancer(2000)
        p.bone_mets(100)
        p.her2(1990, "pos")
        p.er(1990, "neg")
        p.labs()
        assert [d.concern for d in run(p, t, params) if d.rule == "R13"] == ["R13:retest"]

    def test_a_her2_result_with_no_value_at_metastasis(
        self, t: Terminology, params: Parameters
    ) -> None:
        """HER2 'not performed' on the metastatic specimen: HER2 is unknown, and the card asks
        for it (no other card would: HER2 neither positive nor negative)."""
        p = self.chart(None)
        absent = {"coding": [{"code": "not-performed", "display": "Not Performed"}]}
        p.obs("48676-1", 90, dataAbsentReason=absent)
        [d] = [x for x in run(p, t, params) if x.rule == "R13"]
        assert d.variant == "her2-not-retested"
        assert any(text(x).startswith("HER2 unknown from a metastatic specimen") for x in d.data)

    def test_r14s_own_testing_cards_are_not_repeated(
        self, t: Terminology, params: Parameters
    ) -> None:
        """HER2 ISH group 3 with no concurrent IHC: R14 asks for the IHC; R13 stays quiet."""
        p = self.chart(None)
        p.obs("49683-6", 90, valueQuantity={"value": 1.5, "unit": "{ratio}"})
        p.obs("74860-8", 90, valueQuantity={"value": 6.5, "unit": "{copies}/{nucleus}"})
        got = [d.concern for d in run(p, t, params) if d.rule in ("R13", "R14")]
        assert got == ["R14:needs-ihc"]
