"""What the `cds` subcommands share: settings from the environment, the store, dates and
rates from the command line, and terminal-safe text."""

from __future__ import annotations

import argparse
from datetime import date

from pydantic import ValidationError

from cds.settings import Settings
from cds.store import Store


def printable(text: str) -> str:
    """Stored feedback is client text: control characters (terminal escapes) are shown escaped."""
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )


def settings_or_exit() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise SystemExit(f"configuration error:\n{exc}") from None


def open_store_for(
    settings: Settings, *, require_schema: bool = True, timeout_s: float | None = None
) -> Store:
    from cds.store import open_store

    url = settings.database_url.get_secret_value() if settings.database_url else None
    return open_store(
        database_url=url,
        sqlite_path=settings.feedback_db,
        snooze_days=settings.snooze_days,
        accept_snooze_days=settings.accept_snooze_days,
        retention_days=settings.issued_retention_days,
        timeout_s=timeout_s or settings.database_timeout_s,
        require_schema=require_schema,
    )


def day_arg(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def rate_arg(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a rate between 0 and 1")
    return value
