"""Capecitabine by Cockcroft-Gault creatinine clearance (§3c D8), offered and ordered (R6b), and
its dose per m² against the label (R6m)."""

from __future__ import annotations

from typing import Any

import pytest

from cds.parameters import Parameters
from cds.rules import Decision, RegimenOrder
from cds.terminology import Terminology
from fixtures.factories import (
    CAPE,
    DOCE,
    PERT,
    PROGRESSION,
    TDXD,
    TRAS,
    UCUM,
    WORSENED,
    Patient,
    draft_med,
    drop_codes,
    her2_positive_base,
)
from tests.rules.helpers import concerns, creatinine_for, run, text


def _third_line(crcl: float | None) -> Patient:
    """Progressed on THP and then on T-DXd: third-line options include capecitabine regimens.
    A 62-year-old woman of 68 kg; `crcl` None removes the weight (no Cockcroft-Gault)."""
    p = her2_positive_base("p", bma=True, met_days=950)
    for drug in (DOCE, TRAS, PERT):
        p.med("MedicationStatement", drug, status="stopped", start=800, end=500, reason=PROGRESSION)
    p.med("MedicationStatement", TDXD, status="stopped", start=490, end=30, reason=PROGRESSION)
    p.disease_status(20, *WORSENED)
    drop_codes(p, "2160-0", "29463-7")
    if crcl is not None:
        p.labs(creatinine=creatinine_for(crcl))
    else:
        p.obs("2160-0", 7, valueQuantity={"value": 0.8, "unit": "mg/dL", "code": "mg/dL"})
    return p


def _r6(p: Patient, t: Terminology, params: Parameters) -> Decision:
    [d] = [x for x in run(p, t, params) if x.rule == "R6"]
    return d


def _cape_orders(d: Decision) -> dict[str, bool]:
    """Regimen key → renal_reduced, for the regimens with capecitabine."""
    return {
        a.key: a.renal_reduced
        for prop in d.proposals
        for a in prop.actions
        if isinstance(a, RegimenOrder) and "capecitabine" in a.key
    }


class TestOffered:
    @pytest.mark.parametrize(
        ("crcl", "offered", "reduced"),
        [(29.5, False, False), (30.5, True, True), (49.5, True, True), (51.0, True, False)],
    )
    def test_bands(
        self,
        t: Terminology,
        params: Parameters,
        crcl: float,
        offered: bool,
        reduced: bool,
    ) -> None:
        d = _r6(_third_line(crcl), t, params)
        orders = _cape_orders(d)
        assert bool(orders) is offered
        assert all(v is reduced for v in orders.values())
        assert ("capecitabine-renal" in d.note_keys) is reduced

    def test_each_regimen_left_out_is_named_once(self, t: Terminology, params: Parameters) -> None:
        """Below CrCl 30 every capecitabine regimen is left out and named: the two neratinib
        regimens (with loperamide, with the dose escalation) are one line, not two alike."""
        d = _r6(_third_line(25.0), t, params)
        left_out = [text(n) for n in d.notes if "capecitabine is contraindicated" in text(n)]
        assert len(left_out) == len(set(left_out))
        assert sum(line.startswith("Not suggested: neratinib + ") for line in left_out) == 1
        assert len(left_out) == 4  # tucatinib, neratinib, lapatinib, trastuzumab with it

    def test_not_prefilled_without_cockcroft_gault(
        self, t: Terminology, params: Parameters
    ) -> None:
        d = _r6(_third_line(None), t, params)
        assert _cape_orders(d) == {}
        assert any("cannot be calculated" in text(n) for n in d.notes)


class TestOrdered:
    def _order(self, p: Patient, t: Terminology, params: Parameters) -> list[str]:
        draft = draft_med("p", "cape", CAPE, "1,000 mg/m² by mouth twice daily days 1-14")
        return concerns(run(p, t, params, "order-sign", [draft]))

    @pytest.mark.parametrize(
        ("crcl", "expected"),
        [
            (29.5, "R6b:contraindicated"),
            (30.5, "R6b:reduce"),
            (50.0, "R6b:reduce"),
            (51.0, None),
            (None, "R6b:crcl-unknown"),
        ],
    )
    def test_bands(
        self, t: Terminology, params: Parameters, crcl: float | None, expected: str | None
    ) -> None:
        got = [c for c in self._order(_third_line(crcl), t, params) if c.startswith("R6b")]
        assert got == ([expected] if expected else [])

    @pytest.mark.parametrize(
        ("ended", "status", "reduce"),
        [
            (None, "active", False),  # the course goes on: its starting dose was set
            (180, "completed", False),  # within new_treatment_gap_days: the same treatment
            (181, "completed", True),  # a course begun again starts at its adjusted dose
            (830, "completed", True),  # adjuvant capecitabine years before
        ],
    )
    def test_a_course_begun_again_is_adjusted_as_a_first(
        self,
        t: Terminology,
        params: Parameters,
        ended: int | None,
        status: str,
        reduce: bool,
    ) -> None:
        p = _third_line(40)
        start = 60 if ended is None else ended + 100
        p.med("MedicationStatement", CAPE, status=status, start=start, end=ended)
        got = [c for c in self._order(p, t, params) if c.startswith("R6b")]
        assert got == (["R6b:reduce"] if reduce else [])


TUCATINIB = ("2361285", "Tucatinib")
NERATINIB = ("1940643", "Neratinib")


def _per_m2(dose: float, unit: str = "mg/m2") -> list[dict[str, object]]:
    return [{"doseQuantity": {"value": dose, "unit": unit, "system": UCUM, "code": unit}}]


class TestR6mCapecitabineAboveItsDose:
    @pytest.mark.parametrize(
        ("dose", "partner", "expected"),
        [
            ("1250 mg/m2 by mouth twice daily on days 1-14", None, None),  # Xeloda's
            ("1000 mg/m2 by mouth twice daily", None, None),
            ("2500 mg/m2 by mouth twice daily", None, ("above-label", "1,250 mg/m² twice daily")),
            # the day's dose at once: above each dose's, as the card says
            ("2500 mg/m2 by mouth daily", None, ("above-label", "1,250 mg/m² twice daily")),
            (
                "1250 mg/m2 by mouth three times daily",
                None,
                ("above-label", "1,250 mg/m² twice daily"),
            ),
            ("12500 mg/m2 by mouth twice daily", None, ("unit-error", "1,250 mg/m² twice daily")),
            ("1000 mg/m2 by mouth twice daily", TUCATINIB, None),
            (
                "1250 mg/m2 by mouth twice daily",
                TUCATINIB,
                ("above-label", "1,000 mg/m² twice daily with tucatinib"),
            ),
            (
                "1000 mg/m2 by mouth twice daily",
                NERATINIB,
                ("above-label", "750 mg/m² twice daily with neratinib"),
            ),
            ("750 mg/m2 by mouth twice daily", NERATINIB, None),
            # a flat dose: judged at 3 m², the largest body surface area the check allows
            ("2000 mg by mouth twice daily", None, None),
            ("3750 mg by mouth twice daily", None, None),
            ("4000 mg by mouth twice daily", None, ("above-label-flat", "1,250 mg/m² twice daily")),
            (
                "2500 mg by mouth twice daily",
                NERATINIB,
                ("above-label-flat", "750 mg/m² twice daily with neratinib"),
            ),
            ("40 g by mouth twice daily", None, ("unit-error", "1,250 mg/m² twice daily")),
            ("as directed", None, None),
            # A day's total alone, judged against the label's day (twice the dose).
            ("2000 mg/m2/day in two doses on days 1-14", None, None),
            ("2500 mg/m2/day in two doses", None, None),
            ("3000 mg/m2/day in two doses", None, ("above-label", "1,250 mg/m² twice daily")),
            ("2000 mg/m2/day in two doses", TUCATINIB, None),
            (
                "2000 mg/m2/day in two doses",
                NERATINIB,
                ("above-label", "750 mg/m² twice daily with neratinib"),
            ),
            ("25000 mg/m2/day", None, ("unit-error", "1,250 mg/m² twice daily")),
            # Each dose written decides: the day's words beside it are not read again.
            ("1000 mg/m2 twice daily (2000 mg/m2/day)", TUCATINIB, None),
        ],
    )
    def test_dose_partner_and_day(
        self,
        t: Terminology,
        params: Parameters,
        dose: str,
        partner: tuple[str, str] | None,
        expected: tuple[str, str] | None,
    ) -> None:
        drafts = [draft_med("p", "cape", CAPE, dose)]
        if partner is not None:
            drafts.append(draft_med("p", "tki", partner, "as directed"))
        found = [
            d for d in run(_third_line(80), t, params, "order-sign", drafts) if d.rule == "R6m"
        ]
        got = [(d.variant, d.bindings["label_dose"]) for d in found]
        assert got == ([] if expected is None else [expected])

    @pytest.mark.parametrize(
        ("dose", "unread"),
        [
            ({"doseQuantity": {"value": 3, "code": "{tbl}"}}, "dose 3 in '{tbl}', not a mass"),
            ({"doseQuantity": {"value": 10, "unit": "mL"}}, "dose 10 in 'mL', not a mass unit"),
            (
                {"doseRange": {"low": {"value": 1000, "unit": "mg"}, "high": {"value": 1500}}},
                "dose written as a range",
            ),
            ({"doseQuantity": {"value": 1000, "unit": "mg/m2"}}, None),  # per m²: read
        ],
    )
    def test_a_dose_given_but_not_read_is_named(
        self, t: Terminology, params: Parameters, dose: dict[str, Any], unread: str | None
    ) -> None:
        """A capecitabine draft whose dose is given but not read (tablets of no stated
        strength, a volume, a range) was passed over: information with the label dose that
        applies and why the dose was not read."""
        draft = draft_med("p", "cape", CAPE, "by mouth twice daily")
        draft["dosageInstruction"][0]["doseAndRate"] = [dose]
        found = [
            d for d in run(_third_line(80), t, params, "order-sign", [draft]) if d.rule == "R6m"
        ]
        if unread is None:
            assert found == []
            return
        [d] = found
        assert (d.variant, d.indicator) == ("dose-unread", "info")
        assert d.bindings["label_dose"] == "1,250 mg/m² twice daily"
        assert unread in text(d.data[1])

    def test_a_days_total_is_shown_as_written(self, t: Terminology, params: Parameters) -> None:
        drafts = [draft_med("p", "cape", CAPE, "3000 mg/m2/day in two doses")]
        [d] = [x for x in run(_third_line(80), t, params, "order-sign", drafts) if x.rule == "R6m"]
        assert text(d.bindings["dose"]) == "3000 mg/m² a day"

    def test_the_partner_drafted_decides_before_one_in_use(
        self, t: Terminology, params: Parameters
    ) -> None:
        """Capecitabine drafted with tucatinib is HER2CLIMB's 1,000 mg/m², though a neratinib
        record of unknown status is open (it said 'above the Nerlynx dose')."""
        p = _third_line(80)
        p.med("MedicationStatement", NERATINIB, status="unknown", start=60)
        drafts = [
            draft_med("p", "cape", CAPE, "1000 mg/m2 by mouth twice daily"),
            draft_med("p", "tuc", TUCATINIB, "300 mg by mouth twice daily", 300),
        ]
        assert [d for d in run(p, t, params, "order-sign", drafts) if d.rule == "R6m"] == []
        drafts[0] = draft_med("p", "cape", CAPE, "1250 mg/m2 by mouth twice daily")
        [d] = [x for x in run(p, t, params, "order-sign", drafts) if x.rule == "R6m"]
        assert d.bindings["label"] == "Tukysa"

    def test_a_structured_dose_and_the_partner_in_use(
        self, t: Terminology, params: Parameters
    ) -> None:
        """The dose read from doseQuantity in mg/m²; neratinib on the chart sets its label's
        dose, named with its label, and the card names the neratinib record it rests on."""
        p = _third_line(80)
        ner = p.med("MedicationStatement", NERATINIB, status="active", start=10)
        draft = draft_med("p", "cape", CAPE, "capecitabine twice daily on days 1-14")
        draft["dosageInstruction"][0]["doseAndRate"] = _per_m2(1000.0)
        [d] = [x for x in run(p, t, params, "order-sign", [draft]) if x.rule == "R6m"]
        assert (d.variant, d.indicator) == ("above-label", "warning")
        assert d.bindings["label"] == "Nerlynx"
        assert text(d.bindings["dose"]) == "1000 mg/m² (2000 mg/m² a day)"
        assert d.refs == ("MedicationRequest/cape", f"MedicationStatement/{ner['id']}")
        assert text(d.data[1]).startswith("neratinib: last recorded ")
