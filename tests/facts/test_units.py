"""Doses and schedules read from an order's free text: a mass in mg, an interval in weeks, or
nothing (never a guess)."""

from __future__ import annotations

from typing import Any

import pytest

from cds.facts.units import (
    mg_from_text,
    mg_per_kg_from_text,
    mg_per_m2_a_day_from_text,
    mg_per_m2_from_text,
    minutes,
    minutes_from_text,
    tablets,
    tablets_from_text,
    to_mg,
    to_mg_per_kg,
    to_mg_per_m2,
    weeks_from_text,
)
from cds.fhir.values import Quantity
from cds.rules.doses import interval_words
from tests.rules.helpers import text as said


@pytest.mark.parametrize(
    ("text", "mg"),
    [
        ("zoledronic acid 4 mg IV over 15 minutes", 4.0),
        ("4 mg, IV", 4.0),
        ("4 g IV", 4000.0),
        ("4 gram IV", 4000.0),
        ("4 grams", 4000.0),
        ("4 gm IV", 4000.0),
        ("4000mg", 4000.0),
        # Thousands separators: the whole number, never the digits after the comma (0 mg).
        ("4,000 mg IV", 4000.0),
        ("1,250 mg PO daily", 1250.0),
        ("4 mcg", 0.004),
        ("0.5 mg", 0.5),
        # Not a mass dose this reader can be sure of: nothing, so no ceiling is claimed.
        ("2,5 mg", None),  # a decimal comma
        ("12,5 mg", None),
        (".5 mg", None),
        ("4 mg/100 mL", None),  # a concentration
        ("5mg/kg", None),
        ("1,000 mg/m2 twice daily", None),
        ("as directed", None),
    ],
)
def test_mass_from_text(text: str, mg: float | None) -> None:
    assert mg_from_text(text) == mg


@pytest.mark.parametrize(
    ("text", "per_kg"),
    [
        ("5.4 mg/kg IV every 3 weeks", 5.4),
        ("6.4mg/kg", 6.4),
        ("3.6 mg / kg IV q3w", 3.6),
        ("8 mg/kg IV loading dose", 8.0),
        ("4 mg IV", None),  # a mass, not a dose by weight
        ("1,000 mg/m2 twice daily", None),  # by body surface area
        ("as directed", None),
    ],
)
def test_dose_by_weight_from_text(text: str, per_kg: float | None) -> None:
    assert mg_per_kg_from_text(text) == per_kg


@pytest.mark.parametrize(
    ("code", "unit", "per_kg"),
    [
        ("mg/kg", "mg/kg", 5.4),
        (None, "MG/KG", 5.4),
        ("mg", "mg", None),
        ("mg/m2", "mg/m2", None),
        (None, None, None),
    ],
)
def test_dose_by_weight_from_a_quantity(
    code: str | None, unit: str | None, per_kg: float | None
) -> None:
    assert to_mg_per_kg(Quantity(5.4, unit, code)) == per_kg


@pytest.mark.parametrize(
    ("text", "per_m2"),
    [
        ("1000 mg/m2 by mouth twice daily", 1000.0),
        ("1,250 mg/m² twice daily", 1250.0),
        ("750mg/m2 BID", 750.0),
        ("2500 MG / M^2 daily", 2500.0),
        ("1000 mg by mouth twice daily", None),  # a flat dose
        ("5.4 mg/kg", None),
        ("1000 mg/m2x", None),
        ("1000 mg/m2/dose twice daily", 1000.0),  # per dose, said so
        ("1000 mg/m2/dose/day", None),
        # a day's total is not a dose (the Tykerb label's way of writing capecitabine's)
        ("2000 mg/m2/day in two doses", None),
        ("2,000 mg/m² / day", None),
        ("2000 mg/m2 per day divided twice daily", None),
        ("2500 mg/m2 total daily dose", None),
    ],
)
def test_dose_by_body_surface_area_from_text(text: str, per_m2: float | None) -> None:
    assert mg_per_m2_from_text(text) == per_m2


@pytest.mark.parametrize(
    ("text", "per_m2"),
    [
        ("2000 mg/m2/day in two doses", 2000.0),
        ("2,000 mg/m² / day", 2000.0),
        ("2000 mg/m2 per day divided twice daily", 2000.0),
        ("1500 mg/m2 a day", 1500.0),
        ("2000 mg/m2/d", 2000.0),
        ("2000 mg/m2/day1-14", 2000.0),
        ("1000 mg/m2 by mouth twice daily", None),  # each dose
        ("1000 mg/m2 twice a day", None),
        ("2500 mg/m2 total daily dose", None),  # not read: words before the unit are not
        ("2000 mg/m2/days", None),
        ("2000 mg/day", None),  # flat
    ],
)
def test_days_total_by_body_surface_area_from_text(text: str, per_m2: float | None) -> None:
    assert mg_per_m2_a_day_from_text(text) == per_m2


@pytest.mark.parametrize(
    ("code", "unit", "per_m2"),
    [
        ("mg/m2", "mg/m2", 1000.0),
        (None, "mg/m²", 1000.0),
        (None, "MG/M2", 1000.0),
        ("mg", "mg", None),
        ("mg/kg", "mg/kg", None),
        (None, None, None),
    ],
)
def test_dose_by_body_surface_area_from_a_quantity(
    code: str | None, unit: str | None, per_m2: float | None
) -> None:
    assert to_mg_per_m2(Quantity(1000.0, unit, code)) == per_m2


@pytest.mark.parametrize(
    ("text", "weeks"),
    [
        ("4 mg IV every 12 weeks", 12.0),
        ("q4w", 4.0),
        ("Q 4 WEEKS", 4.0),
        ("every 28 days", 4.0),
        ("every four weeks", 4.0),
        ("every 3 months", 13.0),
        ("120 mg SC weekly", 1.0),  # was unread: a weekly denosumab order passed unchecked
        ("once a week", 1.0),
        ("every other week", 2.0),
        ("twice weekly", 0.5),  # before "weekly"
        ("120 mg twice a week", 0.5),
        ("4 mg monthly", 52 / 12),
        ("daily", 1 / 7),
        ("5.4 mg/kg IV every day", 1 / 7),
        ("every other day", 2 / 7),
        ("bid", 1 / 14),
        ("three times daily", 1 / 21),
        ("300 mg by mouth every 12 hours", 12 / 168),  # Tukysa: about 12 hours apart
        ("500 mg PO q12h", 12 / 168),
        ("every 24 hrs", 24 / 168),
        # No schedule in the words: unknown, never a safe interval.
        ("4 mg IV over 15 minutes", None),
        ("biweekly", None),  # every two weeks, or twice a week: not guessed
        ("as directed", None),
        # A number of days no schedule has: unread (read, it overflowed to a 500).
        ("120 mg every " + "9" * 400 + " days", None),
        ("every 10000 years", None),
    ],
)
def test_interval_from_text(text: str, weeks: float | None) -> None:
    assert weeks_from_text(text) == weeks


@pytest.mark.parametrize(
    ("weeks", "words"),
    [
        (1 / 14, "more than once a day"),  # not "every 0 days"
        (1 / 7, "daily"),
        (2 / 7, "every 2 days"),
        (1.0, "every 1 week"),
        (4.0, "every 4 weeks"),
        (52 / 12, "every 30 days"),
    ],
)
def test_an_interval_as_the_card_says_it(weeks: float, words: str) -> None:
    assert said(interval_words(weeks)) == words


HUGE = "9" * 400  # beyond a double: read as a float, infinite


@pytest.mark.parametrize(
    "read",
    [mg_from_text, mg_per_kg_from_text, mg_per_m2_from_text, mg_per_m2_a_day_from_text],
)
@pytest.mark.parametrize(
    "text", [f"{HUGE} mg", f"{HUGE} g", f"{HUGE} mg/kg", f"{HUGE} mg/m2", f"{HUGE} mg/m2/day"]
)
def test_a_dose_beyond_a_double_in_the_text_is_not_read(read: Any, text: str) -> None:
    """Read, such a dose was infinite and the card said "inf mg"."""
    assert read(text) is None


def test_a_mass_beyond_a_double_once_in_mg_is_not_read() -> None:
    assert to_mg(Quantity(1e308, "kg", "kg")) is None
    assert to_mg(Quantity(1e300, "g", "g")) == 1e303


def test_an_infusion_time_beyond_a_double_is_not_read() -> None:
    assert minutes(1e308, "d") is None
    assert minutes_from_text(f"over {HUGE} minutes") is None
    assert minutes_from_text("over 15 minutes") == 15.0


@pytest.mark.parametrize(
    ("code", "unit", "count"),
    [
        ("{tbl}", "tablet", 4.0),
        ("TAB", "tablet", 4.0),  # HL7 v3 orderable drug form
        (None, "Tablets", 4.0),
        (None, "tabs", 4.0),
        ("{pill}", None, 4.0),  # the CDS Hooks Sandbox's unit: a pill of a tablet product
        ("{capsule}", "capsule", None),
        ("mg", "mg", None),
        (None, None, None),
    ],
)
def test_a_count_of_tablets_from_a_quantity(
    code: str | None, unit: str | None, count: float | None
) -> None:
    assert tablets(Quantity(4, unit, code)) == count


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("4 tablets by mouth twice daily", 4.0),
        ("Take 1 tablet daily", 1.0),
        ("take 0.5 tab by mouth", 0.5),
        ("2 Tablets BID", 2.0),
        ("1-2 tablets as needed", None),  # a range is no dose
        ("1 to 2 tablets", None),
        ("1 or 2 tablets", None),
        ("2 tablets in the morning and 1 tablet at night", None),  # no single dose
        ("300 mg twice daily", None),
        ("tablets as directed", None),
    ],
)
def test_a_count_of_tablets_from_text(text: str, count: float | None) -> None:
    assert tablets_from_text(text) == count
