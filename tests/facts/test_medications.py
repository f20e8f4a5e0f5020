"""F5 medications: exposures from statements, requests and administrations; activity."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from cds.parameters import Parameters
from cds.said import Said, say
from cds.terminology import Concept, Terminology
from fixtures.factories import (
    LETROZOLE,
    PERT,
    PROLIA,
    TDXD,
    TRAS,
    XGEVA,
    ZOL4,
    Patient,
    given_every_3_weeks,
)
from tests.facts.helpers import facts, metastatic
from tests.rules.helpers import text

REFUSAL = ("105480006", "Refusal of treatment by patient")
FINANCIAL = ("160932005", "Financial problem")


class TestOrdersNotToGive:
    """MedicationRequest.doNotPerform: never a course of the medicine, a decision about it."""

    @pytest.mark.parametrize(
        ("status", "end", "in_force"),
        [
            ("active", None, True),
            ("on-hold", None, True),
            ("unknown", None, True),
            ("active", 5, False),  # ended before the day
            ("completed", None, False),
            ("stopped", None, False),
            ("cancelled", None, False),
        ],
    )
    def test_never_given_and_in_force_until_lifted(
        self, t: Terminology, params: Parameters, status: str, end: int | None, in_force: bool
    ) -> None:
        p = metastatic()
        order = p.med("MedicationRequest", TRAS, status=status, start=40, dose="6 mg/kg")
        order["doNotPerform"] = True
        if end is not None:
            order["dispenseRequest"] = {"validityPeriod": {"end": p.day(end)}}
        meds = facts(p, t, params).meds
        [e] = meds.exposures
        assert (e.given, e.active) == (False, False)
        assert meds.ever("HER2_MAB") == ()
        assert bool(meds.prohibitions()) == in_force


class TestMedications:
    @pytest.mark.parametrize(
        ("text", "ingredients"),
        [
            pytest.param(
                "ado-trastuzumab emtansine 3.6 mg/kg",
                {"trastuzumab emtansine"},
                id="tdm1-not-trastuzumab",
            ),
            pytest.param(
                "fam-trastuzumab deruxtecan-nxki",
                {"trastuzumab deruxtecan"},
                id="tdxd-not-trastuzumab",
            ),
            pytest.param("trastuzumab-dkst 6 mg/kg", {"trastuzumab"}, id="biosimilar"),
            pytest.param("Phesgo 600/600", {"trastuzumab", "pertuzumab"}, id="phesgo"),
            pytest.param("Kadcyla", {"trastuzumab emtansine"}, id="brand"),
        ],
    )
    def test_text_last_resort(self, t: Terminology, text: str, ingredients: set[str]) -> None:
        got = {m.ingredient for m in t.medications.match(Concept(text=text), t.rxnorm)}
        assert got == ingredients

    @pytest.mark.parametrize(
        ("med", "mg", "weeks", "dose"),
        [
            pytest.param(XGEVA, None, None, "onc", id="xgeva-product"),
            pytest.param(PROLIA, None, None, "osteo", id="prolia-product"),
            pytest.param(("993449", "Denosumab"), 120, None, "onc", id="ingredient-120mg"),
            pytest.param(("993449", "Denosumab"), 60, None, "osteo", id="ingredient-60mg"),
            pytest.param(("993449", "Denosumab"), None, 4, "onc", id="ingredient-q4w"),
            pytest.param(("993449", "Denosumab"), None, None, "unknown", id="ingredient-no-dose"),
            pytest.param(("77655", "Zoledronic acid"), 5, None, "osteo", id="zoledronic-5mg"),
            pytest.param(ZOL4, None, None, "onc", id="zometa-product"),
        ],
    )
    def test_bma_dose_class(
        self,
        t: Terminology,
        params: Parameters,
        med: tuple[str, str],
        mg: float | None,
        weeks: float | None,
        dose: str,
    ) -> None:
        p = metastatic()
        p.med("MedicationStatement", med, status="active", start=10, mg=mg, every_weeks=weeks)
        f = facts(p, t, params)
        assert f.meds.exposures[0].bma_dose == dose

    @pytest.mark.parametrize("brand", ["Kanjinti", "Ogivri", "Trazimera", "Herzuma", "Ontruzant"])
    def test_a_trastuzumab_biosimilar_named_by_its_brand_is_trastuzumab(
        self, t: Terminology, params: Parameters, brand: str
    ) -> None:
        p = metastatic()
        p.med("MedicationStatement", f"{brand} 420 mg IV every 3 weeks", status="active", start=10)
        [e] = facts(p, t, params).meds.active("HER2_MAB")
        assert (e.ingredient, e.by_text) == ("trastuzumab", True)

    @pytest.mark.parametrize(
        ("text", "ingredient"),
        [
            ("Xeloda 1,000 mg/m2 twice daily", "capecitabine"),
            ("Adriamycin 60 mg/m2", "doxorubicin"),
            ("Doxil 50 mg/m2", "doxorubicin"),
            ("Ellence 100 mg/m2", "epirubicin"),
            ("Tukysa 300 mg twice daily", "tucatinib"),
            ("Taxol 80 mg/m2 weekly", "paclitaxel"),
            ("Navelbine 25 mg/m2", "vinorelbine"),
            ("Halaven 1.4 mg/m2", "eribulin"),
            ("Cytoxan 600 mg/m2", "cyclophosphamide"),
            ("Paraplatin AUC 6", "carboplatin"),
            ("Nolvadex 20 mg daily", "tamoxifen"),
            ("Ibrance 125 mg", "palbociclib"),
            ("Kisqali 600 mg", "ribociclib"),
            ("Aredia 90 mg IV", "pamidronate"),
            ("Aclasta 5 mg IV yearly", "zoledronic acid"),
            ("Xbryk 120 mg SC", "denosumab"),
            ("denosumab-bnht 120 mg", "denosumab"),
            ("Osvyrti", "denosumab"),
            ("Gemzar 1,000 mg/m2", "gemcitabine"),
            ("Ixempra 40 mg/m2", "ixabepilone"),
            ("cisplatin 75 mg/m2", "cisplatin"),
        ],
    )
    def test_a_drug_named_by_its_brand_alone_is_its_ingredient(
        self, t: Terminology, text: str, ingredient: str
    ) -> None:
        [m] = t.medications.match(Concept(text=text), t.rxnorm)
        assert (m.ingredient, m.by_text) == (ingredient, True)

    @pytest.mark.parametrize(
        ("text", "mg", "weeks", "dose"),
        [
            pytest.param("Bosaya", None, None, "osteo", id="prolia-biosimilar"),
            pytest.param("Aukelso", None, None, "onc", id="xgeva-biosimilar"),
            pytest.param("Prolia", None, None, "osteo", id="prolia"),
            pytest.param("Zometa", None, None, "onc", id="zometa"),
            pytest.param("Reclast", None, None, "osteo", id="reclast"),
            pytest.param("Denosumab (Prolia)", None, None, "osteo", id="ingredient-then-brand"),
            # A dose or schedule the record gives decides before the brand's strength.
            pytest.param("Prolia", 120, None, "onc", id="prolia-brand-120mg-given"),
            pytest.param("Xgeva", None, 26, "osteo", id="xgeva-brand-every-6-months"),
            pytest.param("denosumab", None, None, "unknown", id="ingredient-name-no-dose"),
        ],
    )
    def test_a_brand_sold_in_one_strength_gives_it_when_the_record_gives_none(
        self,
        t: Terminology,
        params: Parameters,
        text: str,
        mg: float | None,
        weeks: float | None,
        dose: str,
    ) -> None:
        p = metastatic()
        p.med("MedicationStatement", text, status="active", start=10, mg=mg, every_weeks=weeks)
        [e] = facts(p, t, params).meds.exposures
        assert (e.by_text, e.bma_dose) == (True, dose)

    @pytest.mark.parametrize(
        ("text", "ingredient"),
        [
            ("Alendronate 70 mg tablet once weekly", "alendronate"),
            ("alendronic acid 10 mg daily", "alendronate"),
            ("Fosamax Plus D 70 mg/2800 IU weekly", "alendronate"),
            ("Binosto 70 mg effervescent tablet", "alendronate"),
            ("Risedronate sodium 35 mg weekly", "risedronate"),
            ("Actonel 150 mg monthly", "risedronate"),
            ("Atelvia 35 mg delayed-release", "risedronate"),
        ],
    )
    def test_oral_bisphosphonates_are_bone_agents_at_osteoporosis_strength(
        self, t: Terminology, params: Parameters, text: str, ingredient: str
    ) -> None:
        """Taken for osteoporosis, whatever the dose written: a bone agent already in use
        (D3), not the oncologic one R1 asks for."""
        p = metastatic()
        p.med("MedicationStatement", text, status="active", start=300)
        [e] = [x for x in facts(p, t, params).meds.exposures if x.med_class == "BMA"]
        assert (e.ingredient, e.bma_dose, e.active) == (ingredient, "osteo", True)

    @pytest.mark.parametrize(
        ("dosage", "dose"),
        [
            pytest.param({"text": "SC every 6 months"}, "osteo", id="text-6-monthly"),
            pytest.param({"text": "SC every 4 weeks"}, "onc", id="text-4-weekly"),
            pytest.param({"timing": {"code": {"text": "Every 6 months"}}}, "osteo", id="timing"),
            pytest.param({"text": "as directed"}, "unknown", id="no-schedule"),
        ],
    )
    def test_a_schedule_in_words_tells_the_bma_dose(
        self, t: Terminology, params: Parameters, dosage: dict[str, object], dose: str
    ) -> None:
        """A denosumab statement whose only schedule is in words: 'every 6 months' is the
        osteoporosis dose (an unknown dose counts as oncologic, and hid R1's osteoporosis card)."""
        p = metastatic()
        r = p.med("MedicationStatement", ("993449", "Denosumab"), status="active", start=10)
        r["dosage"] = [dosage]
        [e] = facts(p, t, params).meds.exposures
        assert e.bma_dose == dose

    def test_unknown_dose_counts_as_on_a_bma(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.med("MedicationStatement", ("993449", "Denosumab"), status="active", start=10)
        assert facts(p, t, params).meds.active_bma()

    def test_administration_window(self, t: Terminology, params: Parameters) -> None:
        # A dose given today in a clinic a day ahead of the server is dated tomorrow (-1).
        for days, active in ((-1, True), (35, True), (36, False)):
            p = metastatic()
            p.med("MedicationAdministration", XGEVA, status="completed", start=days)
            assert bool(facts(p, t, params).meds.active_bma()) is active

    def test_a_course_recorded_dose_by_dose_began_at_its_first_dose(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        for days_ago in (400, 372):  # an earlier course, then a gap of a year
            p.med("MedicationAdministration", XGEVA, status="completed", start=days_ago)
        for days_ago in (84, 56, 28, 0):
            p.med("MedicationAdministration", XGEVA, status="completed", start=days_ago)
        meds = facts(p, t, params).meds
        latest = max(meds.exposures, key=lambda e: e.start or date.min)
        assert meds.course_start(latest) == p.as_of - timedelta(days=84)
        first = min(meds.exposures, key=lambda e: e.start or date.min)
        assert meds.course_start(first) == p.as_of - timedelta(days=400)

    @pytest.mark.parametrize(
        ("ended", "resumed", "began"),
        [
            (1100, 250, 250),  # years between them (adjuvant, then metastatic): a new treatment
            (130, 84, 320),  # a hold of 46 days and its resumption: one treatment
            (250, 70, 320),  # 180 days: the longest gap within one (new_treatment_gap_days)
            (251, 70, 70),
        ],
    )
    def test_a_treatment_is_its_courses_with_no_long_gap_between(
        self, t: Terminology, params: Parameters, ended: int, resumed: int, began: int
    ) -> None:
        p = metastatic()
        p.med("MedicationStatement", TRAS, status="completed", start=max(320, ended), end=ended)
        p.med("MedicationStatement", TRAS, status="active", start=resumed)
        meds = facts(p, t, params).meds
        gap = params.new_treatment_gap_days
        day = p.as_of - timedelta(days=began)
        assert meds.treatment_start("trastuzumab", gap) == (day, day)
        # one ordered today continues it (the active course reaches today)
        assert meds.treatment_start("trastuzumab", gap, ongoing_by=p.as_of) == (day, day)

    def test_a_course_with_no_recorded_end_is_no_gap(
        self, t: Terminology, params: Parameters
    ) -> None:
        """Stopped on a day not known: it may have run until the next course began, so no
        gap is read after it (read as ended at its start, an LVEF drop on the second record
        was measured from a baseline taken on treatment)."""
        p = metastatic()
        p.med("MedicationStatement", TRAS, status="stopped", start=1000)
        p.med("MedicationStatement", TRAS, status="active", start=100)
        meds = facts(p, t, params).meds
        began = p.as_of - timedelta(days=1000)
        assert meds.treatment_start("trastuzumab", params.new_treatment_gap_days) == (
            began,
            began,
        )

    def test_an_order_long_after_the_last_treatment_begins_a_new_one(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        p.med("MedicationStatement", TRAS, status="completed", start=1400, end=1050)
        meds = facts(p, t, params).meds
        gap = params.new_treatment_gap_days
        began = p.as_of - timedelta(days=1400)
        assert meds.treatment_start("trastuzumab", gap) == (began, began)
        assert meds.treatment_start("trastuzumab", gap, ongoing_by=p.as_of) is None
        assert meds.treatment_start("pertuzumab", gap) is None

    def test_a_dose_given_during_an_active_statement_continues_its_course(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        p.med("MedicationStatement", XGEVA, status="active", start=200)
        p.med("MedicationAdministration", XGEVA, status="completed", start=5)
        meds = facts(p, t, params).meds
        dose = next(
            e for e in meds.exposures if e.record.resource_type == "MedicationAdministration"
        )
        assert meds.course_start(dose) == p.as_of - timedelta(days=200)

    def test_zoledronic_acid_has_a_12_week_window(self, t: Terminology, params: Parameters) -> None:
        for days, active in ((100, True), (101, False)):
            p = metastatic()
            p.med("MedicationAdministration", ZOL4, status="completed", start=days)
            assert bool(facts(p, t, params).meds.active_bma()) is active

    def test_not_taken_and_entered_in_error_are_not_exposure(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        p.med("MedicationStatement", TRAS, status="not-taken", start=10)
        p.med("MedicationStatement", PERT, status="entered-in-error", start=10)
        f = facts(p, t, params)
        assert not f.meds.ever("HER2_MAB")

    @pytest.mark.parametrize("days", [10, 400, 3000])
    def test_an_active_order_is_taken_at_its_word(
        self, t: Terminology, params: Parameters, days: int
    ) -> None:
        """F5: one order often covers years of maintenance therapy; its age does not end it."""
        p = metastatic()
        p.med("MedicationRequest", TRAS, status="active", start=days)
        assert facts(p, t, params).meds.active("HER2_MAB")

    @pytest.mark.parametrize(
        ("intent", "active"),
        [
            ("order", True),
            ("plan", True),
            ("original-order", True),
            ("reflex-order", True),
            ("filler-order", True),
            ("instance-order", True),
            ("proposal", False),
            ("option", False),
        ],
    )
    def test_an_active_order_of_every_kind(
        self, t: Terminology, params: Parameters, intent: str, active: bool
    ) -> None:
        """FHIR nests original-, reflex-, filler- and instance-order under 'order'."""
        p = metastatic()
        p.med("MedicationRequest", XGEVA, status="active", start=100, intent=intent)
        assert bool(facts(p, t, params).meds.active_bma()) is active

    @pytest.mark.parametrize(
        ("status", "end", "active"),
        [
            ("active", 1, False),
            ("active", -30, True),
            ("stopped", None, False),
            ("on-hold", None, True),
        ],
    )
    def test_an_order_ends_by_its_status_or_validity(
        self, t: Terminology, params: Parameters, status: str, end: int | None, active: bool
    ) -> None:
        p = metastatic()
        p.med("MedicationRequest", TRAS, status=status, start=400, end=end)
        assert bool(facts(p, t, params).meds.active("HER2_MAB")) is active

    @pytest.mark.parametrize(
        ("rtype", "status", "reason", "declined"),
        [
            ("MedicationStatement", "not-taken", REFUSAL, True),
            ("MedicationStatement", "not-taken", FINANCIAL, True),
            ("MedicationStatement", "not-taken", None, False),
            ("MedicationRequest", "cancelled", REFUSAL, True),
            ("MedicationRequest", "cancelled", FINANCIAL, False),
            ("MedicationRequest", "cancelled", None, False),
            ("MedicationRequest", "stopped", REFUSAL, False),
            ("MedicationAdministration", "not-done", REFUSAL, True),
            ("MedicationAdministration", "not-done", None, False),
        ],
    )
    def test_a_decision_not_to_take_a_bone_agent(
        self,
        t: Terminology,
        params: Parameters,
        rtype: str,
        status: str,
        reason: tuple[str, str] | None,
        declined: bool,
    ) -> None:
        """A statement says it is not taken, with any reason; an order or a dose carries the
        patient's decision only through a refusal: a cancelled duplicate order is no decision."""
        p = metastatic()
        p.med(rtype, XGEVA, status=status, start=20, reason=reason)
        assert bool(facts(p, t, params).meds.declined_bma()) is declined

    def test_medication_reference_is_resolved(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.resources.append(
            {
                "resourceType": "Medication",
                "id": "m1",
                "code": {
                    "coding": [
                        {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1046402"}
                    ]
                },
            }
        )
        p.add(
            {
                "resourceType": "MedicationStatement",
                "id": "ms-ref",
                "status": "active",
                "medicationReference": {"reference": "Medication/m1"},
                "effectiveDateTime": p.day(5),
            }
        )
        p.add(
            {
                "resourceType": "MedicationRequest",
                "id": "mr-contained",
                "status": "active",
                "intent": "order",
                "authoredOn": p.day(5),
                "contained": [
                    {"resourceType": "Medication", "id": "c", "code": {"text": "pertuzumab 420 mg"}}
                ],
                "medicationReference": {"reference": "#c"},
            }
        )
        f = facts(p, t, params)
        assert {e.ingredient for e in f.meds.exposures} == {"denosumab", "pertuzumab"}


@pytest.mark.parametrize(
    ("rtype", "days_ahead", "left_out"),
    [
        ("MedicationAdministration", 300, True),  # given in the future: a record error
        ("MedicationAdministration", 1, False),  # a day ahead is a clock ahead (clock_lead_days)
        ("MedicationAdministration", -7, False),
        ("MedicationStatement", 300, False),  # a course may be planned to start later
    ],
)
def test_a_dose_charted_as_given_after_today_is_left_out_and_named(
    t: Terminology, params: Parameters, rtype: str, days_ahead: int, left_out: bool
) -> None:
    """A dose given in the future was read as the last dose: 'drafted 0 days after its last
    charted dose'. It is left out of the checks and named (R0b), as a result so dated is."""
    p = metastatic()
    p.med(rtype, XGEVA, status="completed", start=-days_ahead, mg=120)
    f = facts(p, t, params)
    assert [e.ref.split("/")[0] for e in f.excluded] == ([rtype] if left_out else [])
    assert len(f.meds.ever("BMA")) == (0 if left_out else 1)
    if left_out:
        reason = f.excluded[0].reason
        assert isinstance(reason, Said)
        assert reason.key == "dose-given-after-today"


@pytest.mark.parametrize(
    ("charted", "last", "active"),
    [
        # 22 November: a dose of October was given by 31 October, 22 days ago
        ("2026-10", date(2026, 10, 31), True),
        ("2026-09", date(2026, 9, 30), False),  # 53 days: past the 35-day window
        ("2026-11", date(2026, 11, 22), True),  # this month: given by today, not after it
        ("2026-10-01", date(2026, 10, 1), False),  # the day itself, as always
    ],
)
def test_a_dose_charted_by_its_month_was_given_by_its_last_day(
    t: Terminology, params: Parameters, charted: str, last: date, active: bool
) -> None:
    """Read as its first day, a denosumab dose charted '2026-10' was 52 days old on 22
    November and the patient on it was told to start a bone agent."""
    p = metastatic()
    p.med("MedicationAdministration", XGEVA, status="completed", start=30, mg=120)
    p.resources[-1]["effectiveDateTime"] = charted
    [dose] = facts(p, t, params).meds.ever("BMA")
    assert (dose.last, dose.active) == (last, active)
    assert dose.last_shown == (charted if len(charted) == 7 else last)


@pytest.mark.parametrize(
    ("status", "days_ahead", "set_aside"),
    [
        ("active", 300, True),  # taken from a date after today: a year typed wrong
        ("completed", 300, True),
        ("stopped", 300, True),
        ("on-hold", 300, True),
        ("unknown", 300, True),
        ("intended", 300, False),  # a course to come: its date is read as is
        ("not-taken", 300, False),  # never begun: its date is read as is
        ("active", 1, False),  # a day ahead is a clock ahead (clock_lead_days)
        ("active", -30, False),
    ],
)
def test_a_statement_taken_from_a_date_after_today_is_read_undated_and_named(
    t: Terminology, params: Parameters, status: str, days_ahead: int, set_aside: bool
) -> None:
    """T-DXd typed a year ahead was read as a course yet to come: the pneumonitis on it became
    one before it (a warning for a critical card). The medicine is read as taken since a date
    not known, and the date named (R0b); the statement is not left out."""
    p = metastatic()
    p.med("MedicationStatement", TDXD, status=status, start=-days_ahead, dose="5.4 mg/kg q3w")
    f = facts(p, t, params)
    assert f.excluded == ()
    starts = [e.start for e in f.meds.exposures if e.ingredient == "trastuzumab deruxtecan"]
    assert starts == [None if set_aside else p.as_of + timedelta(days=days_ahead)]
    said = [e.reason for e in f.dates_set_aside]
    assert said == (
        [say("statement-started-after-today", on=p.as_of + timedelta(days=300))]
        if set_aside
        else []
    )


@pytest.mark.parametrize(
    ("authored", "bounds", "set_aside"),
    [
        (300, None, True),  # its only date, written after today: a record error
        (300, 300, True),
        (-30, 300, False),  # written a month ago to start later: a course planned
        (None, 300, False),
    ],
)
def test_an_order_written_after_today_is_read_undated_and_named(
    t: Terminology,
    params: Parameters,
    authored: int | None,
    bounds: int | None,
    set_aside: bool,
) -> None:
    """An order cannot be written in the future: an active T-DXd order whose authoredOn is
    after today, and its start with it, is read as taken since a date not known (named, R0b);
    an order written before today to start later is read as planned."""
    p = metastatic()
    p.med("MedicationRequest", TDXD, status="active", start=0, dose="5.4 mg/kg q3w")
    order = p.resources[-1]
    order.pop("authoredOn", None)
    if authored is not None:
        order["authoredOn"] = p.day(-authored)
    if bounds is not None:
        order["dosageInstruction"][0]["timing"] = {
            "repeat": {"boundsPeriod": {"start": p.day(-bounds)}}
        }
    f = facts(p, t, params)
    [start] = [e.start for e in f.meds.exposures if e.ingredient == "trastuzumab deruxtecan"]
    assert start == (None if set_aside else p.as_of + timedelta(days=300))
    said = [e.reason for e in f.dates_set_aside]
    assert said == (
        [say("order-written-after-today", on=p.as_of + timedelta(days=300))] if set_aside else []
    )


class TestActivities:
    @pytest.mark.parametrize(
        ("status", "days_ahead", "left_out"),
        [
            ("completed", 300, True),  # done in the future: a record error
            ("in-progress", 300, True),
            ("preparation", 300, False),  # planned: read as is (and not a done exam)
            ("completed", 1, False),  # a day ahead is a clock ahead (clock_lead_days)
        ],
    )
    def test_a_procedure_done_after_today_is_left_out_and_named(
        self, t: Terminology, params: Parameters, status: str, days_ahead: int, left_out: bool
    ) -> None:
        """A dental exam typed a year ahead stood for a recent one (no dental card before a
        first bone agent), and radiotherapy so typed for the treatment of a cord compression."""
        p = metastatic()
        p.dental_exam(-days_ahead)
        p.resources[-1]["status"] = status
        f = facts(p, t, params)
        named = [text(e.reason) for e in f.excluded]
        assert named == (
            [
                f"Dental consultation and report (procedure) dated {p.day(-days_ahead)}, after "
                "today: the checks leave it out"
            ]
            if left_out
            else []
        )
        assert len(f.dental_evaluations) == (0 if left_out or status == "preparation" else 1)

    def test_dental_encounter_and_completed_referral_count(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic()
        p.add(
            {
                "resourceType": "Encounter",
                "id": "e1",
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                },
                "serviceType": {"text": "Dental clinic"},
                "period": {"start": p.day(40)},
            }
        )
        p.add(
            {
                "resourceType": "ServiceRequest",
                "id": "sr1",
                "status": "completed",
                "intent": "order",
                "authoredOn": p.day(20),
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "103697008"}]},
            }
        )
        p.add(
            {
                "resourceType": "ServiceRequest",
                "id": "sr2",
                "status": "active",
                "intent": "order",
                "authoredOn": p.day(5),
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "103697008"}]},
            }
        )
        f = facts(p, t, params)
        assert [d.ref for d in f.dental_evaluations] == ["Encounter/e1", "ServiceRequest/sr1"]

    def test_dialysis_procedure(self, t: Terminology, params: Parameters) -> None:
        p = metastatic()
        p.add(
            {
                "resourceType": "Procedure",
                "id": "d",
                "status": "completed",
                "code": {"text": "Haemodialysis session"},
                "performedDateTime": p.day(2),
            }
        )
        assert facts(p, t, params).on_dialysis


class TestStatusLeftOpen:
    """An order or statement still 'active' for a medicine given in clinic, its charted doses
    stopped more than `new_treatment_gap_days` ago, is read as ended with its last dose (F5:
    statuses are often stale); a hold, an oral medicine and doses of an earlier course are not."""

    @staticmethod
    def _chart(rtype: str, status: str, last: int, rx: tuple[str, str] = TRAS) -> Patient:
        p = metastatic(met_days=60)
        p.med(rtype, rx, status=status, start=1400)
        given_every_3_weeks(p, rx, last=last, doses=17)
        return p

    @pytest.mark.parametrize(
        ("rtype", "status", "last", "set_aside"),
        [
            ("MedicationRequest", "active", 1100, True),
            ("MedicationStatement", "active", 1100, True),
            ("MedicationRequest", "active", 181, True),  # the gap is 180 days
            ("MedicationRequest", "active", 180, False),  # a hold and its resumption
            ("MedicationRequest", "on-hold", 1100, False),  # held: taken at its word
            ("MedicationStatement", "intended", 1100, False),
        ],
    )
    def test_set_aside_when_no_dose_for_the_gap(
        self,
        t: Terminology,
        params: Parameters,
        rtype: str,
        status: str,
        last: int,
        set_aside: bool,
    ) -> None:
        assert params.new_treatment_gap_days == 180
        meds = facts(self._chart(rtype, status, last), t, params).meds
        [record] = [e for e in meds.exposures if e.record.resource_type == rtype]
        assert record.active is not set_aside
        assert bool(meds.set_aside()) is set_aside
        if set_aside:
            assert record.last_dose is not None
            assert record.last_dose.last == date(2026, 11, 22) - timedelta(days=last)
            # The course ended with that dose: a trastuzumab begun now is a new treatment.
            assert meds.treatment_start("trastuzumab", 180, ongoing_by=date(2026, 11, 22)) is None

    def test_doses_of_an_earlier_course_do_not_end_a_later_order(
        self, t: Terminology, params: Parameters
    ) -> None:
        p = metastatic(met_days=60)
        given_every_3_weeks(p, TRAS, last=1100, doses=17)
        p.med("MedicationRequest", TRAS, status="active", start=20)  # ordered after them
        meds = facts(p, t, params).meds
        assert meds.active("HER2_MAB")
        assert not meds.set_aside()

    def test_a_medicine_taken_at_home_is_never_set_aside(
        self, t: Terminology, params: Parameters
    ) -> None:
        """A ward charts an oral medicine's doses only during a stay."""
        assert "letrozole" not in params.dose_charted_ingredients
        p = metastatic(met_days=60)
        p.med("MedicationRequest", LETROZOLE, status="active", start=1400)
        p.med("MedicationAdministration", LETROZOLE, status="completed", start=900, mg=2.5)
        meds = facts(p, t, params).meds
        assert meds.active("ENDOCRINE_AI")
        assert not meds.set_aside()
