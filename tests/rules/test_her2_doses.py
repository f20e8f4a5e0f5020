"""R6f: a HER2 antibody's maintenance dose drafted after a long gap (rules/her2_doses.py)."""

from __future__ import annotations

from typing import Any

import pytest

from cds.parameters import Parameters
from cds.terminology import Terminology
from fixtures.factories import PERT, PHESGO, TRAS, UCUM, Patient, draft_med
from tests.rules.helpers import bone_patient, concerns, run, text

PHESGO_MAINTENANCE = ("2383307", "Phesgo 600 MG / 600 MG / 20,000 UNT per 10 ML Injection")
PHESGO_FIRST = ("2382609", "Phesgo 1,200 MG / 600 MG / 30,000 UNT per 15 ML Injection")
HYLECTA = ("2119719", "Herceptin Hylecta 600 MG / 10,000 UNT per 5 ML Injection")


def _tras(per_kg: float) -> dict[str, Any]:
    draft = draft_med("p", "tras", TRAS, f"{per_kg:g} mg/kg IV every 3 weeks")
    draft["dosageInstruction"][0]["doseAndRate"] = [
        {"doseQuantity": {"value": per_kg, "unit": "mg/kg", "system": UCUM, "code": "mg/kg"}}
    ]
    return draft


def _given(p: Patient, rx: tuple[str, str], *days_ago: int) -> None:
    for day in days_ago:
        p.med("MedicationAdministration", rx, status="completed", start=day)


def _r6f(p: Patient, t: Terminology, params: Parameters, draft: dict[str, Any]) -> list[str]:
    return [c for c in concerns(run(p, t, params, "order-sign", [draft])) if c.startswith("R6f")]


class TestR6fReloadAfterAGap:
    @pytest.mark.parametrize(
        ("last", "per_kg", "fires"),
        [
            (21, 6, False),  # on schedule
            (41, 6, False),  # under 6 weeks: the Perjeta table keeps the maintenance dose
            (42, 6, True),
            (90, 6, True),
            (90, 8, False),  # already the re-loading dose
            (90, 2, False),  # the weekly schedule's dose: not read
        ],
    )
    def test_trastuzumab_by_the_last_dose_given(
        self, t: Terminology, params: Parameters, last: int, per_kg: float, fires: bool
    ) -> None:
        p = bone_patient(her2="pos")
        _given(p, TRAS, last + 42, last + 21, last)
        assert _r6f(p, t, params, _tras(per_kg)) == (["R6f:reload"] if fires else [])

    @pytest.mark.parametrize(("mg", "fires"), [(420, True), (840, False)])
    def test_pertuzumab_by_its_flat_dose(
        self, t: Terminology, params: Parameters, mg: float, fires: bool
    ) -> None:
        p = bone_patient(her2="pos")
        _given(p, PERT, 70)
        draft = draft_med("p", "pert", PERT, f"{mg:g} mg IV", mg)
        assert _r6f(p, t, params, draft) == (["R6f:reload"] if fires else [])

    def test_a_dose_from_phesgo_counts_and_phesgo_itself_is_not_read(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient(her2="pos")
        _given(p, PHESGO, 20)
        assert _r6f(p, t, params, draft_med("p", "pert", PERT, "420 mg IV", 420)) == []
        q = bone_patient(her2="pos")
        _given(q, PHESGO, 60)
        assert _r6f(q, t, params, draft_med("p", "ph", PHESGO, "600 mg SC", 600)) == []

    @pytest.mark.parametrize(
        ("given", "last", "drafted", "fires"),
        [
            (PHESGO, 63, PHESGO_MAINTENANCE, True),  # a 9-week hold on Phesgo
            (PHESGO, 21, PHESGO_MAINTENANCE, False),  # on schedule
            (PERT, 50, PHESGO_MAINTENANCE, True),  # from IV pertuzumab after 7 weeks
            (PERT, 30, PHESGO_MAINTENANCE, False),
            (PHESGO, 63, PHESGO_FIRST, False),  # already the first dose
            (PHESGO, 63, PHESGO, False),  # the brand alone: 600 mg is either dose
        ],
    )
    def test_phesgo_by_its_maintenance_package(
        self,
        t: Terminology,
        params: Parameters,
        given: tuple[str, str],
        last: int,
        drafted: tuple[str, str],
        fires: bool,
    ) -> None:
        p = bone_patient(her2="pos")
        _given(p, given, last + 42, last + 21, last)
        if given == PERT:
            _given(p, TRAS, last + 42, last + 21, last)
        draft = draft_med("p", "ph", drafted, "600 mg/600 mg SC every 3 weeks")
        out = [d for d in run(p, t, params, "order-sign", [draft]) if d.rule == "R6f"]
        assert concerns(out) == (["R6f:reload"] if fires else [])
        if fires:
            assert out[0].bindings["loading"] == "Phesgo 1200 mg"
            assert text(out[0].data[1]).startswith("pertuzumab: last recorded")

    @pytest.mark.parametrize(
        ("given", "last", "drafted", "fires"),
        [
            (TRAS, 21, "tras-8", True),  # the next cycle, at the loading dose again
            (TRAS, 28, "tras-8", True),  # a week late: both labels give the maintenance dose
            (TRAS, 29, "tras-8", False),  # the Herceptin label re-loads from here
            (PERT, 21, "pert-840", True),
            (PERT, 41, "pert-840", True),
            (PERT, 42, "pert-840", False),  # re-loading is due
            (PHESGO, 21, "phesgo-initial", True),
            (PHESGO, 21, "phesgo-1200", True),  # in mg: 1,200 mg is the initial dose's alone
            (PHESGO, 21, "phesgo-600", False),  # both doses' trastuzumab: not told apart
            (PHESGO, 21, "phesgo-maintenance-1200", False),  # the package's code decides
            (HYLECTA, 21, "hylecta", False),  # no loading dose
        ],
    )
    def test_a_loading_dose_while_the_maintenance_dose_is_due(
        self, t: Terminology, params: Parameters, given: tuple[str, str], last: int,
        drafted: str, fires: bool,
    ) -> None:  # fmt: skip
        p = bone_patient(her2="pos")
        _given(p, given, last + 21, last)
        draft = {
            "tras-8": _tras(8),
            "pert-840": draft_med("p", "pert", PERT, "840 mg IV", 840),
            "phesgo-initial": draft_med("p", "ph", PHESGO_FIRST, "1200 mg/600 mg SC"),
            "phesgo-1200": draft_med("p", "ph", PHESGO, "1200 mg SC", 1200),
            "phesgo-600": draft_med("p", "ph", PHESGO, "600 mg SC", 600),
            "phesgo-maintenance-1200": draft_med("p", "ph", PHESGO_MAINTENANCE, "1200 mg", 1200),
            "hylecta": draft_med("p", "hy", HYLECTA, "600 mg SC", 600),
        }[drafted]
        out = [d for d in run(p, t, params, "order-sign", [draft]) if d.rule == "R6f"]
        assert concerns(out) == (["R6f:loading-too-soon"] if fires else [])
        if fires:
            assert out[0].bindings["days"] == str(last)

    def test_a_loading_dose_with_no_dose_charted_is_a_first_dose(
        self, t: Terminology, params: Parameters
    ) -> None:
        """A statement says trastuzumab went on, but no dose is charted: not judged."""
        p = bone_patient(her2="pos")
        p.med("MedicationStatement", TRAS, status="active", start=60)
        assert _r6f(p, t, params, _tras(8)) == []

    def test_no_dose_charted_or_a_later_course_record_is_not_judged(
        self, t: Terminology, params: Parameters
    ) -> None:
        """Missing data is no finding: with no dose charted, or a statement dated after the
        last charted dose (doses given but not charted here), nothing is said."""
        p = bone_patient(her2="pos")
        assert _r6f(p, t, params, _tras(6)) == []
        q = bone_patient(her2="pos")
        _given(q, TRAS, 90)
        q.med("MedicationStatement", TRAS, status="active", start=30)
        assert _r6f(q, t, params, _tras(6)) == []

    def test_a_statement_ending_on_the_day_of_the_last_dose_leaves_the_dose_in_view(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient(her2="pos")
        p.med("MedicationStatement", TRAS, status="completed", start=300, end=60)
        _given(p, TRAS, 60)
        assert _r6f(p, t, params, _tras(6)) == ["R6f:reload"]

    def test_a_draft_that_starts_later_is_judged_at_its_start(
        self, t: Terminology, params: Parameters
    ) -> None:
        """Last dose 30 days ago, the draft for 14 days ahead: 44 days between the two."""
        p = bone_patient(her2="pos")
        _given(p, TRAS, 30)
        assert _r6f(p, t, params, _tras(6)) == []  # for today: 30 days
        draft = _tras(6)
        draft["dosageInstruction"][0]["timing"] = {
            "repeat": {"boundsPeriod": {"start": p.day(-14)}}
        }
        assert _r6f(p, t, params, draft) == ["R6f:reload"]

    def test_the_card_names_the_doses_and_the_last_one_given(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient(her2="pos")
        _given(p, TRAS, 63)
        [d] = [x for x in run(p, t, params, "order-sign", [_tras(6)]) if x.rule == "R6f"]
        assert d.indicator == "warning"
        assert d.bindings == {
            "drugs": "trastuzumab",
            "loading": "trastuzumab 8 mg/kg",
            "maintenance": "trastuzumab 6 mg/kg",
            "labels": "Herceptin",
            "weeks": "9",
            "days": "63",
        }
        said = [text(x) for x in d.data]
        assert said[0] == "Draft order: trastuzumab (MedicationRequest/tras)"
        assert said[1].startswith("trastuzumab: last recorded ")

    def test_trastuzumab_and_pertuzumab_together_are_one_card(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient(her2="pos")
        _given(p, TRAS, 63)
        _given(p, PERT, 63)
        drafts = [_tras(6), draft_med("p", "pert", PERT, "420 mg IV", 420)]
        [d] = [x for x in run(p, t, params, "order-sign", drafts) if x.rule == "R6f"]
        assert d.bindings["drugs"] == "trastuzumab and pertuzumab"
        assert d.bindings["loading"] == "trastuzumab 8 mg/kg, pertuzumab 840 mg"
        assert d.bindings["labels"] == "Herceptin and Perjeta"
        assert len(d.data) == 4


class TestR6gPertuzumabDose:
    @pytest.mark.parametrize(
        ("dose", "mg", "expected"),
        [
            ("840 mg IV", 840, []),
            ("420 mg IV every 3 weeks", 420, []),
            ("420 mg IV every 3 weeks", None, []),  # the dose read from the text
            ("210 mg IV every 3 weeks", 210, ["R6g:not-label-dose"]),  # reduced: not in the label
            ("1000 mg IV", 1000, ["R6g:not-label-dose"]),
            ("8400 mg IV", 8400, ["R6g:unit-error"]),
            ("6 mg/kg IV every 3 weeks", None, ["R6g:not-label-dose"]),  # trastuzumab's dosing
            ("as directed", None, []),  # no dose yet
        ],
    )
    def test_by_the_dose_drafted(
        self,
        t: Terminology,
        params: Parameters,
        dose: str,
        mg: float | None,
        expected: list[str],
    ) -> None:
        draft = draft_med("p", "pert", PERT, dose, mg)
        out = run(bone_patient(her2="pos"), t, params, "order-sign", [draft, _tras(6)])
        assert [c for c in concerns(out) if c.startswith("R6g")] == expected

    def test_phesgo_at_its_first_dose_and_the_card_names_the_doses(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = bone_patient(her2="pos")
        out = run(p, t, params, "order-sign", [draft_med("p", "ph", PHESGO, "1200 mg SC", 1200)])
        assert [d for d in out if d.rule == "R6g"] == []  # Phesgo's own first dose
        drafts = [draft_med("p", "pert", PERT, "210 mg IV", 210), _tras(6)]
        [d] = [x for x in run(p, t, params, "order-sign", drafts) if x.rule == "R6g"]
        assert d.indicator == "warning"
        assert d.bindings == {
            "dose": "210 mg",
            "loading": "840 mg",
            "maintenance": "420 mg",
            "drug": "pertuzumab",
            "label": "Perjeta",
            "interval": "",
            "min_interval": "3",
        }
        assert [text(x) for x in d.data] == ["Draft order: pertuzumab (MedicationRequest/pert)"]


def _in(draft: dict[str, Any], quantity: dict[str, Any]) -> dict[str, Any]:
    """The draft with its dose given as this quantity or range."""
    draft["dosageInstruction"][0]["doseAndRate"] = [quantity]
    return draft


class TestADoseNotRead:
    """A pertuzumab, Phesgo, trastuzumab or Herceptin Hylecta dose given but not read (a
    volume, a count of vials, a range) was passed over: information with the label's doses."""

    @pytest.mark.parametrize(
        ("rx", "quantity", "expected"),
        [
            (PERT, {"doseQuantity": {"value": 14, "unit": "mL"}}, ["R6g:dose-unread"]),
            (PERT, {"doseQuantity": {"value": 1, "unit": "vial"}}, ["R6g:dose-unread"]),
            (
                PERT,
                {"doseRange": {"low": {"value": 420, "unit": "mg"}, "high": {"value": 840}}},
                ["R6g:dose-unread"],
            ),
            (PERT, {"doseQuantity": {"value": 420, "unit": "mg"}}, []),
            (TRAS, {"doseQuantity": {"value": 2, "unit": "vial"}}, ["R6h:dose-unread"]),
            (TRAS, {"doseQuantity": {"value": 6, "unit": "mg/kg"}}, []),  # by weight: read
            (PHESGO, {"doseQuantity": {"value": 10, "unit": "mL"}}, ["R6g:dose-unread"]),
        ],
    )
    def test_named_with_the_label_doses(
        self,
        t: Terminology,
        params: Parameters,
        rx: tuple[str, str],
        quantity: dict[str, Any],
        expected: list[str],
    ) -> None:
        draft = _in(draft_med("p", "d", rx, "IV every 3 weeks"), quantity)
        out = run(bone_patient(her2="pos"), t, params, "order-sign", [draft])
        found = [d for d in out if d.rule in ("R6g", "R6h")]
        assert concerns(found) == expected
        for d in found:
            assert d.indicator == "info"
            assert text(d.data[-1]).startswith("Draft dose unknown: dose")

    def test_a_phesgo_package_says_its_dose(self, t: Terminology, params: Parameters) -> None:
        """Phesgo coded as its maintenance-dose package (10 mL): the package is the dose."""
        package = {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "2383307"}
        draft = _in(
            draft_med("p", "d", PHESGO, "SC"), {"doseQuantity": {"value": 10, "unit": "mL"}}
        )
        draft["medicationCodeableConcept"]["coding"] = [package]
        out = run(bone_patient(her2="pos"), t, params, "order-sign", [draft])
        assert [d for d in out if d.rule == "R6g"] == []


class TestR6hTrastuzumabDose:
    @pytest.mark.parametrize(
        ("per_kg", "expected", "other"),
        [
            (8, [], None),
            (6, [], None),
            (4, [], None),
            (2, [], None),
            (5, ["R6h:not-label-dose"], None),
            (5.4, ["R6h:not-label-dose"], "Enhertu"),  # T-DXd's dose: T-DXd meant?
            (3.6, ["R6h:not-label-dose"], "Kadcyla"),
            (80, ["R6h:unit-error"], None),
        ],
    )
    def test_by_the_dose_written_per_kg(
        self,
        t: Terminology,
        params: Parameters,
        per_kg: float,
        expected: list[str],
        other: str | None,
    ) -> None:
        out = run(bone_patient(her2="pos"), t, params, "order-sign", [_tras(per_kg)])
        r6h = [d for d in out if d.rule == "R6h"]
        assert concerns(r6h) == expected
        if expected:
            assert r6h[0].bindings["other_label"] == (other or "")
            assert r6h[0].note_keys == (("another-drugs-level",) if other else ())

    def test_a_dose_in_mg_and_phesgo_are_not_read(self, t: Terminology, params: Parameters) -> None:
        """A dose in mg of IV trastuzumab is rounded to the vial; Phesgo's doses are R6g's."""
        drafts = [
            draft_med("p", "tras", TRAS, "437 mg IV", 437),
            draft_med("p", "ph", PHESGO, "5.4 mg/kg SC"),
        ]
        out = run(bone_patient(her2="pos"), t, params, "order-sign", drafts)
        assert [d for d in out if d.rule == "R6h"] == []


class TestR6hTrastuzumabDoseInMg:
    """A dose in mg against the largest label dose (8 mg/kg) at the latest weight."""

    @pytest.mark.parametrize(
        ("mg", "kg", "expected", "hylecta"),
        [
            (496, 62, [], False),  # 8 mg/kg
            (540, 62, [], False),  # 8.7 mg/kg: within rounding to the vial
            (560, 62, ["R6h:above-label-by-weight"], False),  # 9.0 mg/kg
            (600, 58, ["R6h:above-label-by-weight"], True),  # Hylecta's dose, written IV
            (300, 62, [], False),  # below the largest dose: rounded, not judged
            (6000, 62, ["R6h:unit-error"], False),
            (600, None, ["R6h:weight-unknown"], False),  # no weight: cannot be judged, said
        ],
    )
    def test_by_the_latest_weight(
        self,
        t: Terminology,
        params: Parameters,
        mg: float,
        kg: float | None,
        expected: list[str],
        hylecta: bool,
    ) -> None:
        p = bone_patient(her2="pos")
        p.resources = [r for r in p.resources if "29463-7" not in str(r.get("code"))]
        if kg is not None:
            p.obs("29463-7", 5, valueQuantity={"value": kg, "unit": "kg", "code": "kg"})
        draft = draft_med("p", "tras", TRAS, f"{mg:g} mg IV", mg)
        out = [d for d in run(p, t, params, "order-sign", [draft]) if d.rule == "R6h"]
        assert concerns(out) == expected
        if expected == ["R6h:above-label-by-weight"]:
            [d] = out
            assert text(d.bindings["label_dose"]) == f"8 mg/kg ({8 * (kg or 0):g} mg at {kg:g} kg)"
            assert [text(x) for x in d.data][1].startswith(f"Body weight {kg:g} kg")
            assert d.note_keys == (("subcutaneous-dose-as-iv",) if hylecta else ())
        if expected == ["R6h:weight-unknown"]:
            [d] = out
            assert (d.indicator, d.bindings["label_dose"]) == ("info", "8 mg/kg")
            assert [text(x) for x in d.missing] == ["body weight within 90 days"]


class TestHerceptinHylecta:
    """Trastuzumab SC: 600 mg every 3 weeks, no loading dose, no dose by weight (its label)."""

    @pytest.mark.parametrize(
        ("dose", "mg", "expected"),
        [
            ("600 mg SC", 600, []),
            ("8 mg/kg SC loading dose", None, ["R6h:subcutaneous-dose"]),  # the IV dose
            ("6 mg/kg SC", None, ["R6h:subcutaneous-dose"]),
            ("400 mg SC", 400, ["R6h:subcutaneous-dose"]),
            ("6000 mg SC", 6000, ["R6h:unit-error"]),
            ("SC every 3 weeks", None, []),  # no dose entered yet: not judged
        ],
    )
    def test_r6h_by_its_fixed_dose(
        self, t: Terminology, params: Parameters, dose: str, mg: float | None, expected: list[str]
    ) -> None:
        draft = draft_med("p", "hylecta", HYLECTA, dose, mg)
        out = run(bone_patient(her2="pos"), t, params, "order-sign", [draft])
        r6h = [d for d in out if d.rule == "R6h"]
        assert concerns(r6h) == expected
        if expected:
            assert r6h[0].bindings["doses"] == "600 mg"
            assert "Herceptin Hylecta" in text(r6h[0].data[0])

    def test_r6f_gives_no_reloading_dose(self, t: Terminology, params: Parameters) -> None:
        """The Hylecta label has no loading dose: a missed dose is the next 600 mg. Drafted
        per kg after a 9-week gap, it is R6h's card, not a re-loading one."""
        p = bone_patient(her2="pos")
        _given(p, HYLECTA, 105, 84, 63)
        draft = draft_med("p", "hylecta", HYLECTA, "6 mg/kg SC every 3 weeks")
        out = concerns(run(p, t, params, "order-sign", [draft]))
        assert [c for c in out if c.startswith(("R6f", "R6h"))] == ["R6h:subcutaneous-dose"]
        # IV trastuzumab on the same chart is still re-loaded.
        assert _r6f(p, t, params, _tras(6)) == ["R6f:reload"]


class TestR6gInterval:
    @pytest.mark.parametrize(
        ("rx", "dose", "mg", "expected"),
        [
            (PERT, "420 mg IV every week", 420, ["R6g:too-frequent"]),  # the weekly set
            (PERT, "420 mg IV every 2 weeks", 420, ["R6g:too-frequent"]),
            (PERT, "420 mg IV every 3 weeks", 420, []),
            (PERT, "420 mg IV", 420, []),  # no interval: not judged
            (PHESGO, "600 mg/600 mg SC weekly", None, ["R6g:too-frequent"]),
            (PERT, "210 mg IV weekly", 210, ["R6g:not-label-dose", "R6g:too-frequent"]),
        ],
    )
    def test_a_fixed_dose_more_often_than_every_3_weeks(
        self,
        t: Terminology,
        params: Parameters,
        rx: tuple[str, str],
        dose: str,
        mg: float | None,
        expected: list[str],
    ) -> None:
        draft = draft_med("p", "d", rx, dose, mg)
        out = run(bone_patient(her2="pos"), t, params, "order-sign", [draft])
        r6g = [d for d in out if d.rule == "R6g"]
        assert concerns(r6g) == expected
        for d in r6g:
            if d.variant == "too-frequent":
                assert d.bindings["min_interval"] == "3"
                assert text(d.data[-1]).startswith("Interval on the order: every ")


class TestR6gPhesgoDose:
    """Phesgo: 1,200 mg pertuzumab with 600 mg trastuzumab first, then 600 mg with 600 mg."""

    @pytest.mark.parametrize(
        ("dose", "mg", "expected"),
        [
            ("1,200 mg pertuzumab/600 mg trastuzumab SC", None, []),
            ("600 mg/600 mg SC every 3 weeks", None, []),
            ("1200/600 mg SC", None, []),  # read as 600 mg: a Phesgo dose either way
            ("SC in the thigh", None, []),  # no dose entered: not judged
            ("840 mg SC", 840, ["R6g:phesgo-dose"]),  # IV pertuzumab's first dose
            ("420 mg SC", 420, ["R6g:phesgo-dose"]),
            ("8 mg/kg SC", None, ["R6g:phesgo-dose"]),  # IV trastuzumab's
            ("600 g SC", None, ["R6g:phesgo-unit-error"]),
        ],
    )
    def test_by_its_own_doses(
        self, t: Terminology, params: Parameters, dose: str, mg: float | None, expected: list[str]
    ) -> None:
        draft = draft_med("p", "ph", PHESGO, dose, mg)
        out = run(bone_patient(her2="pos"), t, params, "order-sign", [draft])
        r6g = [d for d in out if d.rule == "R6g"]
        assert concerns(r6g) == expected
        if expected:
            assert (r6g[0].bindings["loading"], r6g[0].bindings["maintenance"]) == (
                "1200 mg",
                "600 mg",
            )
            assert text(r6g[0].data[0]) == "Draft order: Phesgo (MedicationRequest/ph)"
