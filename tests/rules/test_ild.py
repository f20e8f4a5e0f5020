"""R12: T-DXd and interstitial lung disease / pneumonitis; R12b and R12c: trastuzumab and T-DM1
with interstitial lung disease or pneumonitis (rules/ild.py)."""

from __future__ import annotations

import pytest

from cds.parameters import Parameters
from cds.terminology import Terminology
from fixtures.factories import SNOMED, TDM1, TDXD, TRAS, XGEVA, draft_med, drop_codes
from tests.rules.helpers import bone_patient, concerns, creatinine_for, lines, run, text


class TestR12TdxdOrdered:
    @pytest.mark.parametrize(
        ("given_days_ago", "ild", "expected"),
        [
            (None, False, ["R12:start-monitoring"]),  # a first order: monitor from the start
            (21, False, []),  # the next cycle of a course already given: no start
            (35, False, []),  # a cycle delayed two weeks: still in use (F5's window)
            (36, False, ["R12:start-monitoring"]),  # past F5's window: a course restarted
            (200, False, ["R12:start-monitoring"]),  # T-DXd again after a break
            (21, True, ["R12:ild-order"]),  # with ILD on record, every order is critical
        ],
    )
    def test_by_what_came_before(
        self,
        t: Terminology,
        params: Parameters,
        given_days_ago: int | None,
        ild: bool,
        expected: list[str],
    ) -> None:
        p = bone_patient(her2="pos")
        p.lvef(10, 60)
        if given_days_ago is not None:
            p.med("MedicationAdministration", TDXD, status="completed", start=given_days_ago)
        if ild:
            p.condition("", "", "", 300, text="Pneumonitis")
        drafts = [draft_med("p", "d", TDXD, "5.4 mg/kg every 3 weeks")]
        got = [d.concern for d in run(p, t, params, "order-sign", drafts) if d.rule == "R12"]
        assert got == expected

    def test_a_restart_names_the_last_record_and_unknown_status_is_no_restart(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient(her2="pos")
        p.lvef(10, 60)
        old = p.med("MedicationStatement", TDXD, status="stopped", start=400, end=120)
        drafts = [draft_med("p", "d", TDXD, "5.4 mg/kg every 3 weeks")]
        [r12] = [d for d in run(p, t, params, "order-sign", drafts) if d.rule == "R12"]
        assert [text(x) for x in r12.data] == [
            "Draft order: MedicationRequest/d",
            f"trastuzumab deruxtecan: last recorded {p.day(120)} (MedicationStatement/{old['id']})",
        ]
        p.med("MedicationStatement", TDXD, status="unknown", start=100)  # may still be given
        assert not [d for d in run(p, t, params, "order-sign", drafts) if d.rule == "R12"]

    @pytest.mark.parametrize(
        ("crcl", "dialysis", "ild", "renal_note"),
        [
            (45.0, False, False, True),  # moderate renal impairment: monitor more frequently
            (59.0, False, False, True),
            (80.0, False, False, False),
            (None, False, False, False),  # CrCl unknown: never taken for impairment
            (80.0, True, False, True),  # on dialysis, whatever the creatinine says
            (45.0, False, True, False),  # ILD on record: the critical card, its own text
        ],
    )
    def test_start_with_renal_impairment(
        self,
        t: Terminology,
        params: Parameters,
        crcl: float | None,
        dialysis: bool,
        ild: bool,
        renal_note: bool,
    ) -> None:
        """Enhertu label: more grade 1-2 ILD/pneumonitis with moderate renal impairment."""
        p = bone_patient(her2="pos", creatinine=creatinine_for(crcl or 80.0))
        if crcl is None:
            drop_codes(p, "2160-0")
        if dialysis:
            p.condition("", "", "", 200, text="Dependence on renal dialysis")
        if ild:
            p.condition("", "", "", 300, text="Pneumonitis")
        drafts = [draft_med("p", "d", TDXD, "5.4 mg/kg every 3 weeks")]
        r12 = [d for d in run(p, t, params, "order-sign", drafts) if d.rule == "R12"]
        assert len(r12) == 1
        assert (r12[0].note_keys == ("renal-impairment",)) == renal_note
        assert any(text(line).startswith("Renal function: ") for line in r12[0].data) == renal_note


class TestR12TdxdHeld:
    """C9: T-DXd already on hold for the pneumonitis recorded on it - the interruption is done;
    the label's next step for the grade is what the card says. A hold is no discontinuation."""

    @pytest.mark.parametrize(
        ("grade", "status", "dosed", "expected"),
        [
            pytest.param(1, "on-hold", None, ("ild-interrupt-held", "info"), id="grade-1-held"),
            pytest.param(
                None, "on-hold", None, ("ild-grade-unknown-held", "warning"), id="ungraded-held"
            ),
            pytest.param(2, "on-hold", None, ("ild-discontinue", "critical"), id="grade-2-held"),
            pytest.param(1, "active", None, ("ild-interrupt", "critical"), id="grade-1-active"),
            pytest.param(1, "on-hold", 25, ("ild-interrupt-held", "info"), id="dosed-before"),
            pytest.param(1, "on-hold", 5, ("ild-interrupt", "critical"), id="dosed-since"),
        ],
    )
    def test_by_grade_and_what_the_chart_holds(
        self,
        t: Terminology,
        params: Parameters,
        grade: int | None,
        status: str,
        dosed: int | None,
        expected: tuple[str, str],
    ) -> None:
        p = bone_patient(her2="pos")
        p.lvef(100, 60)
        p.med("MedicationRequest", TDXD, status=status, start=200)
        if dosed is not None:
            p.med("MedicationAdministration", TDXD, status="completed", start=dosed)
        graded = "" if grade is None else f", grade {grade}"
        p.condition("", "", "", 20, text=f"Drug-induced pneumonitis{graded}")
        d = next(x for x in run(p, t, params) if x.rule == "R12")
        assert (d.variant, d.indicator) == expected
        assert any("T-DXd on hold" in line for line in lines(d)) == (expected[0].endswith("-held"))


class TestPneumonitisOnTrastuzumabOrTdm1:
    """R12b, the trastuzumab labels' boxed warning: discontinue for interstitial pneumonitis;
    R12c, the Kadcyla label: permanently discontinue T-DM1 in patients diagnosed with ILD or
    pneumonitis."""

    @pytest.mark.parametrize(
        ("rule", "drug", "status", "onset", "ild_status", "expected"),
        [
            ("R12b", TRAS, "active", 10, "active", ["R12b:pneumonitis-on-trastuzumab"]),
            ("R12b", TRAS, "unknown", 10, "active", ["R12b:pneumonitis-on-trastuzumab"]),
            ("R12b", TRAS, "active", 400, "active", []),  # before trastuzumab: not 'on' it
            ("R12b", TRAS, "active", 10, "resolved", []),
            ("R12b", TRAS, "completed", 10, "active", []),  # no longer given
            ("R12b", TDXD, "active", 10, "active", []),  # T-DXd: R12's own label
            ("R12b", TDM1, "active", 10, "active", []),  # T-DM1 is not trastuzumab: R12c's
            ("R12c", TDM1, "active", 10, "active", ["R12c:pneumonitis-on-tdm1"]),
            ("R12c", TDM1, "unknown", 10, "active", ["R12c:pneumonitis-on-tdm1"]),  # named
            ("R12c", TDM1, "active", 400, "active", []),  # before T-DM1: not 'on' it
            ("R12c", TDM1, "active", 10, "resolved", []),
            ("R12c", TDM1, "completed", 10, "active", []),  # no longer given
            ("R12c", TRAS, "active", 10, "active", []),  # trastuzumab: R12b's label
            ("R12c", TDXD, "active", 10, "active", []),  # T-DXd: R12's
        ],
    )
    def test_on_the_chart(
        self,
        t: Terminology,
        params: Parameters,
        rule: str,
        drug: tuple[str, str],
        status: str,
        onset: int,
        ild_status: str,
        expected: list[str],
    ) -> None:
        p = bone_patient(her2="pos")
        end = 30 if status == "completed" else None
        p.med("MedicationStatement", drug, status=status, start=300, end=end)
        p.condition(SNOMED, "205237003", "Pneumonitis", onset, status=ild_status)
        decisions = [d for d in run(p, t, params) if d.rule == rule]
        assert concerns(decisions) == expected
        if expected:
            assert text(decisions[0].data[0]).startswith(
                f"ILD/pneumonitis recorded {p.day(onset)}, grade not recorded ("
            )
            assert decisions[0].refs[-1].startswith("MedicationStatement/")

    @pytest.mark.parametrize(
        ("rule", "drafted", "ild_status", "expected"),
        [
            ("R12b", TRAS, "active", ["R12b:pneumonitis-order"]),
            ("R12b", TRAS, "resolved", []),
            ("R12b", TDXD, "active", []),  # R12 judges a T-DXd order
            ("R12b", XGEVA, "active", []),  # another drug's order
            ("R12c", TDM1, "active", ["R12c:pneumonitis-order-tdm1"]),
            # After ILD on T-DXd has resolved, T-DM1 is clinical-logic's alternative.
            ("R12c", TDM1, "resolved", []),
            ("R12c", TRAS, "active", []),  # R12b judges a trastuzumab order
            ("R12c", TDXD, "active", []),
        ],
    )
    def test_at_the_order(
        self,
        t: Terminology,
        params: Parameters,
        rule: str,
        drafted: tuple[str, str],
        ild_status: str,
        expected: list[str],
    ) -> None:
        p = bone_patient(her2="pos")
        p.condition(SNOMED, "205237003", "Pneumonitis", 10, status=ild_status)
        drafts = [draft_med("p", "d1", drafted, "as ordered")]
        decisions = [d for d in run(p, t, params, "order-sign", drafts) if d.rule == rule]
        assert concerns(decisions) == expected
        if expected:
            assert text(decisions[0].data[0]) == "Draft order: MedicationRequest/d1"
