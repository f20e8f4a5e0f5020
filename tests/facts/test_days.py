"""A record's date seen from the evaluation date, with the EHR's clock up to a day ahead."""

from __future__ import annotations

from datetime import date

from cds.facts.days import last_day, window, within

AS_OF = date(2026, 12, 5)


def test_within_holds_both_ends_of_its_window_and_the_lead() -> None:
    assert within(date(2026, 11, 5), AS_OF, 30, 1)  # the window's last day
    assert not within(date(2026, 11, 4), AS_OF, 30, 1)
    assert within(AS_OF, AS_OF, 30, 1)
    assert within(date(2026, 12, 6), AS_OF, 30, 1)  # tomorrow: an EHR east of the server
    assert not within(date(2026, 12, 7), AS_OF, 30, 1)
    assert not within(date(2026, 12, 6), AS_OF, 30, 0)


def test_after_today_is_beyond_the_lead_only() -> None:
    assert last_day(AS_OF, 1) == date(2026, 12, 6)
    assert last_day(AS_OF, 0) == AS_OF
    assert last_day(date.max, 1) == date.max


def test_a_window_reaching_back_before_year_one_does_not_overflow() -> None:
    assert within(date(1, 1, 1), date(1, 1, 2), 10_000, 1)


def test_window_is_the_first_and_last_date_within_accepts() -> None:
    first, last = window(AS_OF, 30, 1)
    assert (first, last) == (date(2026, 11, 5), date(2026, 12, 6))
    assert within(first, AS_OF, 30, 1)
    assert within(last, AS_OF, 30, 1)
    assert window(date(1, 1, 2), 10_000, 1)[0] == date.min
    assert window(date.max, 30, 1)[1] == date.max
