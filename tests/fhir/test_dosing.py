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
