"""Bone-agent and T-DXd orders against their labels (§3c D1, D2, D3), with boundary tables."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from cds.parameters import Parameters
from cds.rules import Decision, DeleteDraft, UpdateDraft
from cds.terminology import Terminology
from fixtures.factories import (
    AS_OF,
    ENHERTU,
    PAMIDRONATE,
    RXNORM,
    TDM1,
    TDXD,
    XGEVA,
    ZOL4,
    Patient,
    draft_med,
    drop_codes,
)
from tests.rules.helpers import bone_patient, concerns, creatinine_for, lines, run, text

UCUM = "http://unitsofmeasure.org"
GTS = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"


def _draft(rx: tuple[str, str], mg: float, *, every: tuple[float, str] | None = None) -> Any:
    d = draft_med("p", "draft-1", rx, "as directed", mg)
    if every is not None:
        d["dosageInstruction"][0]["timing"] = {
            "repeat": {"frequency": 1, "period": every[0], "periodUnit": every[1]}
        }
    return d


def _signed(p: Patient, t: Terminology, params: Parameters, drafts: list[Any]) -> list[Decision]:
    """The order's decisions, but for the calcium/vitamin D card a first bone-agent order with
    no supplement on record also gets (R3b, tested in test_bone_start.py)."""
    found = run(p, t, params, "order-sign", drafts)
    return [d for d in found if d.concern != "R3b:supplement-with-order"]


def _order(p: Patient, t: Terminology, params: Parameters, draft: Any) -> list[str]:
    return concerns(_signed(p, t, params, [draft]))


class TestDoseTooSoonAfterTheLast:
    """§3c D1 schedules: a draft sooner after the last charted dose than the label interval."""

    @pytest.mark.parametrize(
        ("rx", "mg", "days_ago", "calcium", "expected"),
        [
            (XGEVA, 120, 7, 9.4, ["R2b:too-soon"]),
            (XGEVA, 120, 27, 9.4, ["R2b:too-soon"]),
            (XGEVA, 120, 28, 9.4, []),  # every 4 weeks
            (ZOL4, 4, 20, 9.4, ["R2b:too-soon"]),
            (ZOL4, 4, 21, 9.4, []),  # every 3-4 weeks
            (ZOL4, 4, 6, 13.0, ["R2b:too-soon"]),  # hypercalcaemia of malignancy: 7 days
            (ZOL4, 4, 7, 13.0, []),
            (PAMIDRONATE, 90, 6, 13.0, ["R2b:too-soon"]),  # the same 7 days (NCI PDQ)
            (PAMIDRONATE, 90, 7, 13.0, []),
            (PAMIDRONATE, 90, 20, 9.4, ["R2b:too-soon"]),
        ],
    )
    def test_a_charted_dose_within_the_label_interval(
        self,
        t: Terminology,
        params: Parameters,
        rx: tuple[str, str],
        mg: float,
        days_ago: int,
        calcium: float,
        expected: list[str],
    ) -> None:
        p = bone_patient(calcium=calcium)
        given = p.med("MedicationAdministration", rx, status="completed", start=days_ago, mg=mg)
        decisions = run(p, t, params, "order-sign", [_draft(rx, mg)])
        soon = [d for d in decisions if d.concern == "R2b:too-soon"]
        assert [d.concern for d in soon] == expected
        if soon:
            assert f"MedicationAdministration/{given['id']}" in soon[0].refs
            assert any(f"{days_ago} days ago" in text(x) for x in soon[0].data)
            # The early retreatment of hypercalcaemia is said on the bisphosphonates' cards only.
            hcm = ("hcm-retreatment",) if rx != XGEVA else ()
            assert soon[0].note_keys == hcm

    @pytest.mark.parametrize(
        ("rx", "dose", "notes"),
        [
            (XGEVA, "120 mg SC weekly", ("xgeva-loading-doses",)),
            (ZOL4, "4 mg IV weekly", ()),
            (TDXD, "5.4 mg/kg IV daily", ()),
            (TDM1, "3.6 mg/kg IV weekly", ()),
        ],
    )
    def test_too_frequent_names_xgeva_loading_doses_on_denosumab_only(
        self,
        t: Terminology,
        params: Parameters,
        rx: tuple[str, str],
        dose: str,
        notes: tuple[str, ...],
    ) -> None:
        """Xgeva's days 8 and 15 are its own label's (giant cell tumour, hypercalcaemia): an
        antibody-drug conjugate's or zoledronic acid's card never mentions them."""
        draft = draft_med("p", "d", rx, dose)
        decisions = run(bone_patient(her2="pos"), t, params, "order-sign", [draft])
        [card] = [d for d in decisions if d.concern == "R2b:too-frequent"]
        assert card.note_keys == notes

    def test_a_course_recorded_by_statement_or_order_dates_no_dose(
        self, t: Terminology, params: Parameters
    ) -> None:
        """A statement's or an order's dates are a course's, not a dose's: no card."""
        p = bone_patient()
        p.med("MedicationStatement", XGEVA, status="active", start=7)
        p.med("MedicationRequest", XGEVA, status="completed", start=7, end=7)
        assert "R2b:too-soon" not in _order(p, t, params, _draft(XGEVA, 120))

    def test_the_next_cycles_order_is_judged_at_its_start(
        self, t: Terminology, params: Parameters
    ) -> None:
        """Signed on the day of a dose for the next cycle, four weeks on: no card."""
        p = bone_patient()
        p.med("MedicationAdministration", XGEVA, status="completed", start=0, mg=120)
        draft = _draft(XGEVA, 120)
        draft["dosageInstruction"][0]["timing"] = {
            "repeat": {"boundsPeriod": {"start": (AS_OF + timedelta(days=28)).isoformat()}}
        }
        assert "R2b:too-soon" not in _order(p, t, params, draft)
        draft["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]["start"] = (
            AS_OF + timedelta(days=14)
        ).isoformat()
        assert "R2b:too-soon" in _order(p, t, params, draft)


class TestDraftedTwice:
    def test_one_card_on_the_first_with_the_second_to_remove(
        self, t: Terminology, params: Parameters
    ) -> None:
        one, two = _draft(ZOL4, 4), _draft(ZOL4, 4)
        two["id"] = "draft-2"
        decisions = run(bone_patient(), t, params, "order-sign", [one, two])
        [d] = [x for x in decisions if x.concern == "R2b:drafted-twice"]
        assert d.refs == ("MedicationRequest/draft-1", "MedicationRequest/draft-2")
        [proposal] = d.proposals
        assert proposal.actions == (DeleteDraft(draft_ref="MedicationRequest/draft-2"),)

    def test_two_different_agents_are_r2c_not_a_duplicate(
        self, t: Terminology, params: Parameters
    ) -> None:
        two = _draft(XGEVA, 120)
        two["id"] = "draft-2"
        got = concerns(run(bone_patient(), t, params, "order-sign", [_draft(ZOL4, 4), two]))
        assert "R2b:drafted-twice" not in got
        assert "R2c:drafted-together" in got


class TestDoseCeilings:
    """D1: every bone agent's label dose, at every renal function."""

    @pytest.mark.parametrize(
        ("dose", "structured", "expected"),
        [
            ("5.4 mg/kg IV every 3 weeks", True, []),
            ("6.4 mg/kg IV every 3 weeks", True, ["R2b:above-label-per-kg"]),
            ("6.4 mg/kg IV every 3 weeks", False, ["R2b:above-label-per-kg"]),  # text only
            ("54 mg/kg IV every 3 weeks", True, ["R2b:unit-error"]),
            ("300 mg IV every 3 weeks", False, []),  # a calculated dose in mg: not judged
        ],
    )
    def test_tdxd_by_body_weight(
        self, t: Terminology, params: Parameters, dose: str, structured: bool, expected: list[str]
    ) -> None:
        """Enhertu label: 5.4 mg/kg every 3 weeks for breast cancer."""
        draft = draft_med("p", "d1", TDXD, dose)
        if structured:
            value = float(dose.split()[0])
            draft["dosageInstruction"][0]["doseAndRate"] = [
                {"doseQuantity": {"value": value, "unit": "mg/kg", "code": "mg/kg"}}
            ]
        decisions = run(bone_patient(her2="pos"), t, params, "order-sign", [draft])
        r2b = [d for d in decisions if d.rule == "R2b"]
        assert concerns(r2b) == expected
        if expected:
            assert r2b[0].bindings["label_dose"] == "5.4 mg/kg"

    @pytest.mark.parametrize(
        ("dose", "expected"),
        [
            ("3.6 mg/kg IV every 3 weeks", []),
            ("3 mg/kg IV every 3 weeks", []),  # the label's first dose reduction
            ("6 mg/kg IV every 3 weeks", ["R2b:above-label-per-kg"]),  # trastuzumab's dose
            ("36 mg/kg IV every 3 weeks", ["R2b:unit-error"]),
            ("3.6 mg/kg IV weekly", ["R2b:too-frequent"]),
        ],
    )
    def test_tdm1_by_body_weight(
        self, t: Terminology, params: Parameters, dose: str, expected: list[str]
    ) -> None:
        """Kadcyla label: 3.6 mg/kg every 3 weeks; do not administer above 3.6 mg/kg."""
        draft = draft_med("p", "d1", TDM1, dose)
        decisions = run(bone_patient(her2="pos"), t, params, "order-sign", [draft])
        r2b = [d for d in decisions if d.rule == "R2b"]
        assert concerns(r2b) == expected
        if expected and expected[0] != "R2b:too-frequent":
            assert r2b[0].bindings["label_dose"] == "3.6 mg/kg"

    @pytest.mark.parametrize(
        ("drug", "mg", "weight", "expected"),
        [
            (TDM1, 245, 68.0, []),  # 3.6 mg/kg at 68 kg
            (TDM1, 269, 68.0, []),  # 9.9% above: rounded to the vial (HOPA: within 10%)
            (TDM1, 270, 68.0, ["R2b:above-label-by-weight"]),  # 10.3% above
            (TDM1, 367, 68.0, ["R2b:above-label-by-weight"]),  # T-DXd's 5.4 mg/kg
            (TDM1, 2448, 68.0, ["R2b:unit-error"]),  # ten times
            (TDXD, 400, 68.0, []),  # 5.4 mg/kg is 367 mg: 400 mg is within 10%
            (TDXD, 544, 68.0, ["R2b:above-label-by-weight"]),  # 8 mg/kg
            # No weight within 90 days: a dose in mg cannot be judged, and the card says so.
            (TDXD, 544, None, ["R2b:weight-unknown"]),
            (TDM1, 147, 68.0, []),  # 2.4 mg/kg is 163 mg: 147 mg is within 10% below it
            (TDM1, 146, 68.0, ["R2b:below-lowest-level-by-weight"]),
            (TDXD, 196, 68.0, []),  # 3.2 mg/kg is 218 mg: within 10%
            (TDXD, 195, 68.0, ["R2b:below-lowest-level-by-weight"]),
            (TDXD, 100, None, ["R2b:weight-unknown"]),
        ],
    )
    def test_dose_in_mg_by_the_latest_weight(
        self,
        t: Terminology,
        params: Parameters,
        drug: tuple[str, str],
        mg: float,
        weight: float | None,
        expected: list[str],
    ) -> None:
        """A dose in mg of a drug dosed by weight, against the label's mg/kg at the latest
        weight, beyond the 10% HOPA accepts for rounding."""
        p = bone_patient(her2="pos")
        if weight is None:
            drop_codes(p, "29463-7")
        decisions = run(p, t, params, "order-sign", [draft_med("p", "d1", drug, "IV", mg)])
        r2b = [d for d in decisions if d.rule == "R2b"]
        assert concerns(r2b) == expected
        if expected == ["R2b:weight-unknown"]:
            assert r2b[0].indicator == "info"
            assert [text(x) for x in r2b[0].missing] == ["body weight within 90 days"]
        elif expected:
            assert text(r2b[0].data[1]).startswith("Body weight 68 kg on ")
            assert r2b[0].refs[1].startswith("Observation/")

    @pytest.mark.parametrize(
        ("drug", "per_kg", "expected"),
        [
            (TDXD, 4.4, []),  # the Enhertu label's first dose reduction
            (TDXD, 3.2, []),  # its second
            (TDXD, 3.1, ["R2b:below-lowest-level"]),
            (TDXD, 0.54, ["R2b:below-lowest-level"]),
            (TDM1, 3.0, []),  # the Kadcyla label's first dose reduction
            (TDM1, 2.4, []),  # its second
            (TDM1, 2.0, ["R2b:below-lowest-level"]),
        ],
    )
    def test_below_the_lowest_dose_level(
        self,
        t: Terminology,
        params: Parameters,
        drug: tuple[str, str],
        per_kg: float,
        expected: list[str],
    ) -> None:
        """Both labels reduce in two steps and discontinue when a further reduction would be
        needed: a dose below the last step is named, with the steps."""
        draft = draft_med("p", "d1", drug, f"{per_kg:g} mg/kg IV every 3 weeks")
        decisions = run(bone_patient(her2="pos"), t, params, "order-sign", [draft])
        r2b = [d for d in decisions if d.rule == "R2b"]
        assert concerns(r2b) == expected
        if expected:
            levels = (
                "5.4 mg/kg, 4.4 mg/kg, 3.2 mg/kg"
                if drug == TDXD
                else "3.6 mg/kg, 3 mg/kg, 2.4 mg/kg"
            )
            assert r2b[0].bindings["levels"] == levels
            assert r2b[0].indicator == "warning"

    @pytest.mark.parametrize(
        ("drug", "per_kg", "other"),
        [
            (TDM1, 6, "Herceptin"),  # trastuzumab's maintenance dose in the T-DM1 order
            (TDXD, 8, "Herceptin"),  # its loading dose in the T-DXd order
            (TDM1, 5.4, "Enhertu"),
            (TDXD, 6.4, None),
        ],
    )
    def test_a_dose_above_the_label_that_is_another_drugs_is_named(
        self,
        t: Terminology,
        params: Parameters,
        drug: tuple[str, str],
        per_kg: float,
        other: str | None,
    ) -> None:
        draft = draft_med("p", "d1", drug, f"{per_kg:g} mg/kg IV every 3 weeks")
        decisions = run(bone_patient(her2="pos"), t, params, "order-sign", [draft])
        [d] = [x for x in decisions if x.rule == "R2b"]
        assert d.concern == "R2b:above-label-per-kg"
        assert d.bindings.get("other_label") == other
        assert d.note_keys == (("another-drugs-level",) if other else ())

    @pytest.mark.parametrize(
        ("drug", "per_kg", "other"),
        [
            (TDXD, 5.4, None),
            (TDXD, 4.4, None),
            (TDXD, 5.0, ""),  # between the levels: no label step
            (TDXD, 3.6, "Kadcyla"),  # T-DM1's dose written into the T-DXd order
            (TDM1, 3.0, None),
            (TDM1, 3.2, "Enhertu"),  # T-DXd's second reduction
        ],
    )
    def test_a_dose_between_the_label_levels(
        self,
        t: Terminology,
        params: Parameters,
        drug: tuple[str, str],
        per_kg: float,
        other: str | None,
    ) -> None:
        """A dose by weight that is no step of the label's; one that is another drug's step is
        named as that drug's (the labels: do not substitute one for the other)."""
        draft = draft_med("p", "d1", drug, f"{per_kg:g} mg/kg IV every 3 weeks")
        decisions = run(bone_patient(her2="pos"), t, params, "order-sign", [draft])
        r2b = [d for d in decisions if d.rule == "R2b"]
        assert concerns(r2b) == ([] if other is None else ["R2b:not-a-dose-level"])
        if other:
            assert r2b[0].bindings["other_label"] == other
            assert r2b[0].note_keys == ("another-drugs-level",)
        elif other == "":
            assert r2b[0].note_keys == ()

    @pytest.mark.parametrize(
        ("mg", "expected"),
        [
            (4.0, []),
            (4.1, ["R2b:above-label"]),
            (39.9, ["R2b:above-label"]),
            (40.0, ["R2b:unit-error"]),
            (4000.0, ["R2b:unit-error"]),
        ],
    )
    def test_zoledronic_acid_above_crcl_60(
        self, t: Terminology, params: Parameters, mg: float, expected: list[str]
    ) -> None:
        """CrCl > 60 (normal creatinine): 4 mg is the label dose; 10x or more is a unit error."""
        assert _order(bone_patient(), t, params, _draft(ZOL4, mg)) == expected

    def test_four_grams_is_critical_and_corrects_to_4_mg(
        self, t: Terminology, params: Parameters
    ) -> None:
        """The issue's case: zoledronic acid 4 g with normal renal function."""
        [d] = _signed(bone_patient(), t, params, [_draft(ZOL4, 4000)])
        assert d.indicator == "critical"
        [action] = d.proposals[0].actions
        assert action == UpdateDraft(draft_ref="MedicationRequest/draft-1", dose_mg=4.0)

    def test_unit_error_in_the_reduced_band_is_one_critical_card(
        self, t: Terminology, params: Parameters
    ) -> None:
        """CrCl 55, first course: 35 mg is a unit error (critical, to 3.5 mg), not also a
        'reduce to 3.5 mg' warning."""
        p = bone_patient(creatinine=creatinine_for(55))
        decisions = _signed(p, t, params, [_draft(ZOL4, 35)])
        assert concerns(decisions) == ["R2b:unit-error"]
        [action] = decisions[0].proposals[0].actions
        assert isinstance(action, UpdateDraft)
        assert action.dose_mg == 3.5

    @pytest.mark.parametrize(
        ("mg", "expected"),
        [(3.5, []), (3.6, ["R2:dose-adjust"]), (4.0, ["R2:dose-adjust"])],
    )
    def test_reduced_band_is_r2s_on_a_first_course(
        self, t: Terminology, params: Parameters, mg: float, expected: list[str]
    ) -> None:
        p = bone_patient(creatinine=creatinine_for(55))
        assert _order(p, t, params, _draft(ZOL4, mg)) == expected

    def test_later_course_at_crcl_55_is_held_to_the_4_mg_ceiling(
        self, t: Terminology, params: Parameters
    ) -> None:
        """On treatment the dose is the one set at baseline; above 4 mg is still above label."""
        p = bone_patient(creatinine=creatinine_for(55))
        p.med("MedicationStatement", ZOL4, status="active", start=40, dose="4 mg IV q4w")
        assert _order(p, t, params, _draft(ZOL4, 4)) == []
        assert _order(p, t, params, _draft(ZOL4, 5)) == ["R2b:above-label"]

    @pytest.mark.parametrize(
        ("mg", "expected"),
        [(90.0, []), (90.5, ["R2b:above-label"]), (900.0, ["R2b:unit-error"])],
    )
    def test_pamidronate(
        self, t: Terminology, params: Parameters, mg: float, expected: list[str]
    ) -> None:
        assert _order(bone_patient(), t, params, _draft(PAMIDRONATE, mg)) == expected

    @pytest.mark.parametrize(
        ("mg", "expected"),
        [
            (120.0, []),
            (60.0, ["R2b:not-label-dose"]),
            (119.0, ["R2b:not-label-dose"]),
            (240.0, ["R2b:not-label-dose"]),
            (1200.0, ["R2b:unit-error"]),
        ],
    )
    def test_denosumab_is_120_mg(
        self, t: Terminology, params: Parameters, mg: float, expected: list[str]
    ) -> None:
        got = _order(bone_patient(), t, params, _draft(XGEVA, mg))
        assert [c for c in got if c.startswith("R2b")] == expected

    @pytest.mark.parametrize(
        ("rx", "value", "code"),
        [(ZOL4, 1, "{pill}"), (ZOL4, 100, "mL"), (XGEVA, 1.7, "mL"), (PAMIDRONATE, 1, "{vial}")],
    )
    def test_an_unreadable_dose_is_named_not_guessed(
        self, t: Terminology, params: Parameters, rx: tuple[str, str], value: float, code: str
    ) -> None:
        """'1 {pill}' or 100 mL is no dose the ceiling can check: no card claims it is above
        the label, and the order is not passed in silence either (§3c C2)."""
        d = _draft(rx, 4)
        d["dosageInstruction"][0]["doseAndRate"] = [
            {"doseQuantity": {"value": value, "system": UCUM, "code": code}}
        ]
        decisions = run(bone_patient(), t, params, "order-sign", [d])
        assert [c for c in concerns(decisions) if c.startswith("R2b")] == ["R2b:dose-unread"]
        [unread] = [x for x in decisions if x.rule == "R2b"]
        assert unread.indicator == "info"
        assert not unread.proposals
        assert any(f"'{code}', not a mass unit" in line for line in lines(unread))

    @pytest.mark.parametrize(
        ("low", "high", "expected"),
        [
            (4, 8, ["R2b:dose-unread"]),  # a range: named, neither end taken for the dose
            (4, 4, []),  # "4 mg to 4 mg" is the label dose
            (40, 40, ["R2b:unit-error"]),  # and a single dose so written is checked
        ],
    )
    def test_a_dose_range_is_named_not_read_as_a_dose(
        self, t: Terminology, params: Parameters, low: float, high: float, expected: list[str]
    ) -> None:
        d = _draft(ZOL4, 4)
        mg = {"system": UCUM, "code": "mg", "unit": "mg"}
        d["dosageInstruction"][0]["doseAndRate"] = [
            {"doseRange": {"low": {"value": low, **mg}, "high": {"value": high, **mg}}}
        ]
        decisions = run(bone_patient(), t, params, "order-sign", [d])
        assert [c for c in concerns(decisions) if c.startswith("R2b")] == expected
        if expected == ["R2b:dose-unread"]:
            [unread] = [x for x in decisions if x.rule == "R2b"]
            assert any("a range, 4-8 mg" in line for line in lines(unread))

    @pytest.mark.parametrize(
        ("rx", "quantity", "expected", "label_dose"),
        [
            (TDXD, {"value": 3, "unit": "vial"}, ["R2b:dose-unread-by-weight"], "5.4 mg/kg"),
            (TDM1, {"value": 12, "unit": "mL"}, ["R2b:dose-unread-by-weight"], "3.6 mg/kg"),
            (TDXD, {"value": 5.4, "unit": "mg/kg"}, [], None),  # by weight: read
            (TDXD, {"value": 367, "unit": "mg"}, [], None),  # in mg: judged by weight
        ],
    )
    def test_a_conjugates_dose_not_read_gives_its_dose_by_weight(
        self,
        t: Terminology,
        params: Parameters,
        rx: tuple[str, str],
        quantity: dict[str, Any],
        expected: list[str],
        label_dose: str | None,
    ) -> None:
        """T-DXd or T-DM1 drafted in vials or mL was passed over in silence (the bone agents'
        card names a dose in mg): information with the label's dose by weight."""
        d = draft_med("p", "d1", rx, "IV every 3 weeks")
        d["dosageInstruction"][0]["doseAndRate"] = [{"doseQuantity": quantity}]
        decisions = run(bone_patient(her2="pos"), t, params, "order-sign", [d])
        found = [x for x in decisions if x.rule == "R2b"]
        assert concerns(found) == expected
        for x in found:
            assert (x.indicator, x.bindings["label_dose"]) == ("info", label_dose)
            assert any(f"'{quantity['unit']}', not a mass unit" in line for line in lines(x))

    def test_a_draft_with_no_dose_yet_is_not_named(
        self, t: Terminology, params: Parameters
    ) -> None:
        """At order-select the dose is often not entered yet: no card for its absence."""
        d = _draft(ZOL4, 4)
        del d["dosageInstruction"][0]["doseAndRate"]
        assert not [c for c in _order(bone_patient(), t, params, d) if c.startswith("R2b")]

    def test_an_unreadable_dose_in_the_reduced_band_is_r2s(
        self, t: Terminology, params: Parameters
    ) -> None:
        """At CrCl 30-60 on a first course R2 names it, with the band dose: one card, not two."""
        d = _draft(ZOL4, 4)
        d["dosageInstruction"][0]["doseAndRate"] = [
            {"doseQuantity": {"value": 100, "system": UCUM, "code": "mL"}}
        ]
        p = bone_patient(creatinine=creatinine_for(55))
        assert _order(p, t, params, d) == ["R2:dose-unknown"]

    @pytest.mark.parametrize("where", ["dosageInstruction", "doseAndRate"])
    def test_a_dose_sent_as_one_object_is_still_checked(
        self, t: Terminology, params: Parameters, where: str
    ) -> None:
        """Real clients send one object where FHIR has an array: a 4 g dose so sent is still
        the critical unit error, never an order that passes unchecked."""
        d = _draft(ZOL4, 4000)
        [instruction] = d["dosageInstruction"]
        if where == "doseAndRate":
            [instruction["doseAndRate"]] = instruction["doseAndRate"]
        else:
            d["dosageInstruction"] = instruction
        assert _order(bone_patient(), t, params, d) == ["R2b:unit-error"]

    @pytest.mark.parametrize("reference", ["Medication/zol", "#zol"])
    def test_a_drug_named_by_a_medication_beside_the_draft_is_checked(
        self, t: Terminology, params: Parameters, reference: str
    ) -> None:
        """A draft may name its drug by a Medication sent in the same draftOrders Bundle (or
        contained in it): a 4 g dose so named was 'could not be checked'."""
        d = _draft(ZOL4, 4000)
        medication = {
            "resourceType": "Medication",
            "id": "zol",
            "code": d.pop("medicationCodeableConcept"),
        }
        d["medicationReference"] = {"reference": reference}
        drafts = [d] if reference.startswith("#") else [d, medication]
        if reference.startswith("#"):
            d["contained"] = [medication]
        assert concerns(_signed(bone_patient(), t, params, drafts)) == ["R2b:unit-error"]


class TestScheduleCeilings:
    """D1: no more often than the label interval ('daily' is an order-form default, an error)."""

    @pytest.mark.parametrize(
        ("rx", "mg", "every", "too_often"),
        [
            (ZOL4, 4.0, (3, "wk"), False),
            (ZOL4, 4.0, (20, "d"), True),
            (ZOL4, 4.0, (1, "d"), True),
            (ZOL4, 4.0, (12, "wk"), False),
            (PAMIDRONATE, 90.0, (3, "wk"), False),
            (PAMIDRONATE, 90.0, (2, "wk"), True),
            (XGEVA, 120.0, (4, "wk"), False),
            (XGEVA, 120.0, (27, "d"), True),
            (XGEVA, 120.0, (1, "d"), True),
        ],
    )
    def test_bone_agents(
        self,
        t: Terminology,
        params: Parameters,
        rx: tuple[str, str],
        mg: float,
        every: tuple[float, str],
        too_often: bool,
    ) -> None:
        got = _order(bone_patient(), t, params, _draft(rx, mg, every=every))
        assert ("R2b:too-frequent" in got) is too_often

    def test_tdxd_daily_is_questioned(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient(her2="pos")
        d = draft_med("p", "draft-1", ENHERTU, "5.4 mg/kg IV daily")
        assert "R2b:too-frequent" in _order(p, t, params, d)
        d = draft_med("p", "draft-1", ENHERTU, "5.4 mg/kg IV every 3 weeks")
        assert "R2b:too-frequent" not in _order(p, t, params, d)

    def test_interval_read_from_text_when_no_timing(
        self, t: Terminology, params: Parameters
    ) -> None:
        d = draft_med("p", "draft-1", XGEVA, "120 mg SC q2w", 120)
        assert "R2b:too-frequent" in _order(bone_patient(), t, params, d)

    @pytest.mark.parametrize(
        ("code", "too_often"),
        [
            ({"coding": [{"system": GTS, "code": "QD"}]}, True),
            ({"coding": [{"system": GTS, "code": "BID"}]}, True),
            ({"text": "Every 2 weeks"}, True),
            ({"text": "Every 4 weeks"}, False),
            ({"coding": [{"system": GTS, "code": "WK", "display": "weekly"}]}, True),
        ],
    )
    def test_interval_read_from_the_timing_code(
        self, t: Terminology, params: Parameters, code: dict[str, Any], too_often: bool
    ) -> None:
        """timing.code is how many order forms send the interval: an abbreviation of the FHIR
        R4 TimingAbbreviation value set, or its words. It went unread, so a denosumab ordered
        daily this way passed unchecked."""
        d = draft_med("p", "draft-1", XGEVA, "", 120)
        d["dosageInstruction"][0].pop("text")
        d["dosageInstruction"][0]["timing"] = {"code": code}
        assert ("R2b:too-frequent" in _order(bone_patient(), t, params, d)) is too_often


class TestHypercalcaemiaOfMalignancy:
    """D2: corrected calcium ≥ 12 mg/dL - zoledronic acid 4 mg, no renal reduction (Cr < 4.5)."""

    def _patient(self, calcium: float, creatinine: float) -> Patient:
        return bone_patient(calcium=calcium, creatinine=creatinine)

    @pytest.mark.parametrize(
        ("calcium", "expected"),
        [(12.0, ["R2:hypercalcaemia"]), (11.9, ["R2:dose-adjust"])],
    )
    def test_no_reduction_at_crcl_40(
        self, t: Terminology, params: Parameters, calcium: float, expected: list[str]
    ) -> None:
        p = self._patient(calcium, creatinine_for(40))
        got = _order(p, t, params, _draft(ZOL4, 4))
        assert [c for c in got if c.startswith("R2:")] == expected

    def test_creatinine_at_4_5_keeps_the_renal_rules(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = self._patient(12.5, 4.5)
        got = _order(p, t, params, _draft(ZOL4, 4))
        assert "R2:renal-contraindicated" in got
        assert "R2:hypercalcaemia" not in got

    def test_start_card_offers_4_mg(self, t: Terminology, params: Parameters) -> None:
        p = self._patient(12.4, creatinine_for(40))
        [r1] = [d for d in run(p, t, params) if d.rule == "R1"]
        doses = {a.dose for prop in r1.proposals for a in prop.actions if hasattr(a, "dose")}
        assert "4 mg" in doses
        assert "hypercalcaemia-of-malignancy" in r1.note_keys
        assert "zoledronic-acid-dose-reduced" not in r1.note_keys


class TestOneBoneAgentAtATime:
    """D3: switch, do not add."""

    @pytest.mark.parametrize(("ended_days_ago", "warn"), [(27, True), (28, True), (29, False)])
    def test_zoledronic_acid_after_denosumab(
        self, t: Terminology, params: Parameters, ended_days_ago: int, warn: bool
    ) -> None:
        p = bone_patient()
        p.med(
            "MedicationStatement",
            XGEVA,
            status="completed",
            start=200,
            end=ended_days_ago,
            dose="120 mg SC q4w",
        )
        got = _order(p, t, params, _draft(ZOL4, 4))
        assert ("R2c:switch-not-add" in got) is warn

    @pytest.mark.parametrize(
        ("status", "end", "expected"),
        [
            ("unknown", None, ["R2c:other-status-unknown"]),
            ("unknown", 100, []),  # ended by its dates: history
            ("active", None, ["R2c:switch-not-add"]),
        ],
    )
    def test_another_agent_of_unknown_status_is_asked_about(
        self,
        t: Terminology,
        params: Parameters,
        status: str,
        end: int | None,
        expected: list[str],
    ) -> None:
        p = bone_patient()
        p.med("MedicationStatement", XGEVA, status=status, start=200, end=end)
        r2c = [d for d in run(p, t, params, "order-sign", [_draft(ZOL4, 4)]) if d.rule == "R2c"]
        assert concerns(r2c) == expected
        if status == "unknown" and r2c:
            assert not r2c[0].proposals  # switch or add: not known
            assert any("status 'unknown'" in text(x) for x in r2c[0].data)

    def test_an_agent_of_unknown_status_beside_an_acting_one_is_named_on_its_card(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient()
        p.med("MedicationStatement", XGEVA, status="active", start=200)
        p.med("MedicationStatement", PAMIDRONATE, status="unknown", start=300)
        [d] = [x for x in run(p, t, params, "order-sign", [_draft(ZOL4, 4)]) if x.rule == "R2c"]
        assert d.variant == "switch-not-add"
        assert d.bindings["other"] == "denosumab"
        assert any("pamidronate recorded with status 'unknown'" in text(x) for x in d.data)

    # -1: a dose given this morning, dated tomorrow by a clinic a day ahead of the server.
    @pytest.mark.parametrize(("ended_days_ago", "warn"), [(-1, True), (84, True), (85, False)])
    def test_denosumab_after_zoledronic_acid(
        self, t: Terminology, params: Parameters, ended_days_ago: int, warn: bool
    ) -> None:
        p = bone_patient()
        p.med(
            "MedicationAdministration",
            ZOL4,
            status="completed",
            start=ended_days_ago,
            dose="4 mg IV",
        )
        got = _order(p, t, params, _draft(XGEVA, 120))
        assert ("R2c:switch-not-add" in got) is warn

    def test_oral_ibandronate_active(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient()
        p.med(
            "MedicationStatement", "Ibandronate 150 mg by mouth monthly", status="active", start=90
        )
        decisions = run(p, t, params, "order-sign", [_draft(XGEVA, 120)])
        [d] = [x for x in decisions if x.rule == "R2c"]
        assert d.bindings["other"] == "ibandronate"

    @pytest.mark.parametrize(
        ("name", "other", "rtype"),
        [
            ("Fosamax 70 mg weekly", "alendronate", "MedicationStatement"),
            ("Actonel 35 mg weekly", "risedronate", "MedicationStatement"),
            # a dose charted: no interval of its own, F5's activity decides ("while taken")
            ("Alendronate 70 mg", "alendronate", "MedicationAdministration"),
        ],
    )
    def test_oral_alendronate_or_risedronate_taken(
        self, t: Terminology, params: Parameters, name: str, other: str, rtype: str
    ) -> None:
        p = bone_patient()
        days_ago = 90 if rtype == "MedicationStatement" else 7
        taken = p.med(
            rtype, name, status="active" if days_ago == 90 else "completed", start=days_ago
        )
        decisions = run(p, t, params, "order-sign", [_draft(XGEVA, 120)])
        [d] = [x for x in decisions if x.rule == "R2c"]
        assert (d.variant, d.bindings["other"]) == ("switch-not-add", other)
        said = [text(x) for x in d.data]
        ref = f"{rtype}/{taken['id']}"
        if rtype == "MedicationStatement":  # a course going on: since its start, not 'last'
            assert f"On {other} since {p.day(90)[:10]} ({ref})" in said
        else:
            assert f"{other}: last recorded {p.day(7)[:10]} ({ref})" in said

    def test_the_same_agent_again_is_not_a_second_agent(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient()
        p.med("MedicationStatement", XGEVA, status="active", start=90, dose="120 mg SC q4w")
        assert "R2c:switch-not-add" not in _order(p, t, params, _draft(XGEVA, 120))

    @pytest.mark.parametrize("reverse", [False, True])
    def test_two_agents_drafted_together(
        self, t: Terminology, params: Parameters, reverse: bool
    ) -> None:
        """Neither is acting nor in the medication list to stop: one card, whichever draft the
        order lists first, with a suggestion to keep each (it said 'zoledronic acid drafted
        while denosumab is still acting: stop denosumab in the medication list')."""
        zol = _draft(ZOL4, 4)
        den = draft_med("p", "draft-2", XGEVA, "120 mg SC every 4 weeks", 120)
        drafted = [den, zol] if reverse else [zol, den]
        [d] = [x for x in run(bone_patient(), t, params, "order-sign", drafted) if x.rule == "R2c"]
        assert d.variant == "drafted-together"
        assert d.bindings["drugs"] == "denosumab and zoledronic acid"
        assert [(p.label_bindings["drug"], p.actions) for p in d.proposals] == [
            ("denosumab", (DeleteDraft(draft_ref="MedicationRequest/draft-1"),)),
            ("zoledronic acid", (DeleteDraft(draft_ref="MedicationRequest/draft-2"),)),
        ]
        assert [text(x) for x in d.data] == [
            "Draft order: denosumab (MedicationRequest/draft-2)",
            "Draft order: zoledronic acid (MedicationRequest/draft-1)",
        ]

    def test_a_selected_agent_beside_another_draft_of_the_order(
        self, t: Terminology, params: Parameters
    ) -> None:
        """Order-select: denosumab selected while zoledronic acid is drafted, not selected, in
        the same order - signed together. (It was checked alone: no card.)"""
        zol = _draft(ZOL4, 4)
        den = draft_med("p", "draft-2", XGEVA, "120 mg SC every 4 weeks", 120)
        decisions = run(
            bone_patient(), t, params, "order-select", [zol, den], ["MedicationRequest/draft-2"]
        )
        [d] = [x for x in decisions if x.rule == "R2c"]
        assert (d.variant, d.bindings["drugs"]) == (
            "drafted-together",
            "denosumab and zoledronic acid",
        )
        alone = run(bone_patient(), t, params, "order-select", [den], ["MedicationRequest/draft-2"])
        assert not [x for x in alone if x.rule == "R2c"]

    def test_two_agents_drafted_beside_an_acting_one_are_a_switch(
        self, t: Terminology, params: Parameters
    ) -> None:
        """With an agent still acting, the card asks to switch from it, naming the other
        draft too: keeping one of the drafts would still add a second agent."""
        p = bone_patient()
        p.med("MedicationStatement", PAMIDRONATE, status="active", start=60)
        zol = _draft(ZOL4, 4)
        den = draft_med("p", "draft-2", XGEVA, "120 mg SC every 4 weeks", 120)
        [d] = [x for x in run(p, t, params, "order-sign", [zol, den]) if x.rule == "R2c"]
        assert d.variant == "switch-not-add"
        assert d.bindings["other"] == "denosumab and pamidronate"

    def test_biosimilar_by_name(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient()
        p.med("MedicationStatement", "Wyost (denosumab-bbdz) 120 mg", status="active", start=20)
        assert "R2c:switch-not-add" in _order(p, t, params, _draft(ZOL4, 4))


class TestEmptyDraft:
    """D21: the draft a client sends before a drug is chosen is not an order to warn about."""

    def test_no_medication_yet_gets_no_card(self, t: Terminology, params: Parameters) -> None:
        empty = {
            "resourceType": "MedicationRequest",
            "id": "empty",
            "status": "draft",
            "intent": "order",
            "subject": {"reference": "Patient/p"},
        }
        assert run(bone_patient(), t, params, "order-select", [empty]) == []

    def test_an_unreadable_medication_still_does(self, t: Terminology, params: Parameters) -> None:
        ref = {
            "resourceType": "MedicationRequest",
            "id": "ref",
            "status": "draft",
            "intent": "order",
            "subject": {"reference": "Patient/p"},
            "medicationReference": {"reference": "Medication/absent"},
        }
        assert concerns(run(bone_patient(), t, params, "order-select", [ref])) == ["R0:unreadable"]

    def test_a_coding_with_a_display_only_is_read_by_its_name(
        self, t: Terminology, params: Parameters
    ) -> None:
        """Coding.code is 0..1: 'Xgeva' sent as a display is a denosumab order, not an empty
        draft (it used to pass with no card)."""
        d = _draft(XGEVA, 60)
        d["medicationCodeableConcept"] = {"coding": [{"display": "Xgeva"}]}
        assert "R2b:not-label-dose" in concerns(run(bone_patient(), t, params, "order-sign", [d]))

    @pytest.mark.parametrize("system", [f"{RXNORM}/", RXNORM.replace("http:", "https:")])
    def test_a_drug_coded_under_rxnorm_spelt_with_a_slash_or_https_is_checked(
        self, t: Terminology, params: Parameters, system: str
    ) -> None:
        """The RxNorm URI with a closing slash or https is RxNorm: the Xgeva code so sent is
        checked as Xgeva (it was named as unreadable, unchecked)."""
        d = _draft(XGEVA, 60)
        d["medicationCodeableConcept"] = {"coding": [{"system": system, "code": "1046402"}]}
        assert "R2b:not-label-dose" in concerns(run(bone_patient(), t, params, "order-sign", [d]))

    @pytest.mark.parametrize("system", ["http://hl7.org/fhir/sid/ndc", "urn:oid:1.2.3", None])
    def test_a_drug_coded_only_outside_rxnorm_and_unnamed_is_not_checked_silently(
        self, t: Terminology, params: Parameters, system: str | None
    ) -> None:
        coding = {"code": "1046402"} | ({"system": system} if system else {})
        d = _draft(XGEVA, 60)
        d["medicationCodeableConcept"] = {"coding": [coding]}
        [card] = run(bone_patient(), t, params, "order-sign", [d])
        assert card.concern == "R0:unreadable"
        assert any((system or "its code has no code system") in line for line in lines(card))
