"""Doses read from an order's free text: a mass in mg, or nothing (never a guess)."""

from __future__ import annotations

import pytest

from cds.facts.units import mg_from_text


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
