"""Starting a bone agent safely (§3c D4, D5, D6, D10): what is pre-filled, and when not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cds.parameters import Parameters
from cds.rules import Decision, Order, RegimenOrder
from cds.terminology import Terminology
from fixtures.factories import ICD10, PROLIA, SNOMED, TOXICITY, XGEVA, ZOL4, Patient, draft_med
from tests.rules.helpers import bone_patient, concerns, run, text


def _r1(p: Patient, t: Terminology, params: Parameters) -> Decision:
    [d] = [x for x in run(p, t, params) if x.rule == "R1"]
    return d


def _agents(d: Decision) -> set[str]:
    return {a.key for prop in d.proposals for a in prop.actions if isinstance(a, RegimenOrder)}


def _extraction(p: Patient, days_ago: int, *, coded: bool = True) -> None:
    if coded:
        p.procedure(SNOMED, "55162003", "Tooth extraction", days_ago)
        return
    p.add(
        {
            "resourceType": "Procedure",
            "id": f"proc-text-{days_ago}",
            "status": "completed",
            "code": {"text": "Dental extraction, lower left molar"},
            "performedDateTime": p.day(days_ago),
        }
    )


class TestNothingPrefilled:
    def test_active_mronj_with_denosumab_not_tolerated(
        self, t: Terminology, params: Parameters
    ) -> None:
        """The issue's patient: active MRONJ, denosumab stopped as not tolerated. No agent is
        offered again; the card refers to the oral surgery/dental team."""
        p = bone_patient()
        p.condition(ICD10, "M87.180", "Osteonecrosis due to drugs, jaw", 60)
        p.med("MedicationStatement", XGEVA, status="stopped", start=300, end=70, reason=TOXICITY)
        d = _r1(p, t, params)
        assert d.concern == "R1:held-mronj"
        assert _agents(d) == set()
        assert [a for prop in d.proposals for a in prop.actions] == [Order(key="dental-referral")]

    @pytest.mark.parametrize(
        ("status", "end", "named"),
        [("unknown", None, True), ("unknown", 100, False), ("stopped", None, False)],
    )
    def test_an_agent_of_unknown_status_is_named_not_taken_as_absent(
        self, t: Terminology, params: Parameters, status: str, end: int | None, named: bool
    ) -> None:
        """An open-ended denosumab record of unknown status is not in use by F5, but the start
        card names it and asks; one ended by its dates, or stopped, is history."""
        p = bone_patient()
        p.med("MedicationStatement", XGEVA, status=status, start=200, end=end)
        [d] = run(p, t, params)
        assert d.concern == "R1:start"
        said = [text(x) for x in d.data]
        assert any("status 'unknown'" in line for line in said) is named

    def test_the_last_course_is_named_once(self, t: Terminology, params: Parameters) -> None:
        """A bone agent given before and stopped: the start card names its last record, for why
        it stopped matters to the next; one named already (of unknown status) is not again."""
        p = bone_patient()
        p.med("MedicationStatement", XGEVA, status="completed", start=400, end=300)
        p.med("MedicationAdministration", ZOL4, status="completed", start=250, mg=4)
        last = p.resources[-1]["id"]
        d = _r1(p, t, params)
        assert d.concern == "R1:start"
        assert [text(x) for x in d.data if "last recorded" in text(x)] == [
            f"Bone-modifying agent last recorded: zoledronic acid on {p.day(250)} "
            f"(MedicationAdministration/{last}); review why it stopped"
        ]
        assert f"MedicationAdministration/{last}" in d.refs
        p.med("MedicationStatement", XGEVA, status="unknown", start=200)
        said = [text(x) for x in _r1(p, t, params).data]
        assert sum("status 'unknown'" in line for line in said) == 1
        assert not any("last recorded" in line for line in said)

    def test_an_agent_stopped_as_not_tolerated(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient()
        p.med("MedicationStatement", ZOL4, status="stopped", start=200, end=150, reason=TOXICITY)
        d = _r1(p, t, params)
        assert (d.concern, d.proposals) == ("R1:held-intolerance", ())

    def test_mronj_that_has_resolved_no_longer_holds_the_start(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient()
        p.condition(ICD10, "M87.180", "Osteonecrosis due to drugs, jaw", 400, status="resolved")
        d = _r1(p, t, params)
        assert d.concern == "R1:start"
        assert "denosumab" in _agents(d)

    @pytest.mark.parametrize(("calcium", "held"), [(8.4, True), (8.5, False)])
    def test_hypocalcaemia_boundary(
        self, t: Terminology, params: Parameters, calcium: float, held: bool
    ) -> None:
        """Below the result's reference range (8.5-10.5 mg/dL here, albumin 4.0): held."""
        d = _r1(bone_patient(calcium=calcium), t, params)
        assert (d.concern == "R1:held-hypocalcaemia") is held
        assert bool(_agents(d)) is not held


class TestSocketHealing:
    """D6: an extraction in the last 21 days - wait for the socket to heal, if possible."""

    # -1: an extraction this morning, dated tomorrow by a clinic a day ahead of the server.
    @pytest.mark.parametrize(("days_ago", "note"), [(-1, True), (0, True), (21, True), (22, False)])
    def test_start_card_boundary(
        self, t: Terminology, params: Parameters, days_ago: int, note: bool
    ) -> None:
        p = bone_patient()
        _extraction(p, days_ago)
        d = _r1(p, t, params)
        assert d.concern == "R1:start"  # still offered: the oncologist may not be able to wait
        assert ("dental-healing" in d.note_keys) is note

    def test_an_extraction_is_not_a_dental_examination(
        self, t: Terminology, params: Parameters
    ) -> None:
        """A text-only 'dental extraction' no longer counts as the dental evaluation: the
        start card still carries the dental referral."""
        p = bone_patient(dental=False)
        _extraction(p, 10, coded=False)
        d = _r1(p, t, params)
        orders = {a.key for prop in d.proposals for a in prop.actions if isinstance(a, Order)}
        assert "dental-referral" in orders
        assert "dental-healing" in d.note_keys

    def test_first_order_within_the_window(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient()
        _extraction(p, 10)
        d = run(p, t, params, "order-sign", [draft_med("p", "d", XGEVA, "120 mg SC q4w", 120)])
        assert "R4b:socket-healing" in concerns(d)


class TestCalciumVitaminDCard:
    """D10: not a card at every chart open."""

    @pytest.mark.parametrize(("started_days_ago", "fires"), [(30, True), (31, False)])
    def test_only_around_the_start(
        self, t: Terminology, params: Parameters, started_days_ago: int, fires: bool
    ) -> None:
        p = bone_patient()
        p.med("MedicationStatement", XGEVA, status="active", start=started_days_ago)
        assert ("R3b:supplement" in concerns(run(p, t, params))) is fires

    def test_low_calcium_brings_it_back(self, t: Terminology, params: Parameters) -> None:
        p = bone_patient(calcium=8.2)
        p.med("MedicationStatement", XGEVA, status="active", start=300)
        assert "R3b:supplement" in concerns(run(p, t, params))

    _XGEVA_ORDER = staticmethod(lambda: draft_med("p", "d", XGEVA, "120 mg SC q4w", 120))

    @pytest.mark.parametrize(
        ("history", "fires"),
        [
            pytest.param("none", True, id="first-agent"),
            pytest.param("xgeva-active", False, id="treatment-going-on"),
            pytest.param("zoledronic-28-days-ago", False, id="switching-agents"),
            pytest.param("zoledronic-4-years-ago", True, id="adjuvant-long-ago"),
            pytest.param("prolia-active", False, id="osteoporosis-dose-going-on"),
            pytest.param("calcium-active", False, id="supplement-on-record"),
            pytest.param("calcium-drafted", False, id="supplement-signed-with-it"),
            pytest.param("hypercalcaemia", False, id="hypercalcaemic"),
            pytest.param("not-to-give", False, id="order-not-to-give-in-force"),
        ],
    )
    def test_with_an_order_that_begins_a_treatment(
        self, t: Terminology, params: Parameters, history: str, fires: bool
    ) -> None:
        """D10: "it appears with a BMA start or order" - the order that begins a bone-agent
        treatment, not each dose of one going on (over-the-counter supplements are rarely
        recorded); never when hypercalcaemic, supplied, or under an order not to give it."""
        p = bone_patient(calcium=11.9 if history == "hypercalcaemia" else 9.4)
        drafts = [self._XGEVA_ORDER()]
        if history == "xgeva-active":
            p.med("MedicationStatement", XGEVA, status="active", start=200)
        elif history == "zoledronic-28-days-ago":
            p.med("MedicationAdministration", ZOL4, status="completed", start=28, mg=4)
        elif history == "zoledronic-4-years-ago":
            p.med("MedicationStatement", ZOL4, status="completed", start=1800, end=1460)
        elif history == "prolia-active":
            p.med("MedicationStatement", PROLIA, status="active", start=100)
        elif history == "calcium-active":
            p.med("MedicationStatement", "Calcium carbonate 500 mg", status="active", start=100)
        elif history == "calcium-drafted":
            drafts.append(draft_med("p", "d2", "Calcium carbonate 500 mg", "500 mg daily"))
        elif history == "not-to-give":
            p.med("MedicationRequest", XGEVA, status="active", start=50, intent="order")[
                "doNotPerform"
            ] = True
        decisions = run(p, t, params, "order-sign", drafts)
        assert ("R3b:supplement-with-order" in concerns(decisions)) is fires
        assert ("R0c:order-not-to-give" in concerns(decisions)) is (history == "not-to-give")
        if fires:
            (r3b,) = [d for d in decisions if d.rule == "R3b"]
            assert [text(x) for x in r3b.data] == ["Draft order: MedicationRequest/d"]
            assert [p.key for p in r3b.proposals] == ["calcium-vitamin-d"]


def test_headline_names_only_the_agents_offered(client: TestClient) -> None:
    """D22: with CrCl below 30 only denosumab is offered, and only denosumab is named."""
    folder = Path(__file__).parents[2] / "fixtures/mbc-bone-patient-view/bone-mets-crcl-low"
    body = json.loads((folder / "request.json").read_text())
    [card] = client.post("/cds-services/mbc-bone-patient-view", json=body).json()["cards"]
    assert card["summary"].endswith("consider denosumab")
    assert [s["label"] for s in card["suggestions"]] == ["Denosumab 120 mg SC every 4 weeks"]
