"""How far a record's date lies from the evaluation date (`as_of`), with the EHR's clock ahead.

The server's calendar date is its own time zone's. An EHR east of it is already on the next
day: a creatinine drawn this morning in Sydney is dated tomorrow for a server on UTC. Read as
the future, that creatinine was passed over for an older one, a low calcium drawn today went
unseen, and a dose given today did not count as given. A date up to `lead_days` after `as_of`
is therefore today; only a later one is the future.
"""

from __future__ import annotations

from datetime import date, timedelta


def within(when: date, as_of: date, days: int, lead_days: int) -> bool:
    """`when` is no more than `days` before `as_of`, and no more than `lead_days` after it."""
    return -lead_days <= (as_of - when).days <= days


def last_day(as_of: date, lead_days: int) -> date:
    """The last date that is still today on some clock: a later one the record cannot hold yet."""
    try:
        return as_of + timedelta(days=lead_days)
    except OverflowError:
        return date.max


def window(as_of: date, days: int, lead_days: int) -> tuple[date, date]:
    """The first and last dates `within` accepts, for comparing a whole series at once."""
    try:
        first = as_of - timedelta(days=days)
    except OverflowError:  # a window reaching back before year 1
        first = date.min
    return first, last_day(as_of, lead_days)
