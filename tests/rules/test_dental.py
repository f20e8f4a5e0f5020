"""R4 dental review and MRONJ (rules/dental.py)."""

from __future__ import annotations

from typing import Any

import pytest

from cds.parameters import Parameters
from cds.rules import Decision, Order
from cds.terminology import Terminology
from fixtures.factories import (
    ICD10,
    PROLIA,
    SNOMED,
    TDXD,
    TOXICITY,
    XGEVA,
    ZOL4,
    draft_med,
)
from tests.rules.helpers import bone_patient, concerns, creatinine_for, facts, ordered, run, text  # noqa: F401


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

    @pytest.mark.parametrize(
        ("med", "end", "fires"),
        [
            (XGEVA, 180, False),  # within new_treatment_gap_days: the treatment goes on
            (XGEVA, 181, True),  # ended before: this order begins a treatment
            (ZOL4, 600, True),  # adjuvant zoledronic acid years before
            (PROLIA, 100, True),  # an osteoporosis dose is not an oncologic treatment
        ],
    )
    def test_no_dental_card_once_on_bma(
        self, t: Terminology, params: Parameters, med: tuple[str, str], end: int, fires: bool
    ) -> None:
        p = bone_patient(dental=False)
        p.med("MedicationStatement", med, status="completed", start=end + 100, end=end)
        d = run(p, t, params, "order-select", [draft_med("p", "d", XGEVA, "120 mg", 120)])
        assert ("R4b:dental-before-bma" in concerns(d)) is fires


def _referral(status: str, days_ago: int | None = 12, rid: str = "sr-1") -> dict[str, Any]:
    """A dental referral (SNOMED 103697008, as R1 and R4 suggest it) `days_ago`."""
    return ordered(SNOMED, "103697008", status=status, days_ago=days_ago, rid=rid)


class TestDentalReferralOnRecord:
    """The referral the cards suggest, once ordered, is not suggested again (§3c D20)."""

    @pytest.mark.parametrize(
        ("status", "days_ago", "counts"),
        [
            pytest.param("active", 12, True, id="ordered"),
            pytest.param("active", 183, True, id="ordered-6-months-ago"),
            pytest.param("active", 184, False, id="ordered-before-the-look-back"),
            pytest.param("draft", 12, False, id="draft-nobody-signed"),
            pytest.param("on-hold", 12, False, id="on-hold"),
            pytest.param("revoked", 12, False, id="revoked"),
            pytest.param("active", None, False, id="undated"),
        ],
    )
    def test_a_referral_ordered_quiets_the_dental_review(
        self,
        t: Terminology,
        params: Parameters,
        status: str,
        days_ago: int | None,
        counts: bool,
    ) -> None:
        p = bone_patient(dental=False)
        p.med("MedicationStatement", XGEVA, status="active", start=10)
        p.add(_referral(status, days_ago))
        assert ("R4a:dental-review" in concerns(run(p, t, params))) is not counts

    def test_the_start_card_names_it_and_orders_no_second_one(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient(dental=False)
        [without] = [d for d in run(p, t, params) if d.rule == "R1"]
        p.add(_referral("active"))
        [start] = [d for d in run(p, t, params) if d.rule == "R1"]

        def orders(d: Decision) -> set[str]:
            return {a.key for pr in d.proposals for a in pr.actions if isinstance(a, Order)}

        assert "dental-referral" in orders(without)
        assert "dental-referral" not in orders(start)
        assert any(text(line).startswith("Dental referral ordered") for line in start.data)
        assert "R4a:dental-review" not in concerns(run(p, t, params))

    @pytest.mark.parametrize("where", ["chart", "order"])
    def test_a_first_bma_order_with_the_referral_ordered(
        self, t: Terminology, params: Parameters, where: str
    ) -> None:
        p = bone_patient(dental=False)
        drafts = [draft_med("p", "d", XGEVA, "120 mg SC q4w", 120)]
        if where == "chart":
            p.add(_referral("active"))
        else:
            drafts.append(_referral("draft", None, rid="draft-referral"))
        d = run(p, t, params, "order-sign", drafts)
        assert "R4b:dental-before-bma" not in concerns(d)

    def test_an_extraction_drafted_is_no_referral(self, t: Terminology, params: Parameters) -> None:
        drafts = [draft_med("p", "d", XGEVA, "120 mg SC q4w", 120), _EXTRACTION]
        d = run(bone_patient(dental=False), t, params, "order-sign", drafts)
        assert "R4b:dental-before-bma" in concerns(d)


_EXTRACTION = {
    "resourceType": "ServiceRequest",
    "id": "draft-ext",
    "status": "draft",
    "intent": "order",
    "subject": {"reference": "Patient/p"},
    "code": {"text": "Dental extraction, lower left molar"},
}


class TestR4DentalOnAnAgentOfUnknownStatus:
    """A bone agent recorded with status 'unknown' may still be given: the MRONJ checks name
    it instead of dropping the card (they never say 'on' it)."""

    @pytest.mark.parametrize(
        ("status", "end", "expected"),
        [
            ("active", None, ["R4c:invasive-dental"]),
            ("unknown", None, ["R4c:invasive-dental-status-unknown"]),
            ("unknown", 100, []),  # ended by its dates: history
        ],
    )
    def test_an_extraction_drafted(
        self,
        t: Terminology,
        params: Parameters,
        status: str,
        end: int | None,
        expected: list[str],
    ) -> None:
        p = bone_patient()
        p.med("MedicationStatement", XGEVA, status=status, start=400, end=end)
        decisions = [d for d in run(p, t, params, "order-sign", [_EXTRACTION]) if d.rule == "R4c"]
        assert concerns(decisions) == expected
        if status == "unknown" and decisions:
            said = [text(x) for x in decisions[0].data]
            assert any("denosumab recorded with status 'unknown'" in x for x in said)

    def test_an_agent_in_use_keeps_the_plain_warning_and_names_the_other(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient()
        p.med("MedicationStatement", XGEVA, status="active", start=20)
        p.med("MedicationStatement", ("1737461", "Pamidronate"), status="unknown", start=400)
        [d] = [x for x in run(p, t, params, "order-sign", [_EXTRACTION]) if x.rule == "R4c"]
        assert d.variant == "invasive-dental"
        assert any("pamidronate recorded with status 'unknown'" in text(x) for x in d.data)

    def test_mronj_names_the_agent_of_unknown_status(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient()
        p.med("MedicationStatement", XGEVA, status="unknown", start=400)
        p.condition("", "", "", 20, text="Osteonecrosis of the jaw, medication-related")
        [d] = [x for x in run(p, t, params) if x.rule == "R4d"]
        said = [text(x) for x in d.data]
        assert any("denosumab recorded with status 'unknown'" in x for x in said)
        assert not any(x.startswith("On denosumab") for x in said)


class TestR4dMronjCard:
    def test_a_course_charted_dose_by_dose_is_named_from_its_first_dose(
        self, t: Terminology, params: Parameters
    ) -> None:
        """Denosumab charted as monthly administrations: 'since' is the course's first dose,
        not the latest dose's date."""
        p = bone_patient()
        for days_ago in (84, 56, 28, 1):
            p.med("MedicationAdministration", XGEVA, status="completed", start=days_ago)
        p.condition("", "", "", 20, text="Osteonecrosis of the jaw, medication-related")
        [d] = [x for x in run(p, t, params) if x.rule == "R4d"]
        said = [text(x) for x in d.data if text(x).startswith("On denosumab")]
        assert said
        assert all(x.startswith(f"On denosumab since {p.day(84)[:10]} (") for x in said)

    @pytest.mark.parametrize(
        ("records", "expected"),
        [
            pytest.param([("MedicationRequest", "on-hold", 300)], "R4d:mronj-held", id="held"),
            pytest.param(
                [
                    ("MedicationRequest", "on-hold", 300),
                    ("MedicationAdministration", "completed", 56),
                ],
                "R4d:mronj-held",
                id="held-last-dose-before",
            ),
            pytest.param(
                [
                    ("MedicationRequest", "on-hold", 300),
                    ("MedicationAdministration", "completed", 10),
                ],
                "R4d:mronj",
                id="dosed-since",
            ),
            pytest.param([("MedicationRequest", "active", 300)], "R4d:mronj", id="active"),
            pytest.param(
                [("MedicationRequest", "on-hold", 300), ("MedicationStatement", "active", 300)],
                "R4d:mronj",
                id="another-record-active",
            ),
            # No agent in use: nothing to review; R1 refers to oral surgery (D5), one card.
            pytest.param([("MedicationRequest", "stopped", 300)], None, id="stopped"),
            pytest.param([], None, id="never-given"),
        ],
    )
    def test_by_what_the_chart_holds(
        self,
        t: Terminology,
        params: Parameters,
        records: list[tuple[str, str, int]],
        expected: str | None,
    ) -> None:
        p = bone_patient()
        for rtype, status, days_ago in records:
            p.med(rtype, XGEVA, status=status, start=days_ago)
        p.condition(ICD10, "M87.180", "Osteonecrosis due to drugs, jaw", 40)
        found = [c for c in concerns(run(p, t, params)) if c.startswith("R4d")]
        assert found == ([expected] if expected else [])
        if expected is None:
            assert "R1:held-mronj" in concerns(run(p, t, params))


class TestR4eOrderAgainstTheRecord:
    """A bone agent ordered with MRONJ active, or the same agent after it was not tolerated."""

    MRONJ = "Osteonecrosis of the jaw, medication-related"

    @pytest.mark.parametrize(
        ("status", "draft", "expected"),
        [
            ("active", XGEVA, ["R4e:mronj-order"]),
            ("active", ZOL4, ["R4e:mronj-order"]),
            ("resolved", XGEVA, []),  # healed: nothing to decide at this order
            ("active", TDXD, []),  # not a bone agent
        ],
    )
    def test_mronj(
        self,
        t: Terminology,
        params: Parameters,
        status: str,
        draft: tuple[str, str],
        expected: list[str],
    ) -> None:
        p = bone_patient()
        p.med("MedicationStatement", XGEVA, status="active", start=300)
        p.condition("", "", "", 20, status=status, text=self.MRONJ)
        drafts = [draft_med("p", "d1", draft, "as ordered", 120)]
        decisions = [d for d in run(p, t, params, "order-sign", drafts) if d.rule == "R4e"]
        assert concerns(decisions) == expected
        if expected:
            assert [text(x) for x in decisions[0].data] == [
                f"Osteonecrosis of the jaw recorded {p.day(20)}",
                "Draft order: MedicationRequest/d1",
            ]
            assert decisions[0].proposals == ()  # the decision is not preselected

    @pytest.mark.parametrize(
        ("draft", "expected"),
        [
            (ZOL4, ["R4e:not-tolerated-order"]),
            (XGEVA, []),  # another agent: a switch, which the start card leaves open
        ],
    )
    def test_not_tolerated(
        self, t: Terminology, params: Parameters, draft: tuple[str, str], expected: list[str]
    ) -> None:
        p = bone_patient()
        p.med("MedicationStatement", ZOL4, status="stopped", start=260, end=150, reason=TOXICITY)
        drafts = [draft_med("p", "d1", draft, "as ordered", 4)]
        decisions = [d for d in run(p, t, params, "order-sign", drafts) if d.rule == "R4e"]
        assert concerns(decisions) == expected
        if expected:
            [stopped, order] = [text(x) for x in decisions[0].data]
            assert stopped.startswith(f"zoledronic acid stopped as not tolerated {p.day(150)} (")
            assert order == "Draft order: MedicationRequest/d1"

    def test_not_on_patient_view(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient()
        p.condition("", "", "", 20, text=self.MRONJ)
        assert not [d for d in run(p, t, params) if d.rule == "R4e"]
