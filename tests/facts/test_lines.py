"""F6 lines of HER2-targeted therapy, the metastatic setting and F7 progression."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from cds.parameters import Parameters
from cds.terminology import Terminology
from fixtures.factories import (
    DOCE,
    PERT,
    PROGRESSION,
    SNOMED,
    STABLE,
    TDXD,
    TOXICITY,
    TRAS,
    WORSENED,
    Patient,
)
from tests.facts.helpers import facts, metastatic
from tests.rules.helpers import text


class TestLines:
    def thp(self, p: Patient, start: int, end: int | None = None, reason: Any = None) -> None:
        status = "active" if end is None else "stopped"
        for drug in (DOCE, TRAS, PERT):
            p.med("MedicationStatement", drug, status=status, start=start, end=end, reason=reason)

    def test_chemo_stop_is_not_a_new_line(self, t: Terminology, params: Parameters) -> None:
        p = metastatic(met_days=600)
        p.med("MedicationStatement", DOCE, status="completed", start=500, end=380)
        for drug in (TRAS, PERT):
            p.med("MedicationStatement", drug, status="active", start=500)
        f = facts(p, t, params)
        assert len(f.lines.lines) == 1
        assert f.lines.current is not None

    def test_new_anchor_is_a_new_line(self, t: Terminology, params: Parameters) -> None:
        p = metastatic(met_days=600)
        self.thp(p, 500, 200, PROGRESSION)
        p.med("MedicationStatement", TDXD, status="active", start=190)
        f = facts(p, t, params)
        assert [sorted(line.anchor) for line in f.lines.lines] == [
            ["pertuzumab", "trastuzumab"],
            ["trastuzumab deruxtecan"],
        ]
        assert [line.active for line in f.lines.lines] == [False, True]

    def test_a_last_line_of_unknown_status_is_current_not_ended(
        self, t: Terminology, params: Parameters
    ) -> None:
        """Records of status 'unknown' with no end date: the line may go on. It never 'ended'
        on the day it started (which made it a completed regimen and asked to confirm
        progression), and its records are named."""
        p = metastatic(met_days=600)
        self.thp(p, 500, 200, PROGRESSION)
        tdxd = p.med("MedicationStatement", TDXD, status="unknown", start=190)
        f = facts(p, t, params)
        first, second = f.lines.lines
        assert (second.active, second.end, second.end_reason) == (False, None, None)
        assert second.unknown_refs == (f"MedicationStatement/{tdxd['id']}",)
        assert f.lines.current is second
        assert f.lines.progression == "none"  # not 'undetermined': not known to have stopped
        assert f.lines.metastatic_her2_regimens == 1  # THP only
        assert not first.unknown_refs

    def test_a_line_of_unknown_status_followed_by_another_has_ended(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic(met_days=600)
        for drug in (DOCE, TRAS, PERT):
            p.med("MedicationStatement", drug, status="unknown", start=500)
        p.med("MedicationStatement", TDXD, status="active", start=190)
        f = facts(p, t, params)
        first, second = f.lines.lines
        assert first.unknown_refs
        assert f.lines.current is second
        assert f.lines.next_line_number() == 2  # THP over (superseded), T-DXd current

    def test_a_progressing_line_of_unknown_status_is_over_for_sequencing(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic(met_days=600)
        self.thp(p, 500, 200, PROGRESSION)
        p.med("MedicationStatement", TDXD, status="unknown", start=190)
        p.disease_status(20, *WORSENED)
        f = facts(p, t, params)
        assert f.lines.progression == "high"
        assert f.lines.next_line_number() == 3
        assert f.lines.metastatic_her2_regimens == 2

    @pytest.mark.parametrize(
        ("gap_days", "within"),
        [pytest.param(365, True, id="12-months"), pytest.param(366, False, id="12-months+1")],
    )
    def test_adjuvant_window(
        self, t: Terminology, params: Parameters, gap_days: int, within: bool
    ) -> None:
        p = metastatic(met_days=100)
        p.med(
            "MedicationRequest", TRAS, status="completed", start=gap_days + 400, end=100 + gap_days
        )
        f = facts(p, t, params)
        assert f.lines.adjuvant_within_12_months is within
        assert f.lines.lines == ()

    @pytest.mark.parametrize(
        ("gap_days", "within", "label_window"),
        [
            pytest.param(183, True, True, id="6-months"),
            pytest.param(184, True, False, id="6-months+1"),
            pytest.param(365, True, False, id="12-months"),
            pytest.param(366, False, False, id="12-months+1"),
        ],
    )
    def test_adjuvant_tdm1_counts(
        self, t: Terminology, params: Parameters, gap_days: int, within: bool, label_window: bool
    ) -> None:
        """C6: T-DM1 (KATHERINE) is trastuzumab-based adjuvant therapy; ≤6 months also meets the
        Enhertu label."""
        p = metastatic(met_days=100)
        tdm1 = ("1371041", "Ado-trastuzumab emtansine")
        p.med(
            "MedicationStatement",
            tdm1,
            status="completed",
            start=gap_days + 300,
            end=100 + gap_days,
        )
        f = facts(p, t, params)
        assert f.lines.adjuvant_within_12_months is within
        assert f.lines.adjuvant_within_label_window is label_window

    @pytest.mark.parametrize(
        ("rtype", "start_gap", "within", "label_window"),
        [
            # The order's date, or the one date a statement is about, is its last known day:
            # within a window counted from it is within; beyond it is not known.
            pytest.param("MedicationRequest", 183, True, True, id="order-6-months"),
            pytest.param("MedicationRequest", 300, True, None, id="order-10-months"),
            pytest.param("MedicationRequest", 366, None, None, id="order-12-months+1"),
            pytest.param("MedicationStatement", 600, None, None, id="statement-20-months"),
            # A dose given is a recorded day: beyond the window is beyond it.
            pytest.param("MedicationAdministration", 366, False, False, id="dose-12-months+1"),
        ],
    )
    def test_adjuvant_end_not_recorded(
        self,
        t: Terminology,
        params: Parameters,
        rtype: str,
        start_gap: int,
        within: bool | None,
        label_window: bool | None,
    ) -> None:
        p = metastatic(met_days=100)
        p.med(rtype, TRAS, status="completed", start=start_gap + 100)
        f = facts(p, t, params)
        assert f.lines.adjuvant_within_12_months is within
        assert f.lines.adjuvant_within_label_window is label_window
        assert f.lines.adjuvant_her2.last == p.as_of - timedelta(days=start_gap + 100)
        assert f.lines.adjuvant_her2.recorded is (rtype == "MedicationAdministration")

    def test_a_recorded_end_outranks_a_start_on_the_same_day(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic(met_days=100)
        p.med("MedicationRequest", TRAS, status="completed", start=900, end=500)
        p.med("MedicationStatement", PERT, status="completed", start=500)
        f = facts(p, t, params)
        assert f.lines.adjuvant_her2.recorded
        assert f.lines.adjuvant_within_12_months is False

    @pytest.mark.parametrize(
        ("reason", "lines"),
        [pytest.param(PROGRESSION, 2, id="progression"), pytest.param(TOXICITY, 1, id="toxicity")],
    )
    def test_a_partner_stopped_with_no_date_then_changed(
        self, t: Terminology, params: Parameters, reason: Any, lines: int
    ) -> None:
        """Orders stopped for progression carry no stop date: the change of partner that
        follows is a new line, the first one ended by the next one's start (C6)."""
        p = metastatic(met_days=950)
        for drug in (DOCE, PERT):
            p.med("MedicationRequest", drug, status="stopped", start=700, reason=reason)
        p.med("MedicationRequest", TRAS, status="active", start=700)
        p.med("MedicationRequest", ("194000", "Capecitabine"), status="active", start=290)
        f = facts(p, t, params)
        assert len(f.lines.lines) == lines
        first = f.lines.lines[0]
        if lines == 2:
            assert first.end_by_next
            assert first.end == p.as_of - timedelta(days=290)
            assert first.end_reason == "progression"
            assert f.lines.lines[1].drugs == {"trastuzumab", "capecitabine"}
        else:
            assert not first.end_by_next

    def test_partner_change_after_progression_is_a_new_line(
        self, t: Terminology, params: Parameters
    ) -> None:
        """C6: THP, progression, then trastuzumab + capecitabine: two lines."""
        p = metastatic(met_days=600)
        p.med("MedicationStatement", DOCE, status="stopped", start=500, end=200, reason=PROGRESSION)
        p.med("MedicationStatement", PERT, status="stopped", start=500, end=200, reason=PROGRESSION)
        p.med("MedicationStatement", TRAS, status="active", start=500)
        p.med("MedicationStatement", ("194000", "Capecitabine"), status="active", start=190)
        f = facts(p, t, params)
        assert len(f.lines.lines) == 2
        # §3c D16: the current line (still working) is not yet a prior regimen for the labels;
        # THP, ended by progression, is.
        assert f.lines.metastatic_her2_regimens == 1

    def test_partner_change_without_progression_stays_one_line(
        self, t: Terminology, params: Parameters
    ) -> None:
        """C6: a change for toxicity or planned maintenance is not a new line."""
        p = metastatic(met_days=600)
        p.med("MedicationStatement", DOCE, status="stopped", start=500, end=200, reason=TOXICITY)
        p.med("MedicationStatement", TRAS, status="active", start=500)
        p.med("MedicationStatement", PERT, status="active", start=500)
        p.med("MedicationStatement", ("194000", "Capecitabine"), status="active", start=190)
        assert len(facts(p, t, params).lines.lines) == 1

    def test_a_later_stable_status_supersedes_worsened(
        self, t: Terminology, params: Parameters
    ) -> None:
        """C6: worsened early on the current line, stable since: not progressing on it."""
        p = metastatic(met_days=600)
        self.thp(p, 500)
        p.disease_status(300, *WORSENED)
        p.disease_status(30, *STABLE)
        assert facts(p, t, params).lines.progression == "none"

    def test_new_brain_metastasis_with_stable_disease_is_cns_only(
        self, t: Terminology, params: Parameters
    ) -> None:
        """C5: a new brain metastasis while systemic disease is documented stable."""
        p = metastatic(met_days=600)
        self.thp(p, 500)
        p.condition(SNOMED, "94225005", "Secondary malignant neoplasm of brain", 20)
        p.disease_status(15, *STABLE)
        f = facts(p, t, params)
        assert f.lines.progression == "none"
        assert f.lines.cns_progression is not None

    def test_progression_by_disease_status(self, t: Terminology, params: Parameters) -> None:
        p = metastatic(met_days=600)
        self.thp(p, 500)
        p.disease_status(20, *WORSENED)
        f = facts(p, t, params)
        assert f.lines.progression == "high"
        assert f.lines.next_line_number() == 2

    @pytest.mark.parametrize(
        ("typed_ahead", "progression", "latest"),
        [
            # 'worsened' typed a year ahead: no progression on the line in use, and named
            ((("worsened", -300),), "none", None),
            # 'stable' typed a year ahead hides nothing: the worsening after it is read
            ((("worsened", 20), ("stable", -300)), "high", "worsened"),
            ((("worsened", -1),), "high", "worsened"),  # a day ahead is a clock ahead
        ],
    )
    def test_a_disease_status_dated_after_today_is_left_out_and_named(
        self,
        t: Terminology,
        params: Parameters,
        typed_ahead: tuple[tuple[str, int], ...],
        progression: str,
        latest: str | None,
    ) -> None:
        p = metastatic(met_days=600)
        self.thp(p, 500)
        for status, days_ago in typed_ahead:
            p.disease_status(days_ago, *(WORSENED if status == "worsened" else STABLE))
        f = facts(p, t, params)
        assert f.lines.progression == progression
        assert f.latest_disease_status == latest
        late = [(s, d) for s, d in typed_ahead if d < -1]
        assert [text(e.reason) for e in f.excluded] == [
            f"disease status '{s}' dated {p.day(d)}, after today: the checks leave it out"
            for s, d in late
        ]

    def test_progression_by_stop_reason(self, t: Terminology, params: Parameters) -> None:
        p = metastatic(met_days=600)
        self.thp(p, 500, 20, PROGRESSION)
        assert facts(p, t, params).lines.progression == "high"

    def test_new_site_is_progression(self, t: Terminology, params: Parameters) -> None:
        """F7(c): a new visceral site on the line is progression (RECIST new lesion)."""
        p = metastatic(met_days=600)
        self.thp(p, 500)
        p.condition(SNOMED, "94381002", "Secondary malignant neoplasm of liver", 30)
        f = facts(p, t, params)
        assert f.lines.progression == "high"
        assert "new visceral metastasis" in text(f.lines.progression_reasons[0])

    def test_new_brain_site_alone_is_not_systemic_progression(
        self, t: Terminology, params: Parameters
    ) -> None:
        """C5: a new brain metastasis, systemic status undocumented: CNS progression only."""
        p = metastatic(met_days=600)
        self.thp(p, 500)
        p.condition(SNOMED, "94225005", "Secondary malignant neoplasm of brain", 30)
        f = facts(p, t, params)
        assert f.lines.progression == "none"
        assert f.lines.cns_progression is not None
        assert f.lines.cns_progression.status_ref is None

    def test_toxicity_is_not_progression(self, t: Terminology, params: Parameters) -> None:
        p = metastatic(met_days=600)
        self.thp(p, 500, 20, TOXICITY)
        f = facts(p, t, params)
        assert f.lines.progression == "none"
        assert "trastuzumab" in f.meds.ingredients_stopped_for("toxicity")

    def test_stopped_without_reason_is_undetermined(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic(met_days=600)
        self.thp(p, 500, 60)
        f = facts(p, t, params)
        assert f.lines.progression == "undetermined"
        # C9: what is not evidence of progression is a finding, never "Progression".
        assert f.lines.progression_reasons == ()
        assert any("no disease-status record" in text(r) for r in f.lines.findings)
