"""R17 endocrine therapy for hormone receptor-negative disease (rules/endocrine.py)."""

from __future__ import annotations

import pytest

from cds.parameters import Parameters
from cds.terminology import Terminology
from fixtures.factories import LETROZOLE, PALBO, TRAS, Patient, draft_med
from tests.rules.helpers import (
    bone_patient,
    concerns,
    run,
    text,
)

FULVESTRANT = ("282357", "Fulvestrant")
TAMOXIFEN = ("10324", "Tamoxifen")
ER, PR = "85337-4", "85339-0"


def chart(er: str | None, pr: str | None) -> Patient:
    """Bone metastases 100 days ago; ER and PR from the metastatic specimen (None: no result)."""
    p = bone_patient(her2="pos")
    p.resources = [r for r in p.resources if not any(c in str(r.get("code")) for c in (ER, PR))]
    if er is not None:
        p.er(90, er)
    if pr is not None:
        p.pr(90, pr)
    return p


def r17(p: Patient, t: Terminology, params: Parameters, *drugs: tuple[str, str]) -> list[str]:
    drafts = [draft_med("p", f"d{i}", rx, "as directed") for i, rx in enumerate(drugs)]
    return concerns([d for d in run(p, t, params, "order-sign", drafts) if d.rule == "R17"])


class TestR17:
    @pytest.mark.parametrize(
        ("er", "pr", "expected"),
        [
            ("neg", "neg", ["R17:hr-negative"]),
            ("pos", "neg", []),
            ("neg", "pos", []),  # ER-negative, PR-positive: may still respond
            ("neg", None, []),  # PR not tested: status unknown, no card
            (None, "neg", []),
            (None, None, []),
        ],
    )
    def test_statuses(
        self,
        t: Terminology,
        params: Parameters,
        er: str | None,
        pr: str | None,
        expected: list[str],
    ) -> None:
        assert r17(chart(er, pr), t, params, LETROZOLE) == expected

    def test_a_cdk46_inhibitor_alone(self, t: Terminology, params: Parameters) -> None:
        """Given with endocrine therapy, for HR-positive disease (Faslodex, Ibrance labels)."""
        assert r17(chart("neg", "neg"), t, params, PALBO) == ["R17:hr-negative"]
        assert r17(chart("pos", "pos"), t, params, PALBO) == []

    def test_a_positive_primary_silences_it(self, t: Terminology, params: Parameters) -> None:
        p = chart("neg", "neg")
        p.er(900, "pos")  # the primary tumour, long before the metastasis
        assert r17(p, t, params, FULVESTRANT) == []

    def test_an_earlier_positive_result_silences_it(
        self, t: Terminology, params: Parameters
    ) -> None:
        """The primary tumour's latest result is negative, an earlier one was positive."""
        p = chart("neg", "neg")
        p.pr(1000, "pos")
        p.pr(950, "neg")
        assert r17(p, t, params, LETROZOLE) == []

    def test_er_low_positive_counts_as_positive(self, t: Terminology, params: Parameters) -> None:
        p = chart(None, "neg")
        p.obs("85329-1", 90, valueQuantity={"value": 5, "unit": "%", "code": "%"})
        assert r17(p, t, params, LETROZOLE) == []

    def test_the_card(self, t: Terminology, params: Parameters) -> None:
        drafts = [
            draft_med("p", "d1", FULVESTRANT, "500 mg IM"),
            draft_med("p", "d2", TAMOXIFEN, "20 mg daily"),
            draft_med("p", "d3", TRAS, "6 mg/kg IV q3w"),
        ]
        [d] = [
            d for d in run(chart("neg", "neg"), t, params, "order-sign", drafts) if d.rule == "R17"
        ]
        assert (d.indicator, d.bindings["drugs"]) == ("warning", "fulvestrant and tamoxifen")
        assert [text(x) for x in d.data[:2]] == [
            "Draft order: MedicationRequest/d1",
            "Draft order: MedicationRequest/d2",
        ]
        assert [text(x).split(",")[0] for x in d.data[2:]] == [
            "ER negative from a metastatic specimen",
            "PR negative from a metastatic specimen",
        ]
        assert d.refs[:2] == ("MedicationRequest/d1", "MedicationRequest/d2")
        assert len(d.refs) == 4

    def test_other_orders_get_none(self, t: Terminology, params: Parameters) -> None:
        assert r17(chart("neg", "neg"), t, params, TRAS) == []

    @pytest.mark.parametrize(
        ("er", "status", "end", "expected"),
        [
            ("neg", "active", None, ["R17:hr-negative-in-use"]),
            ("neg", "unknown", None, ["R17:hr-negative-in-use"]),  # possibly in use
            ("neg", "completed", 200, []),  # a past line
            ("pos", "active", None, []),
        ],
    )
    def test_at_chart_open(
        self,
        t: Terminology,
        params: Parameters,
        er: str,
        status: str,
        end: int | None,
        expected: list[str],
    ) -> None:
        p = chart(er, "neg")
        p.med("MedicationStatement", LETROZOLE, status=status, start=300, end=end)
        found = [d for d in run(p, t, params) if d.rule == "R17"]
        assert concerns(found) == expected
        for d in found:
            assert "letrozole" in text(d.data[0]).lower()
            assert d.refs[0].startswith("MedicationStatement/")
        # The drafts' card is the order hooks' own; the medication list's waits for chart open.
        drafted = [draft_med("p", "d1", TRAS, "6 mg/kg IV q3w")]
        assert "R17" not in {d.rule for d in run(p, t, params, "order-sign", drafted)}
