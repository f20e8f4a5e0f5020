"""What the `cds` subcommands share: settings from the environment, the store, dates and
rates from the command line, and terminal-safe text."""

from __future__ import annotations

import argparse
from datetime import date

from pydantic import ValidationError

from cds.settings import Settings


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
