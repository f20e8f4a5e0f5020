"""Structured logging: one JSON object per line. Callers log ids and timings, never PHI."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import orjson

MAX_FIELD = 200  # a logged string longer than this is cut: a client cannot write 4 MB lines
# LogRecord attributes that are not the caller's `extra` fields.
# uvicorn's color_message repeats the message with terminal colour codes: never written.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",
}


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: _cap(v) for k, v in vars(record).items() if k not in _STANDARD})
        entry["message"] = _cap(entry["message"])
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        try:
            # orjson: every call writes a line, and the standard encoder took half its cost.
            return orjson.dumps(entry, default=str).decode()
        except TypeError:  # what orjson refuses (a lone surrogate, an int beyond 64 bits)
            return json.dumps(entry, default=str)


def _cap(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_FIELD:
        return value[:MAX_FIELD] + f"…(+{len(value) - MAX_FIELD} chars)"
    return value


def silence_url_loggers() -> None:
    """httpx logs every request URL at INFO, and FHIR query URLs carry the patient id."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log prints the request path only (no query, no body): keep it, as JSON.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    silence_url_loggers()
