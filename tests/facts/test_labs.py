"""Labs: renal function (Cockcroft-Gault), calcium, LVEF."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cds.facts.labs import cockcroft_gault
from cds.parameters import Parameters
from cds.terminology import Coding, Concept, Terminology
from fixtures.factories import (
    TRAS,
    mg_dl,
)
from tests.facts.helpers import facts, metastatic
from tests.rules.helpers import text

ONE_DAY = timedelta(days=1)


class TestRenal:
    def test_cockcroft_gault(self) -> None:
        assert cockcroft_gault(age=60, weight_kg=72, creatinine_mg_dl=1.0, female=False) == 80
        assert cockcroft_gault(age=60, weight_kg=72, creatinine_mg_dl=1.0, female=True) == 68

    def test_umol_per_litre_is_converted(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.birth = "1966-11-22"  # 60 on AS_OF
        p.labs(creatinine=1.0, weight=72, units="si")
        f = facts(p, t, params)
        assert f.renal.method == "cockcroft-gault"
        assert f.renal.crcl == pytest.approx(68, abs=0.5)

    @pytest.mark.parametrize(
        ("born", "age"),
        [("1966", 60), ("1966-11", 60), ("1966-12", 59), ("1966-11-22", 60)],
    )
    def test_a_partial_birth_date_gives_the_oldest_age_and_says_so(
        self, t: Terminology, params: Parameters, born: str, age: int
    ) -> None:
        """A birth year (or a year and month) alone is read as its first day: the oldest the
        patient can be, so the lowest clearance, and the card names the date as sent."""
        p = metastatic()
        p.birth = born
        p.labs(creatinine=1.0, weight=72)
        f = facts(p, t, params)
        assert f.renal.crcl == pytest.approx((140 - age) * 72 / 72 * 0.85)
        assert f.renal.basis is not None
        said = text(f.renal.basis)
        assert f"age {age}" in said
        assert (f"the oldest a birth date sent as {born} allows" in said) == (len(born) < 10)

    @pytest.mark.parametrize(
        ("born", "why", "crcl"),
        [
            ("2030-01-01", "a date of birth before today's (2030-01-01 is not)", None),
            ("2020-01-01", "an adult's age (born 2020-01-01, age 6", None),
            ("2008-11-23", "an adult's age (born 2008-11-23, age 17", None),
            ("2008-11-22", None, (140 - 18) * 72 / 72 * 0.85),  # 18 on AS_OF
        ],
    )
    def test_no_clearance_below_the_formulas_ages_nor_before_birth(
        self, t: Terminology, params: Parameters, born: str, why: str | None, crcl: float | None
    ) -> None:
        """Cockcroft-Gault was derived at ages 18-92. Read with a birth date in the future,
        (140 - age) went above 140 and a CrCl of 25 mL/min read as one above 30: a zoledronic
        acid contraindication became a dose reduction."""
        p = metastatic()
        p.birth = born
        p.labs(creatinine=1.0, weight=72)
        f = facts(p, t, params)
        assert f.renal.crcl == (None if crcl is None else pytest.approx(crcl))
        missing = [text(m) for m in f.renal.missing]
        assert (why is None and not missing) or any(why and m.startswith(why) for m in missing)

    def test_missing_weight_leaves_crcl_unknown_and_says_why(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        p.obs("2160-0", 3, valueQuantity={"value": 1.0, "unit": "mg/dL", "code": "mg/dL"})
        f = facts(p, t, params)
        assert f.renal.crcl is None
        assert any("body weight" in text(m) for m in f.renal.missing)

    def test_stale_creatinine_is_not_used(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.labs(days_ago=31)
        assert facts(p, t, params).renal.crcl is None

    def test_the_freshness_window_holds_its_last_day(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        p.labs(days_ago=30)  # lab_freshness_days: 30
        assert facts(p, t, params).renal.crcl is not None

    def test_a_result_dated_tomorrow_is_today_for_an_ehr_ahead_of_the_server(
        self, t: Terminology, params: Parameters
    ) -> None:
        """clock_lead_days: 1. This morning's creatinine in a clinic east of the server is
        dated tomorrow; it is the latest result, not an older one."""
        p = metastatic()
        p.labs(days_ago=7, creatinine=0.8)
        p.obs("2160-0", -1, valueQuantity=mg_dl(1.3))
        f = facts(p, t, params)
        assert f.renal.creatinine is not None
        assert (f.renal.creatinine.value, f.renal.creatinine.when) == (1.3, p.as_of + ONE_DAY)
        assert f.excluded == ()

    def test_a_result_dated_after_any_clocks_today_is_left_out_and_named(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        p.labs(days_ago=7, creatinine=0.8, calcium=9.4)
        p.obs("2160-0", -2, valueQuantity=mg_dl(1.3))
        p.obs("17861-6", -365, valueQuantity=mg_dl(7.2))
        f = facts(p, t, params)
        assert f.renal.creatinine is not None
        assert f.renal.creatinine.value == 0.8
        assert f.calcium.corrected == 9.4
        named = [text(e.reason) for e in f.excluded]
        assert len(named) == 2
        assert any("1.3 mg/dL dated" in n and "after today" in n for n in named)
        assert any("7.2 mg/dL dated" in n for n in named)

    def test_a_result_sent_as_text_is_passed_over_but_named(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        p.labs(days_ago=7, creatinine=0.8)
        p.obs("2160-0", 1, valueString="2.1 mg/dL")
        p.obs("2160-0", 2, dataAbsentReason={"text": "haemolysed"})  # nothing measured
        p.obs("10230-1", 3, valueInteger=150)  # no patient has it
        f = facts(p, t, params)
        assert f.renal.creatinine is not None
        assert f.renal.creatinine.value == 0.8
        named = sorted(text(e.reason) for e in f.excluded)
        assert len(named) == 2
        assert "'2.1 mg/dL'" in named[1]
        assert "150" in named[0]

    @pytest.mark.parametrize(
        ("low", "high", "shown"),
        [(36, 41, "(36-41 %)"), (50, None, "(>= 50 %)"), (None, 35, "(<= 35 %)")],
    )
    def test_a_result_sent_as_a_range_is_passed_over_but_named(
        self, t: Terminology, params: Parameters, low: int | None, high: int | None, shown: str
    ) -> None:
        """An LVEF of 36-41% straddles the 40% threshold: neither end is read as the value."""
        p = metastatic()
        p.lvef(200, 58)
        pct = {"unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}
        span = {k: {"value": v, **pct} for k, v in (("low", low), ("high", high)) if v is not None}
        p.obs("10230-1", 5, valueRange=span)
        f = facts(p, t, params)
        assert [m.value for m in f.lvef.series] == [58]
        [named] = [text(e.reason) for e in f.excluded]
        assert f"reported as a range {shown}" in named

    def test_an_empty_range_is_no_value(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.obs("10230-1", 5, valueRange={})
        assert not facts(p, t, params).excluded

    @pytest.mark.parametrize(
        ("status", "used", "named"),
        [("unknown", False, True), ("registered", False, False), ("final", True, False)],
    )
    def test_a_result_of_unknown_status_is_named_not_used(
        self, t: Terminology, params: Parameters, status: str, used: bool, named: bool
    ) -> None:
        """FHIR 'unknown': the source does not know whether the result is final."""
        p = metastatic()
        p.labs(days_ago=7, creatinine=0.8)
        p.obs("2160-0", 0, status=status, valueQuantity=mg_dl(2.6))
        f = facts(p, t, params)
        assert f.renal.creatinine is not None
        assert (f.renal.creatinine.value == 2.6) is used
        said = [text(e.reason) for e in f.excluded]
        assert any("has status 'unknown', not known to be final" in x for x in said) is named

    def test_a_preliminary_result_newer_than_the_final_one_is_named_not_used(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        p.labs(days_ago=7, creatinine=0.8, calcium=9.4)
        p.obs("2160-0", 0, status="preliminary", valueQuantity=mg_dl(2.6))
        p.obs("2160-0", 9, status="preliminary", valueQuantity=mg_dl(0.9))  # older: superseded
        p.obs("2160-0", 1, status="preliminary", dataAbsentReason={"text": "pending"})
        p.obs("17861-6", 1, status="preliminary", valueString="6.1 mg/dL")
        p.obs("17861-6", -3, status="preliminary", valueQuantity=mg_dl(7.0))  # after today
        f = facts(p, t, params)
        assert f.renal.creatinine is not None
        assert f.renal.creatinine.value == 0.8
        assert f.calcium.corrected == 9.4
        named = sorted(text(e.reason) for e in f.excluded)
        week_ago = (p.as_of - timedelta(days=7)).isoformat()
        assert len(named) == 2, named
        assert "creatinine 2.6 mg/dL dated" in named[1]
        assert (
            f"preliminary: the checks use final results only (the newest is of {week_ago})"
            in (named[1])
        )
        assert "calcium 6.1 mg/dL dated" in named[0]

    def test_a_preliminary_result_with_no_final_one_is_named(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        p.obs("2160-0", 2, status="preliminary", valueQuantity=mg_dl(1.9))
        f = facts(p, t, params)
        assert f.renal.creatinine is None
        [e] = f.excluded
        assert (e.location, e.ref) == ("status", f"Observation/{p.resources[-1]['id']}")
        assert text(e.reason).endswith("final results only, and there is none")

    def test_an_lvef_dated_after_today_is_not_the_latest(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        p.lvef(20, 60)
        p.lvef(-30, 35)
        f = facts(p, t, params)
        assert f.lvef.latest is not None
        assert f.lvef.latest.value == 60
        assert [e.ref for e in f.excluded] == [f"Observation/{p.resources[-1]['id']}"]

    def test_baseline_before_a_course_is_the_last_creatinine_on_or_before_it(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        for days_ago, value in ((100, 0.7), (50, 0.9), (10, 1.4)):
            p.obs("2160-0", days_ago, valueQuantity={"value": value, "unit": "mg/dL"})
        renal = facts(p, t, params).renal
        on = p.as_of - timedelta(days=50)
        baseline = renal.baseline_before(on)
        assert baseline is not None
        assert (baseline.value, baseline.when, baseline.unit) == (0.9, on, "mg/dL")
        assert baseline.ref.startswith("Observation/")
        earliest = renal.baseline_before(p.as_of - timedelta(days=60))
        assert earliest is not None
        assert earliest.value == 0.7
        # No creatinine before the course: the earliest on record stands in.
        assert renal.baseline_before(p.as_of - timedelta(days=400)) == renal.creatinine_baseline
        assert renal.baseline_before(None) == renal.creatinine_baseline

    def test_reported_crcl_is_used(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.obs("35591-7", 3, valueQuantity={"value": 42, "unit": "mL/min"})
        f = facts(p, t, params)
        assert (f.renal.crcl, f.renal.method) == (42, "reported")

    def test_egfr_is_never_creatinine_clearance(self, t: Terminology, params: Parameters) -> None:
        """C2: an eGFR is context only; CrCl stays unknown without Cockcroft-Gault inputs."""
        p = metastatic()
        p.obs("98979-8", 3, valueQuantity={"value": 55, "unit": "mL/min/{1.73_m2}"})
        f = facts(p, t, params)
        assert (f.renal.crcl, f.renal.method) == (None, None)
        assert f.renal.egfr is not None
        assert f.renal.egfr.value == 55

    @pytest.mark.parametrize(
        ("value", "unit", "read"),
        [
            (0.13, "mg/dL", False),  # 1.3 typed as 0.13
            (0.19, "mg/dL", False),
            (0.2, "mg/dL", True),
            (15, "umol/L", False),  # 0.17 mg/dL
            (115, "umol/L", True),
            (14.0, "mg/dL", True),  # a high creatinine is never set aside
        ],
    )
    def test_a_creatinine_below_its_read_range_is_left_out_and_named(
        self, t: Terminology, params: Parameters, value: float, unit: str, read: bool
    ) -> None:
        """A creatinine typed a tenth of itself made Cockcroft-Gault ten times too high: the
        zoledronic acid reduction went unsaid. The earlier creatinine is used instead."""
        p = metastatic()
        p.labs(days_ago=10, creatinine=1.3, weight=62)
        p.obs("2160-0", 1, valueQuantity={"value": value, "unit": unit, "code": unit})
        f = facts(p, t, params)
        assert f.renal.creatinine is not None
        assert f.renal.creatinine.when == f.as_of - (ONE_DAY if read else 10 * ONE_DAY)
        left_out = [text(e.reason) for e in f.excluded]
        assert left_out == ([] if read else [
            f"Serum creatinine {value:g} {unit}, outside the values the checks read "
            "(0.2 mg/dL and above; a typing error, or another unit?): left out"
        ])  # fmt: skip

    @pytest.mark.parametrize("value", [0, -1.0])
    def test_impossible_creatinine_is_unusable(
        self, t: Terminology, params: Parameters, value: float
    ) -> None:
        """A creatinine of 0 is unusable data, never a divisor."""
        p = metastatic()
        p.labs(creatinine=0.8)
        p.resources = [r for r in p.resources if "2160-0" not in str(r.get("code"))]
        p.obs("2160-0", 3, valueQuantity={"value": value, "unit": "mg/dL", "code": "mg/dL"})
        assert facts(p, t, params).renal.crcl is None

    def test_unknown_sex_leaves_crcl_unknown(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.gender = "unknown"
        p.labs()
        assert facts(p, t, params).renal.crcl is None


class TestWeight:
    @pytest.mark.parametrize(
        ("weights", "expected"),
        [
            ([(200, 70.0), (30, 64.5)], 64.5),  # the latest within 90 days
            ([(200, 70.0)], None),  # none within 90 days: never an older one
            ([], None),
        ],
    )
    def test_the_latest_fresh_weight(
        self,
        t: Terminology,
        params: Parameters,
        weights: list[tuple[int, float]],
        expected: float | None,
    ) -> None:
        p = metastatic()
        for days_ago, kg in weights:
            p.obs("29463-7", days_ago, valueQuantity={"value": kg, "unit": "kg", "code": "kg"})
        f = facts(p, t, params)
        assert (f.weight.value if f.weight else None) == expected
        if f.weight is not None:
            assert f.weight.unit == "kg"
            assert f.weight.ref.startswith("Observation/")

    @pytest.mark.parametrize(
        ("value", "unit", "read"),
        [
            (620, "kg", False),  # 62.0 typed as 620
            (6.2, "kg", False),  # 62 typed as 6.2
            (19.9, "kg", False),
            (20, "kg", True),
            (300, "kg", True),
            (300.5, "kg", False),
            (140, "[lb_av]", True),  # 63.5 kg
            (1400, "[lb_av]", False),
            (62000, "g", True),
        ],
    )
    def test_a_weight_no_adult_has_is_left_out_and_named(
        self, t: Terminology, params: Parameters, value: float, unit: str, read: bool
    ) -> None:
        """The newest weight typed ten times over: an earlier weight is used, and the typed one
        is named among the results left out; it never reaches Cockcroft-Gault."""
        p = metastatic()
        p.labs(days_ago=20, creatinine=1.3, weight=62)
        p.obs("29463-7", 1, valueQuantity={"value": value, "unit": unit, "code": unit})
        f = facts(p, t, params)
        assert f.weight is not None
        assert f.weight.when == f.as_of - (ONE_DAY if read else 20 * ONE_DAY)
        left_out = [text(e.reason) for e in f.excluded]
        if read:
            assert left_out == []
        else:
            [line] = left_out
            assert line.startswith(
                f"Body weight {value:g} {unit}, outside the values the checks read (20-300 kg;"
            )
            assert f.renal.crcl == pytest.approx(cockcroft_gault(
                age=f.age or 0, weight_kg=62, creatinine_mg_dl=1.3, female=True
            ))  # fmt: skip

    def test_with_only_a_weight_no_adult_has_crcl_is_unknown_and_says_why(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        p.labs(creatinine=1.3, weight=650)
        f = facts(p, t, params)
        assert (f.weight, f.renal.crcl) == (None, None)
        [weight] = [r for r in p.resources if "29463-7" in str(r.get("code"))]
        assert [text(m) for m in f.renal.missing] == [
            f"body weight within 90 days that can be read: Observation/{weight['id']} left out"
        ]


class TestCalcium:
    @pytest.mark.parametrize(
        ("albumin", "unit", "read"),
        [
            (0.4, "g/dL", False),  # 4.0 typed as 0.4: the calcium would read 12.3, "malignant"
            (40, "g/dL", False),  # g/L sent as g/dL: the calcium would read -19.4
            (4.0, "g/L", False),  # 0.4 g/dL
            (1.0, "g/dL", True),
            (2.5, "g/dL", True),
            (35, "g/L", True),
        ],
    )
    def test_an_albumin_outside_its_read_range_corrects_nothing(
        self, t: Terminology, params: Parameters, albumin: float, unit: str, read: bool
    ) -> None:
        p = metastatic()
        p.labs(days_ago=10, calcium=9.4, albumin=4.0)
        p.obs("1751-7", 1, valueQuantity={"value": albumin, "unit": unit, "code": unit})
        f = facts(p, t, params)
        kept = albumin / 10 if unit == "g/L" else albumin
        assert f.calcium.corrected == pytest.approx(9.4 + 0.8 * (4.0 - (kept if read else 4.0)))
        assert len(f.excluded) == (0 if read else 1)

    @pytest.mark.parametrize(
        ("calcium", "read"), [(94.0, False), (25.1, False), (18.5, True), (3.0, True)]
    )
    def test_a_calcium_above_its_read_range_is_left_out(
        self, t: Terminology, params: Parameters, calcium: float, read: bool
    ) -> None:
        """9.4 typed as 94: read, it was a hypercalcaemia of malignancy. A low calcium is
        never set aside: a critical low is shown, and the clinician judges it."""
        p = metastatic()
        p.labs(days_ago=10, calcium=9.4, albumin=4.0)
        p.obs("17861-6", 1, valueQuantity={"value": calcium, "unit": "mg/dL", "code": "mg/dL"})
        f = facts(p, t, params)
        assert f.calcium.corrected == pytest.approx(calcium if read else 9.4)
        [line] = [text(e.reason) for e in f.excluded] or ["none"]
        assert ("outside the values the checks read (25 mg/dL and below;" in line) is not read

    def test_albumin_correction(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.labs(calcium=8.0, albumin=3.0)  # 8.0 + 0.8 × 1.0 = 8.8: not low
        f = facts(p, t, params)
        assert f.calcium.corrected == pytest.approx(8.8)
        assert f.calcium.low is False

    def test_low_against_the_reference_range(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.labs(calcium=8.4, albumin=4.0)
        assert facts(p, t, params).calcium.low is True

    def test_mmol_per_litre_and_fallback_limit(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.obs("17861-6", 2, valueQuantity={"value": 2.0, "unit": "mmol/L", "code": "mmol/L"})
        f = facts(p, t, params)
        assert f.calcium.corrected == pytest.approx(8.02, abs=0.01)
        assert f.calcium.low is True  # under the 8.5 mg/dL fallback
        assert f.calcium.albumin_corrected is False

    @pytest.mark.parametrize(
        ("value", "range_unit", "low", "high"),
        [
            pytest.param(2.0, "mmol/L", True, False, id="low-mmol-range"),
            pytest.param(2.4, "mmol/L", False, False, id="normal-mmol-range"),
            pytest.param(2.7, "mmol/L", False, True, id="high-mmol-range"),
            pytest.param(2.0, None, True, False, id="range-without-unit-is-the-results"),
        ],
    )
    def test_a_reference_range_is_read_in_its_own_unit(
        self,
        t: Terminology,
        params: Parameters,
        value: float,
        range_unit: str | None,
        low: bool,
        high: bool,
    ) -> None:
        """2.0 mmol/L against 2.15-2.55 mmol/L used to be 8.02 mg/dL against 2.15-2.55:
        'not low, and high'."""
        mmol = {"unit": "mmol/L", "code": "mmol/L"}
        limit = mmol if range_unit else {}
        p = metastatic()
        p.obs(
            "17861-6",
            2,
            valueQuantity={"value": value, **mmol},
            referenceRange=[{"low": {"value": 2.15, **limit}, "high": {"value": 2.55, **limit}}],
        )
        f = facts(p, t, params)
        assert (f.calcium.low, f.calcium.high) == (low, high)

    def test_a_range_in_a_unit_not_read_falls_back_to_the_default_limits(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        p.obs(
            "17861-6",
            2,
            valueQuantity={"value": 8.4, "unit": "mg/dL"},
            referenceRange=[{"low": {"value": 4.3, "unit": "meq/L"}}],
        )
        assert facts(p, t, params).calcium.low is True  # under the 8.5 mg/dL fallback

    def test_no_calcium_is_unknown_not_normal(self, t: Terminology, params: Parameters) -> None:
        f = facts(metastatic(), t, params)
        assert (f.calcium.low, f.calcium.high) == (None, None)


class TestLvef:
    def test_baseline_is_the_last_before_her2_therapy(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic(met_days=400)
        p.lvef(300, 64)
        p.lvef(250, 60)
        p.med("MedicationStatement", TRAS, status="active", start=240)
        p.lvef(20, 50)
        f = facts(p, t, params)
        assert f.lvef.baseline is not None
        assert f.lvef.latest is not None
        assert (f.lvef.baseline.value, f.lvef.latest.value) == (60, 50)

    def test_text_coded_ejection_fraction(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        o = p.obs("x", 5, system="urn:local", valueQuantity={"value": 55, "unit": "%"})
        o["code"]["text"] = "LV ejection fraction (echo)"
        f = facts(p, t, params)
        assert f.lvef.latest is not None
        assert f.lvef.latest.value == 55


class TestLabsByName:
    """A result under a local code, or its name alone, is read by its name (D11), never a
    look-alike: an ionized calcium read as total calcium is severe hypocalcaemia."""

    @pytest.mark.parametrize(
        ("name", "lab"),
        [
            ("Creatinine", "creatinine"),
            ("Creatinine, serum", "creatinine"),
            ("CREATININE [Moles/volume] in Serum or Plasma", "creatinine"),
            ("Calcium", "calcium"),
            ("Calcium, total, serum", "calcium"),
            ("Albumin [Mass/volume] in Serum or Plasma", "albumin"),
            ("Body weight", "body-weight"),
            ("Weight", "body-weight"),
            ("Creatinine clearance, 24 hour urine", None),
            ("Creatinine [Mass/volume] in Urine", None),
            ("Albumin/Creatinine [Mass Ratio] in Urine", None),
            ("Creatine kinase", None),
            ("Calcium, ionized", None),
            ("Calcium.ionized [Moles/volume] in Blood", None),
            ("Calcium corrected for albumin", None),
            ("Microalbumin, urine", None),
            ("Weight change", None),
            ("Ideal body weight", None),
            ("Body height", None),
        ],
    )
    def test_a_lab_named_without_loinc(self, t: Terminology, name: str, lab: str | None) -> None:
        local = Concept(codings=(Coding("urn:oid:2.16.840.1.113883.3.0.1", "L1", name),))
        labs = ("creatinine", "calcium", "albumin", "body-weight")
        assert [v for v in labs if t[v].matches(local)] == ([lab] if lab else [])

    def test_a_calcium_under_a_local_code_is_corrected_with_its_albumin(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        local = "urn:oid:2.16.840.1.113883.3.0.1"
        for name, value, unit in (("Calcium", 7.6, "mg/dL"), ("Albumin", 3.0, "g/dL")):
            p.obs("L", 2, system=local, valueQuantity={"value": value, "unit": unit})
            p.resources[-1]["code"]["coding"][0]["display"] = name
        f = facts(p, t, params)
        assert f.calcium.corrected == pytest.approx(8.4)
