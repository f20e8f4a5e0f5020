"""Dosage read into a Dose (cds/fhir/dosing.py): every element by its own type, never trusted."""

from __future__ import annotations

from typing import Any

import pytest

from cds.fhir.dosing import read_dose


@pytest.mark.parametrize(
    ("period_unit", "weeks"),
    [
        ("wk", 4.0),
        ("d", 4 / 7),
        (["wk"], None),  # not a code: unread, never a crash (found by the mutation fuzz test)
        ({"code": "wk"}, None),
        (4, None),
        (None, None),
    ],
)
def test_an_interval_is_read_only_from_a_code(period_unit: Any, weeks: float | None) -> None:
    dose = read_dose({"timing": {"repeat": {"period": 4, "periodUnit": period_unit}}})
    assert dose.every_weeks == (pytest.approx(weeks) if weeks is not None else None)


@pytest.mark.parametrize(
    ("repeat", "weeks"),
    [
        ({"period": 3, "periodUnit": "wk"}, 3.0),
        ({"period": 1, "periodUnit": "d", "frequency": 2}, 1 / 14),
        ({"period": 4, "periodUnit": "wk", "frequency": None}, 4.0),  # null: as if absent
        ({"period": 0, "periodUnit": "h"}, 0.0),  # FHIR allows it: more often than any label's
        # Beyond a century, under a minute, or negative: no interval to judge. Read, a century
        # of centuries overflowed where the card said it in days (a 500) and a draft dosed every
        # 1e-308 days was "inf mg a day".
        ({"period": 1e308, "periodUnit": "a"}, None),
        ({"period": 1e308, "periodUnit": "wk", "frequency": 1e-10}, None),
        ({"period": 1, "periodUnit": "wk", "frequency": 1e-320}, None),
        ({"period": 1e-308, "periodUnit": "d"}, None),
        ({"period": 101, "periodUnit": "a"}, None),
        ({"period": -1, "periodUnit": "wk"}, None),
        # frequency is a positiveInt: 0 or a negative is no count of doses (0 was read as 1).
        ({"period": 1, "periodUnit": "d", "frequency": 0}, None),
        ({"period": 1, "periodUnit": "d", "frequency": -3}, None),
        ({"period": "NaN", "periodUnit": "d"}, None),
        ({"period": "Infinity", "periodUnit": "d"}, None),
    ],
)
def test_an_interval_out_of_any_schedule_is_not_read(
    repeat: dict[str, Any], weeks: float | None
) -> None:
    dose = read_dose({"timing": {"repeat": repeat}})
    assert dose.every_weeks == (pytest.approx(weeks) if weeks is not None else None)


@pytest.mark.parametrize("value", ["NaN", "nan", "Infinity", "-inf", "1e400", "9" * 400])
def test_a_dose_that_is_no_finite_number_is_not_read(value: str) -> None:
    """Drafts are read as sent, strings for numbers included; a string that is no finite number
    is no dose (read, it showed as "inf mg" or "nan mg" on a dose card)."""
    dose = read_dose({"doseAndRate": [{"doseQuantity": {"value": value, "unit": "mg"}}]})
    assert dose.quantity is None
