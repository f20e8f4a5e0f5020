"""F2-F4 receptors and the ASCO/CAP HER2 algorithm (clinical-logic §2, §5): tables, HER2-low
categories, ISH groups, IHC scores."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from cds.facts.marker_results import ihc_score, interpret_her2, ish_group, result_number
from cds.fhir.records import ObservationRecord
from cds.fhir.screening import MARKER_SETS
from cds.fhir.values import Quantity, Value
from cds.parameters import Parameters
from cds.terminology import Coding, Concept, Terminology
from fixtures.factories import SNOMED
from tests.facts.helpers import facts, metastatic, obs_with
from tests.rules.helpers import text


def _percent(value: float, comparator: str | None = None) -> dict[str, Any]:
    quantity: dict[str, Any] = {"value": value, "unit": "%"}
    if comparator is not None:
        quantity["comparator"] = comparator
    return {"valueQuantity": quantity}


class TestHer2Table:
    """Every row of the §5 interpretation table."""

    @pytest.mark.parametrize(
        ("ihc", "group", "status", "category", "reflex", "needs_ihc"),
        [
            pytest.param(3, None, "positive", "positive", False, False, id="ihc3-no-ish"),
            # C7: every IHC score against every ISH group (ASCO/CAP 2018, affirmed 2023).
            *[
                pytest.param(3, g, "positive", "positive", False, False, id=f"ihc3-group{g}")
                for g in (1, 2, 3, 4, 5)
            ],
            pytest.param(2, None, "equivocal", "equivocal", True, False, id="ihc2-no-ish"),
            pytest.param(2, 1, "positive", "positive", False, False, id="ihc2-group1"),
            pytest.param(2, 2, "negative", "low", False, False, id="ihc2-group2-low"),
            pytest.param(2, 3, "positive", "positive", False, False, id="ihc2-group3-positive"),
            pytest.param(2, 4, "negative", "low", False, False, id="ihc2-group4-low"),
            pytest.param(2, 5, "negative", "low", False, False, id="ihc2-group5-low"),
            pytest.param(1, None, "negative", "low", False, False, id="ihc1-low"),
            pytest.param(1, 1, "positive", "positive", False, False, id="ihc1-group1-positive"),
            *[
                pytest.param(1, g, "negative", "low", False, False, id=f"ihc1-group{g}")
                for g in (2, 3, 4, 5)
            ],
            pytest.param(0, None, "negative", "0", False, False, id="ihc0"),
            pytest.param(0, 1, "positive", "positive", False, False, id="ihc0-group1-positive"),
            *[
                pytest.param(0, g, "negative", "0", False, False, id=f"ihc0-group{g}")
                for g in (2, 3, 4, 5)
            ],
            pytest.param(None, 1, "positive", "positive", False, False, id="ish-only-group1"),
            pytest.param(None, 5, "negative", "unknown", False, False, id="ish-only-group5"),
            pytest.param(None, 2, "unknown", "unknown", False, True, id="ish-only-group2"),
            pytest.param(None, 3, "unknown", "unknown", False, True, id="ish-only-group3"),
            pytest.param(None, 4, "unknown", "unknown", False, True, id="ish-only-group4"),
            pytest.param(None, None, "unknown", "unknown", False, False, id="nothing"),
        ],
    )
    def test_derived(
        self,
        ihc: int | None,
        group: int | None,
        status: str,
        category: str,
        reflex: bool,
        needs_ihc: bool,
    ) -> None:
        got = interpret_her2(
            final=None, ihc=ihc, ihc_status=None, ish_qualitative=None, group=group
        )
        assert got == (status, category, True, reflex, needs_ihc)

    def test_reported_interpretation_wins_and_keeps_the_ihc_score(self) -> None:
        got = interpret_her2(
            final="negative", ihc=1, ihc_status=None, ish_qualitative=None, group=None
        )
        assert got == ("negative", "low", False, False, False)

    def test_ultralow_needs_membrane_staining(self) -> None:
        faint = interpret_her2(
            final=None,
            ihc=0,
            ihc_status=None,
            ish_qualitative=None,
            group=None,
            ihc_text="0 - faint incomplete membrane staining in 5% of cells",
        )
        none = interpret_her2(
            final=None,
            ihc=0,
            ihc_status=None,
            ish_qualitative=None,
            group=None,
            ihc_text="0, no staining",
        )
        assert faint[1] == "ultralow"
        assert none[1] == "0"

    def test_qualitative_ish_amplified(self) -> None:
        assert (
            interpret_her2(
                final=None, ihc=None, ihc_status=None, ish_qualitative="positive", group=None
            )[0]
            == "positive"
        )


class TestHer2LowCategory:
    """R15: the IHC score read precisely, from every form a result arrives in."""

    @pytest.mark.parametrize(
        ("value", "category"),
        [
            pytest.param({"valueString": "0"}, "0", id="string-0"),
            pytest.param({"valueString": "0, no membrane staining"}, "0", id="0-no-staining"),
            pytest.param(
                {"valueString": "0 with faint incomplete membrane staining in ≤10% of cells"},
                "ultralow",
                id="0-faint-ultralow",
            ),
            pytest.param({"valueString": "IHC 0 (ultralow)"}, "ultralow", id="0-ultralow-word"),
            pytest.param({"valueString": "1+"}, "low", id="string-1+"),
            pytest.param({"valueInteger": 1}, "low", id="integer-1"),
            pytest.param({"valueCodeableConcept": {"text": "Score 1+"}}, "low", id="text-1+"),
            pytest.param({"note": [{"text": "HER2 IHC 1+"}]}, "low", id="note-1+"),
            pytest.param(
                {"component": [{"code": {"text": "score"}, "valueString": "1+"}]},
                "low",
                id="component-1+",
            ),
            pytest.param({"valueString": "3+"}, "positive", id="string-3+"),
        ],
    )
    def test_category_with_a_negative_final_result(
        self, t: Terminology, params: Parameters, value: dict[str, Any], category: str
    ) -> None:
        p = metastatic()
        if category != "positive":
            p.her2(90, "neg")
        p.obs("85319-2", 90, **value)
        her2 = facts(p, t, params).receptors.her2
        assert her2 is not None
        assert her2.her2_category == category

    def test_ihc_2_plus_ish_not_amplified_is_low(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.her2_ihc(90, "2+")
        p.obs("49683-6", 90, valueQuantity={"value": 1.3, "unit": "{ratio}"})
        p.obs("74860-8", 90, valueQuantity={"value": 2.5, "unit": "{copies}/{nucleus}"})
        her2 = facts(p, t, params).receptors.her2
        assert her2 is not None
        assert (her2.status, her2.her2_category) == ("negative", "low")

    def test_only_negative_known_is_unknown_category(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        p.her2(90, "neg")
        her2 = facts(p, t, params).receptors.her2
        assert her2 is not None
        assert (her2.status, her2.her2_category) == ("negative", "unknown")


class TestIshGroups:
    @pytest.mark.parametrize(
        ("ratio", "copies", "group"),
        [
            pytest.param(2.0, 4.0, 1, id="ratio-2.0-copies-4.0"),
            pytest.param(1.99, 4.0, 4, id="ratio-1.99-copies-4.0"),
            pytest.param(2.0, 3.99, 2, id="ratio-2.0-copies-3.99"),
            pytest.param(1.99, 3.99, 5, id="ratio-1.99-copies-3.99"),
            pytest.param(1.5, 5.99, 4, id="copies-5.99-group4"),
            pytest.param(1.5, 6.0, 3, id="copies-6.0-group3"),
            pytest.param(None, 6.0, None, id="ratio-missing"),
            pytest.param(2.1, None, None, id="copies-missing"),
        ],
    )
    def test_group(self, ratio: float | None, copies: float | None, group: int | None) -> None:
        assert ish_group(ratio, copies) == group


class TestIhcScoreParsing:
    @pytest.mark.parametrize(
        ("value", "score"),
        [
            pytest.param({"string": "3+"}, 3, id="plain-3+"),
            pytest.param({"string": "Equivocal (Score 2+)"}, 2, id="cap-2+"),
            pytest.param({"string": "HER2 IHC 1+"}, 1, id="her2-prefix-not-2"),
            pytest.param({"string": "Negative (Score 0)"}, 0, id="score-0"),
            pytest.param({"integer": 2}, 2, id="integer"),
            pytest.param({"concept": Concept(text="2 +")}, 2, id="coded-text"),
            pytest.param({"string": "staining in 10% of cells"}, None, id="percent-not-score"),
            pytest.param({"string": "ratio 2.0"}, None, id="decimal-not-score"),
            pytest.param({"string": "positive"}, None, id="no-score"),
            # A numeric result (HL7 v2 NM): a score without a unit, or with a score's.
            pytest.param({"quantity": Quantity(2)}, 2, id="quantity"),
            pytest.param({"quantity": Quantity(0.0, "{score}")}, 0, id="quantity-score-unit"),
            pytest.param({"quantity": Quantity(2, "%")}, None, id="quantity-percent"),
            pytest.param({"quantity": Quantity(2, None, None, "<")}, None, id="quantity-bound"),
            pytest.param({"quantity": Quantity(2.5)}, None, id="quantity-decimal"),
            pytest.param({"quantity": Quantity(10)}, None, id="quantity-beyond-3"),
        ],
    )
    def test_score(self, value: dict[str, Any], score: int | None) -> None:
        assert ihc_score(obs_with(**value)) == score

    def test_score_from_a_note(self) -> None:
        obs = ObservationRecord(
            id="o", code=Concept(), effective=None, value=Value(), notes=("IHC score 3+",)
        )
        assert ihc_score(obs) == 3


class TestReceptors:
    def test_metastatic_result_is_used_and_discordance_reported(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        p.her2(1500, "neg")
        p.her2(90, "pos")
        f = facts(p, t, params)
        assert f.receptors.her2 is not None
        assert f.receptors.her2.status == "positive"
        assert f.receptors.her2.specimen_site == "metastatic"
        assert f.receptors.her2_positive is True
        assert "HER2 negative on the primary" in text(f.receptors.discordances()[0])

    @pytest.mark.parametrize(
        ("primary", "metastasis", "said"),
        [
            pytest.param(
                "1+",
                "0",
                "HER2-low (IHC 1+) on the primary ({primary}) but HER2-0 (IHC 0, no membrane "
                "staining) on the metastatic specimen ({metastasis}); the metastatic result is "
                "used",
                id="low-then-0",
            ),
            pytest.param(
                "0",
                "2+ ISH not amplified",
                "HER2-0 (IHC 0, no membrane staining) on the primary ({primary}) but HER2-low "
                "(IHC 2+) on the metastatic specimen ({metastasis}); the metastatic result is used",
                id="0-then-low",
            ),
            pytest.param(
                "0, faint incomplete staining",
                "0",
                "HER2-ultralow on the primary ({primary}) but HER2-0 (IHC 0, no membrane "
                "staining) on the metastatic specimen ({metastasis}); the metastatic result is "
                "used",
                id="ultralow-then-0",
            ),
            pytest.param("1+", "2+ ISH not amplified", None, id="low-both"),
            pytest.param("1+", None, None, id="metastasis-score-unknown"),
        ],
    )
    def test_a_her2_negative_category_change_is_a_discordance(
        self,
        t: Terminology,
        params: Parameters,
        primary: str,
        metastasis: str | None,
        said: str | None,
    ) -> None:
        """Both negative, but HER2-low on one specimen and HER2-0 on the other: what a T-DXd
        order turns on (DESTINY-Breast04), so named like a positive/negative discordance (F4)."""
        p = metastatic()
        p.her2(1500, "neg")
        p.her2_ihc(1500, primary)
        p.her2(90, "neg")
        if metastasis is not None:
            p.her2_ihc(90, metastasis)
        f = facts(p, t, params)
        found = [text(d) for d in f.receptors.discordances()]
        expected = [said.format(primary=p.day(1500), metastasis=p.day(90))] if said else []
        assert found == expected

    @pytest.mark.parametrize(("days_ahead", "left_out"), [(300, True), (1, False)])
    def test_a_result_dated_after_today_is_left_out_and_named(
        self, t: Terminology, params: Parameters, days_ahead: int, left_out: bool
    ) -> None:
        """The primary's HER2-positive result typed years ahead was the latest, metastatic
        result: HER2-positive disease for a metastasis re-tested negative. Left out and named
        (R0b); a day ahead is a clock ahead (clock_lead_days), read as is."""
        p = metastatic()
        p.her2(-days_ahead, "pos")
        p.her2(90, "neg")
        f = facts(p, t, params)
        assert f.receptors.her2 is not None
        assert f.receptors.her2.status == ("negative" if left_out else "positive")
        named = [text(e.reason) for e in f.excluded]
        assert named == (
            [
                f"HER2 final interpretation in tissue dated {p.day(-days_ahead)}, after today: "
                "the checks leave it out"
            ]
            if left_out
            else []
        )

    @pytest.mark.parametrize(
        ("code", "status", "category"),
        [("427685000", "positive", "positive"), ("431396003", "negative", "unknown")],
    )
    def test_a_her2_diagnosis_stands_in_only_for_a_missing_result(
        self, t: Terminology, params: Parameters, code: str, status: str, category: str
    ) -> None:
        """terminology.md §1.4: SNOMED 427685000 / 431396003 mean HER2 POS / NEG as a value or
        as Condition.code. With no HER2 test result the diagnosis gives the status (its IHC
        score unknown, so never HER2-low on its own); any test result decides before it."""
        p = metastatic()
        p.condition(SNOMED, code, "HER2 carcinoma of breast", 900)
        her2 = facts(p, t, params).receptors.her2
        assert her2 is not None
        assert (her2.status, her2.her2_category, her2.from_diagnosis) == (status, category, True)
        assert her2.refs == ("Condition/cond-3",)
        assert "no HER2 test result in the chart" in text(her2.diagnosis_line)
        p.her2(90, "neg" if status == "positive" else "pos")
        tested = facts(p, t, params).receptors.her2
        assert tested is not None
        assert not tested.from_diagnosis
        assert tested.status != status

    @pytest.mark.parametrize(
        ("words", "status"),
        [
            ("HER2-positive metastatic breast cancer", "positive"),
            ("Carcinoma of breast, HER2/neu positive", "positive"),
            ("ER positive, HER2 negative breast cancer", "negative"),
            ("Triple negative breast cancer", "negative"),
            ("HER2 equivocal breast carcinoma", None),
            ("Breast cancer, HER2 status unknown", None),
            ("Family history of HER2 positive breast cancer", None),
            ("HER2 positive breast cancer, converted to HER2 negative", None),
        ],
    )
    def test_a_her2_diagnosis_sent_as_words(
        self, t: Terminology, params: Parameters, words: str, status: str | None
    ) -> None:
        p = metastatic()
        p.condition("", "", "", 900, text=words)
        her2 = facts(p, t, params).receptors.her2
        assert (her2.status if her2 else None) == status

    def test_a_report_sent_twice_is_one_report(self, t: Terminology, params: Parameters) -> None:
        """Two feeds send the IHC 2+ and its reflex ISH (six days later) each under its own
        id: the copies join the results they repeat (D13), so the ISH completes the IHC."""
        p = metastatic(met_days=400)
        p.her2_ihc(290, "2+ (equivocal)")
        p.obs("49683-6", 284, valueQuantity={"value": 1.3, "unit": "{ratio}"})
        p.obs("74860-8", 284, valueQuantity={"value": 2.5, "unit": "{copies}/{nucleus}"})
        p.resources += [{**copy.deepcopy(r), "id": f"{r['id']}-copy"} for r in p.resources[-3:]]
        her2 = facts(p, t, params).receptors.her2
        assert her2 is not None
        assert (her2.status, her2.her2_category, her2.ihc_score) == ("negative", "low", 2)
        assert len(her2.refs) == 6
        assert her2.report_dates == (p.as_of - timedelta(290), p.as_of - timedelta(284))

    def test_primary_only_is_marked_primary(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.her2(1500, "pos")
        f = facts(p, t, params)
        assert f.receptors.her2 is not None
        assert f.receptors.her2.specimen_site == "primary"
        assert not f.receptors.has_metastatic_specimen

    def test_specimen_collection_date_wins_over_observation_date(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic(met_days=100)
        o = p.obs(
            "48676-1",
            5,
            valueCodeableConcept={"coding": [{"system": "http://loinc.org", "code": "LA6576-8"}]},
        )
        o["specimen"] = {"reference": "Specimen/s1"}
        p.resources.append(
            {
                "resourceType": "Specimen",
                "id": "s1",
                "collection": {"collectedDateTime": p.day(1500)},
            }
        )
        f = facts(p, t, params)
        assert f.receptors.her2 is not None
        assert f.receptors.her2.specimen_site == "primary"

    @pytest.mark.parametrize(
        ("value", "status", "low"),
        [
            pytest.param(_percent(0.5), "negative", False, id="0.5%-negative"),
            pytest.param(_percent(1.0), "positive", True, id="1%-low-positive"),
            pytest.param(_percent(10.0), "positive", True, id="10%-low-positive"),
            pytest.param(_percent(11.0), "positive", False, id="11%-positive"),
            # A bound: '<1%' is ASCO/CAP's negative; read as 1% it was a low positive.
            pytest.param(_percent(1, "<"), "negative", False, id="<1%-negative"),
            pytest.param({"valueString": "<1%"}, "negative", False, id="'<1%'-negative"),
            pytest.param({"valueString": "≤ 0.5 %"}, "negative", False, id="'≤0.5%'-negative"),
            pytest.param(_percent(10, ">"), "positive", False, id=">10%-positive-not-low"),
            pytest.param({"valueString": ">90%"}, "positive", False, id="'>90%'-positive"),
        ],
    )
    def test_er_percent(
        self, t: Terminology, params: Parameters, value: dict[str, Any], status: str, low: bool
    ) -> None:
        p = metastatic()
        p.obs("85329-1", 90, **value)
        f = facts(p, t, params)
        assert f.receptors.er is not None
        assert (f.receptors.er.status, f.receptors.er.low_positive) == (status, low)

    @pytest.mark.parametrize("value", [{"valueString": "<10%"}, {"valueString": ">= 1%"}])
    def test_a_bound_across_a_cut_off_is_no_percent(
        self, t: Terminology, params: Parameters, value: dict[str, Any]
    ) -> None:
        p = metastatic()
        p.obs("85329-1", 90, **value)
        assert facts(p, t, params).receptors.er is None

    def test_a_ratio_below_2_reported_as_a_bound_is_not_amplified(
        self, t: Terminology, params: Parameters
    ) -> None:
        """'< 2.0' with 4.6 copies is group 4, HER2-low with IHC 2+: read as 2.0 it was group 1,
        HER2-positive, and the first-line HER2 card fired."""
        p = metastatic()
        p.obs("85319-2", 20, valueCodeableConcept={"text": "2+"})
        p.obs("49683-6", 20, valueQuantity={"value": 2.0, "comparator": "<", "unit": "{ratio}"})
        p.obs("74860-8", 20, valueQuantity={"value": 4.6, "unit": "{copies}/{nucleus}"})
        her2 = facts(p, t, params).receptors.her2
        assert her2 is not None
        assert (her2.status, her2.ish_group) == ("negative", 4)

    def test_ichom_er_negative_only_with_its_code(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        absent = {"coding": [{"system": "http://snomed.info/sct", "code": "373572006"}]}
        p.obs("445028008", 90, system="http://snomed.info/sct", valueCodeableConcept=absent)
        f = facts(p, t, params)
        assert f.receptors.er is not None
        assert f.receptors.er.status == "negative"

    def test_hr_status_is_unknown_without_data(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.er(90, "neg")
        assert facts(p, t, params).receptors.hr_positive is None  # PR unknown
        p.pr(90, "neg")
        assert facts(p, t, params).receptors.hr_positive is False

    def test_serum_her2_only(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.obs("42914-2", 10, valueQuantity={"value": 20, "unit": "ng/mL"})
        f = facts(p, t, params)
        assert f.receptors.serum_her2_only
        assert f.receptors.her2 is None


class TestMarkersByName:
    """A pathology result under a local code, or its name alone, is read by its name (D11):
    the method words keep the kinds apart, and a serum HER2 or a pending test is no result."""

    @pytest.mark.parametrize(
        ("name", "kind"),
        [
            ("HER2 IHC", "her2-ihc"),
            ("HER2/neu by immunohistochemistry", "her2-ihc"),
            ("HER2 [Presence] in Breast cancer specimen by Immune stain", "her2-ihc"),
            ("HER2 FISH", "her2-ish"),
            ("ERBB2 gene duplication in Tumor by FISH", "her2-ish"),
            ("HER2/CEP17 ratio", "her2-ish-ratio"),
            ("HER2 FISH ratio", "her2-ish-ratio"),
            ("Average HER2 copy number per cell", "her2-ish-copies"),
            ("ERBB2 gene copy number/nucleus in Tissue by FISH", "her2-ish-copies"),
            ("HER2 status", "her2-interpretation"),
            ("HER2 [Interpretation] in Tissue", "her2-interpretation"),
            ("HER2, serum", "her2-serum"),
            ("Serum HER2 extracellular domain", "her2-serum"),
            ("Estrogen receptor", "er-status"),
            ("Oestrogen receptor status", "er-status"),
            ("Estrogen receptor, % positive cells", "er-percent"),
            ("Cells.progesterone receptor/100 cells in Tissue by Immune stain", "pr-percent"),
            ("Progesterone receptor", "pr-status"),
            ("ER status", "er-status"),
            ("PgR status", "pr-status"),
            ("ER visit", None),
            ("HER2 testing pending", None),
            ("HER2 gene mutation", None),
            ("Estrogen receptor Allred score", None),
            ("ER H-score", None),
            ("Hemoglobin", None),
        ],
    )
    def test_a_marker_named_without_loinc(
        self, t: Terminology, name: str, kind: str | None
    ) -> None:
        local = Concept(codings=(Coding("urn:oid:2.16.840.1.113883.3.0.1", "P1", name),))
        assert [k for k in MARKER_SETS if t[k].matches(local)] == ([kind] if kind else [])

    def test_a_her2_ihc_2plus_named_only_asks_for_reflex_ish(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        p.obs("P2", 20, system="urn:oid:2.16.840.1.113883.3.0.1", valueString="2+")
        p.resources[-1]["code"] = {"text": "HER2 IHC"}
        r = facts(p, t, params).receptors.her2
        assert r is not None
        assert (r.status, r.ihc_score) == ("equivocal", 2)


@pytest.mark.parametrize(
    ("written", "number"),
    [("2.5", 2.5), ("< 1.8", 1.8), ("9" * 400, None), ("> " + "9" * 400, None)],
)
def test_a_result_written_with_a_number_beyond_a_double_gives_none(
    written: str, number: float | None
) -> None:
    """A HER2/CEP17 ratio written as a 400-digit string read as infinite: amplified."""
    assert result_number(Value(string=written), (2.0,)) == number
