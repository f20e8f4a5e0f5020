"""Shared state: card feedback, the JWT replay cache, and the issued-card records and snoozes
behind card snoozing - one interface, two backends.

* SQLite (the embedded default, `CDS_FEEDBACK_DB`): one file in WAL mode, shared by every worker
  process of one machine; it applies its schema itself. Feedback is fsynced before its 200
  (synchronous=FULL); what every call writes is not (NORMAL: it survives a process crash).
* PostgreSQL (`CDS_DATABASE_URL=postgresql://…`): shared by every instance; a connection pool
  with a bounded wait, so a slow database is a 503 with an OperationOutcome, never a hang. Its
  schema is applied by `cds migrate` and checked by `cds check` and at start-up.

Schema versions are numbered; `migrate` applies the missing ones in order and is idempotent.
No PHI in clear: a patient is known only by a keyed hash (HMAC-SHA256 with
`CDS_PATIENT_KEY_SECRET`), and issued-card records expire. Feedback free text is stored as
sent (it may hold clinical text) and never logged.
"""

from __future__ import annotations

from pathlib import Path

from cds.errors import ConfigError
from cds.settings import Settings
from cds.store.postgres import PostgresStore, _check_database_url
from cds.store.records import (
    DAY_S,
    MAX_FEEDBACK_PER_CARD,
    PRUNE_EVERY_S,
    CardTally,
    IssuedCard,
    ReportRows,
    Snooze,
    Store,
    StoredFeedback,
    caller,
)
from cds.store.schema import MIGRATIONS, SCHEMA_VERSION
from cds.store.sqlite import SQLiteStore

__all__ = [
    "DAY_S",
    "MAX_FEEDBACK_PER_CARD",
    "MIGRATIONS",
    "PRUNE_EVERY_S",
    "SCHEMA_VERSION",
    "CardTally",
    "IssuedCard",
    "PostgresStore",
    "ReportRows",
    "SQLiteStore",
    "Snooze",
    "Store",
    "StoredFeedback",
    "caller",
    "open_configured",
    "open_store",
]


def open_configured(
    settings: Settings, *, require_schema: bool = True, timeout_s: float | None = None
) -> Store:
    """The store the settings name (the service, and each command that reads the store)."""
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


def open_store(
    *,
    database_url: str | None,
    sqlite_path: Path,
    snooze_days: float,
    accept_snooze_days: float = 1,
    retention_days: float = 400,
    timeout_s: float = 2.0,
    require_schema: bool = True,
) -> Store:
    """The configured backend: PostgreSQL when a URL is given, else the SQLite file."""
    if database_url:
        if not database_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("CDS_DATABASE_URL must be a postgresql:// URL")
        _check_database_url(database_url)
        return PostgresStore(
            database_url,
            snooze_days=snooze_days,
            accept_snooze_days=accept_snooze_days,
            retention_days=retention_days,
            timeout_s=timeout_s,
            require_schema=require_schema,
        )
    return SQLiteStore(
        sqlite_path,
        snooze_days=snooze_days,
        accept_snooze_days=accept_snooze_days,
        retention_days=retention_days,
        timeout_s=timeout_s,
    )
