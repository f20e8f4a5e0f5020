"""PostgreSQL: shared by every instance, through a bounded connection pool."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cds.errors import ConfigError, StoreUnavailable
from cds.store.schema import SCHEMA_VERSION
from cds.store.sql import _SQL

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool


class PostgresStore(_SQL):
    """PostgreSQL through a psycopg connection pool; every wait for a connection is bounded."""

    backend = "postgresql"
    local = False

    def __init__(
        self,
        url: str,
        *,
        snooze_days: float = 30,
        retention_days: float = 60,
        pool_size: int = 10,
        timeout_s: float = 2.0,
        require_schema: bool = True,
        clock: Callable[[], float] = time.time,
        accept_snooze_days: float = 1,
    ) -> None:
        super().__init__(snooze_days, retention_days, clock, accept_snooze_days)
        import psycopg
        from psycopg_pool import PoolTimeout

        self._errors: tuple[type[Exception], ...] = (PoolTimeout, psycopg.OperationalError)
        self.timeout_s = timeout_s

        pool = _pool_maker(url, timeout_s, bounded=require_schema)
        # Feedback, migrations, reads of stored feedback: transactions, fsynced at commit.
        self._pool = pool(max(2, pool_size // 4), autocommit=False)  # feedback is rare
        # What every call reads and writes (snoozes, issued cards, JWT ids): each statement its
        # own transaction, committed without waiting for the WAL flush. One round trip a
        # statement; BEGIN, SET LOCAL and COMMIT were three more each time (libpq trace).
        self._fast = pool(pool_size, autocommit=True, configure=_commit_without_waiting)
        try:
            for each in (self._pool, self._fast):
                each.open(wait=True, timeout=max(timeout_s, 5.0))
        except self._errors as exc:
            self.close()
            raise ConfigError(
                f"the database at CDS_DATABASE_URL cannot be reached: {exc}"
            ) from None
        version = self.schema_version() if require_schema else SCHEMA_VERSION
        if version < SCHEMA_VERSION:
            self.close()
            raise ConfigError(
                f"the database schema is at version {version}, this service needs "
                f"{SCHEMA_VERSION}: run `cds migrate`"
            )

    @contextmanager
    def tx(self, *, durable: bool = True, read: bool = False) -> Iterator[Any]:
        """Durable: one transaction. Not durable: each statement commits on its own (none of
        the callers needs two of its statements to commit together)."""
        pool = self._pool if durable else self._fast
        try:
            with pool.connection(timeout=self.timeout_s) as conn, conn.cursor() as cur:
                yield cur
        except self._errors as exc:
            raise StoreUnavailable(
                f"the database did not answer within {self.timeout_s:g} s; try again"
            ) from exc

    def close(self) -> None:
        self._pool.close()
        self._fast.close()


def _pool_maker(url: str, timeout_s: float, *, bounded: bool) -> Callable[..., ConnectionPool[Any]]:
    """A maker of connection pools to `url`, each wait for a connection bounded by timeout_s.

    Every statement (and every wait for a lock, as behind a migration or VACUUM FULL) is
    bounded like the wait for a connection: a 503, never a hang (issue 28 item 9). Not for
    `cds migrate` (`bounded` False), whose statements may rightly take longer.
    """
    from psycopg_pool import ConnectionPool  # psycopg loads only when PostgreSQL is used

    limits = {}
    if bounded:
        ms = max(1, int(timeout_s * 1000))
        limits["options"] = f"-c statement_timeout={ms} -c lock_timeout={ms}"

    def pool(max_size: int, *, autocommit: bool, **options: Any) -> ConnectionPool[Any]:
        return ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            timeout=timeout_s,
            open=False,
            kwargs={
                "connect_timeout": max(1, int(timeout_s)),
                "autocommit": autocommit,
                **limits,
            },
            **options,
        )

    return pool


def _commit_without_waiting(conn: Any) -> None:
    conn.execute("SET synchronous_commit = off")  # for the session: this pool's connections


class _RedactPassword(logging.Filter):
    """psycopg's pool logs libpq's connection errors, which quote the whole URI: the password
    is replaced wherever it appears (issue 28: a malformed URL echoed it into the log)."""

    def __init__(self, password: str) -> None:
        super().__init__()
        self.password = password

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if self.password in text:
            record.msg, record.args = text.replace(self.password, "***"), None
        return True


def _check_database_url(url: str) -> None:
    """Refuse a URL that does not parse before psycopg sees it, never quoting it; and keep its
    password out of psycopg's own log records."""
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        raise ConfigError(f"CDS_DATABASE_URL does not parse as a URL ({exc})") from None
    if not host:
        raise ConfigError("CDS_DATABASE_URL names no host")
    if port is not None and not 0 < port < 65536:
        raise ConfigError("CDS_DATABASE_URL has a port out of range")
    if parts.password:
        for name in ("psycopg", "psycopg.pool"):
            logger = logging.getLogger(name)
            if not any(isinstance(f, _RedactPassword) for f in logger.filters):
                logger.addFilter(_RedactPassword(parts.password))
