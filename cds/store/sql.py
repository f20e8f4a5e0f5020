"""The statements both backends run, on a DB-API cursor, in one transaction each."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any

from cds import schemas
from cds.errors import FeedbackRefused, Issue
from cds.store.records import (
    DAY_S,
    MAX_FEEDBACK_PER_CARD,
    PRUNE_EVERY_S,
    IssuedCard,
    ReportRows,
    Snooze,
    StoredFeedback,
)
from cds.store.reporting import report_rows
from cds.store.schema import _VERSION_TABLE, MIGRATIONS


def _feedback_row(service_id: str, item: schemas.FeedbackItem, now: str) -> tuple[Any, ...]:
    reason = item.overrideReason
    return (
        service_id,
        item.card,
        item.outcome,
        item.outcomeTimestamp.astimezone(UTC).isoformat(),
        json.dumps([s.id for s in item.acceptedSuggestions or ()]),
        reason.reason.code if reason and reason.reason else None,
        reason.reason.system if reason and reason.reason else None,
        reason.userComment if reason else None,
        now,
    )


def _check_issued(
    n: int,
    item: schemas.FeedbackItem,
    issued: Sequence[Any] | None,
    service_id: str,
    caller: str,
) -> None:
    """Refuse feedback on a card this caller did not receive from this service (issue 28
    items 1, 2): a card is snoozed by its feedback, so feedback from anyone else, or through
    another service, would silence it for the patient it was issued for."""
    where = f"feedback[{n}]"
    # The same answer for "no such card" and "issued to someone else": no card's existence
    # is disclosed to another caller.
    if issued is None or issued[3] != service_id or issued[4] != caller:
        raise FeedbackRefused(
            f"{where}.card: no card with this uuid was issued to this client by this service"
            " (or its record has expired)",
            issues=(
                Issue(
                    code="not-found",
                    diagnostics="no card with this uuid was issued to this client by this service",
                    expression=f"{where}.card",
                ),
            ),
        )
    known = set(json.loads(issued[5]))
    for m, accepted in enumerate(item.acceptedSuggestions or ()):
        if accepted.id not in known:
            raise FeedbackRefused(
                f"{where}.acceptedSuggestions[{m}].id: the card has no suggestion with this uuid",
                issues=(
                    Issue(
                        code="not-found",
                        diagnostics="the card has no suggestion with this uuid",
                        expression=f"{where}.acceptedSuggestions[{m}].id",
                    ),
                ),
            )


def _check_count(n: int, cur: Any, q: Callable[[str], str], service_id: str, card: str) -> None:
    """At most MAX_FEEDBACK_PER_CARD records per card (issue 28 item 5): a card is accepted or
    overridden a few times at most, and the table is never pruned (it is clinicians' feedback,
    kept for review), so a client cannot grow it without bound through one real card."""
    cur.execute(
        q("SELECT COUNT(*) FROM feedback WHERE service_id = %s AND card = %s"), (service_id, card)
    )
    if cur.fetchone()[0] > MAX_FEEDBACK_PER_CARD:
        raise FeedbackRefused(
            f"feedback[{n}]: this card already has {MAX_FEEDBACK_PER_CARD} feedback records",
            issues=(
                Issue(
                    code="too-costly",
                    diagnostics=f"a card takes at most {MAX_FEEDBACK_PER_CARD} feedback records",
                    expression=f"feedback[{n}]",
                ),
            ),
        )


def _stored(r: Sequence[Any]) -> StoredFeedback:
    return StoredFeedback(
        service_id=r[0],
        card=r[1],
        outcome=r[2],
        outcome_timestamp=r[3],
        accepted_suggestions=tuple(json.loads(r[4])),
        override_code=r[5],
        override_system=r[6],
        override_comment=r[7],
        received_at=r[8],
    )


_INSERT_FEEDBACK = (
    "INSERT INTO feedback (service_id, card, outcome, outcome_timestamp, accepted_suggestions,"
    " override_code, override_system, override_comment, received_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)
_SELECT_FEEDBACK = (
    "SELECT service_id, card, outcome, outcome_timestamp, accepted_suggestions, override_code,"
    " override_system, override_comment, received_at FROM feedback"
)
_UPSERT_SNOOZE = (
    "INSERT INTO snooze (patient_key, rule, evidence, reason, since, until)"
    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (patient_key, rule) DO UPDATE SET"
    " evidence = excluded.evidence, reason = excluded.reason, since = excluded.since,"
    " until = excluded.until"
)


class _SQL:
    """The statements both backends run, on a DB-API cursor, in one transaction each."""

    placeholder = "%s"
    backend: str

    def __init__(
        self,
        snooze_days: float,
        retention_days: float,
        clock: Callable[[], float],
        accept_snooze_days: float = 1,
    ) -> None:
        self.snooze_s = snooze_days * DAY_S
        self.accept_snooze_s = accept_snooze_days * DAY_S
        self.retention_s = max(retention_days, snooze_days + 30) * DAY_S
        self._clock = clock
        self._pruned: dict[str, float] = {}  # what was last pruned when (by its caller's clock)

    def q(self, sql: str) -> str:
        return sql if self.placeholder == "%s" else sql.replace("%s", self.placeholder)

    def _prune_due(self, what: str, now: float) -> bool:
        """True on the first call for `what` and then at most once a minute. Unlocked: two
        threads may both prune, which is harmless."""
        if now - self._pruned.get(what, float("-inf")) < PRUNE_EVERY_S:
            return False
        self._pruned[what] = now
        return True

    def tx(self, *, durable: bool = True, read: bool = False) -> AbstractContextManager[Any]:
        """A transaction. `durable=False` is for what a process crash must not lose but an OS
        crash or power loss may (issued-card records, snoozes looked up, JWT ids seen): no
        fsync wait on commit, and on PostgreSQL each statement commits on its own. `read`
        takes no write lock."""
        raise NotImplementedError

    def add(
        self, service_id: str, items: Iterable[schemas.FeedbackItem], *, caller: str = "|"
    ) -> int:
        now = self._clock()
        stamp = datetime.fromtimestamp(now, UTC).isoformat()
        new = 0
        with self.tx() as cur:
            for n, item in enumerate(items):
                cur.execute(
                    self.q(
                        "SELECT rule, patient_key, evidence, service_id, caller, suggestions,"
                        " concern FROM issued_card WHERE card = %s"
                    ),
                    (item.card,),
                )
                issued = cur.fetchone()
                if self.snooze_s:
                    # Raised inside the transaction: nothing of this post is stored.
                    _check_issued(n, item, issued, service_id, caller)
                cur.execute(self.q(_INSERT_FEEDBACK), _feedback_row(service_id, item, stamp))
                added = max(cur.rowcount, 0)
                if added and self.snooze_s:
                    _check_count(n, cur, self.q, service_id, item.card)
                new += added
                if issued is None or (item.outcome == "accepted" and not item.acceptedSuggestions):
                    continue
                # Overridden: quiet for the snooze period. Accepted: briefly (clinical-logic
                # §3c D20) - accepting a suggestion is not doing it; the card stops for good
                # once the record shows the therapy (the rule no longer fires).
                until = now + (
                    self.snooze_s if item.outcome == "overridden" else self.accept_snooze_s
                )
                # The card's own concern: another card of its rule is not quieted with it
                # (cards issued before schema version 6 name only their rule).
                concern = issued[6] or issued[0]
                cur.execute(
                    self.q(_UPSERT_SNOOZE),
                    (issued[1], concern, issued[2], item.outcome, now, until),
                )
        return new

    def list(self, *, service_id: str | None = None, limit: int = 100) -> list[StoredFeedback]:
        sql = _SELECT_FEEDBACK
        args: tuple[object, ...] = ()
        if service_id is not None:
            sql, args = sql + " WHERE service_id = %s", (service_id,)
        with self.tx(read=True) as cur:
            cur.execute(self.q(sql + " ORDER BY id DESC LIMIT %s"), (*args, limit))
            return [_stored(r) for r in cur.fetchall()]

    def first_use(self, iss: str, jti: str, expires_at: float, now: float) -> bool:
        # On every authenticated call, so without an fsync (on SQLite one took 0.6 ms here,
        # more on network disks, holding the write lock of every worker meanwhile). A process
        # killed after the commit keeps the id; only an OS crash within the token's lifetime
        # could forget it, and replaying a token then also needs the token captured.
        with self.tx(durable=False) as cur:
            if self._prune_due("jwt ids", now):
                cur.execute(self.q("DELETE FROM jwt_replay WHERE expires_at < %s"), (now,))
            # One statement tells a replay: a new id is inserted, an id whose record has
            # expired (not pruned yet) is taken over, a live one is left alone (no row changed).
            cur.execute(
                self.q(
                    "INSERT INTO jwt_replay (iss, jti, expires_at) VALUES (%s, %s, %s)"
                    " ON CONFLICT (iss, jti) DO UPDATE SET expires_at = excluded.expires_at"
                    " WHERE jwt_replay.expires_at < %s"
                ),
                (iss, jti, expires_at, now),
            )
            return bool(cur.rowcount == 1)

    def record_issued(self, cards: Sequence[IssuedCard]) -> None:
        if not cards:
            return
        with self.tx(durable=False) as cur:
            self._record_issued(cur, cards)

    def record_issued_now(self, cards: Sequence[IssuedCard]) -> bool:
        """record_issued if it can be done without waiting (the event loop calls it); False,
        and nothing written, when the store is busy."""
        if not cards:
            return True
        with self.tx_now() as cur:
            if cur is None:
                return False
            self._record_issued(cur, cards)
            return True

    def snoozes_now(self, patient_key: str) -> dict[str, Snooze] | None:
        """snoozes if they can be read without waiting (the event loop calls it); None when
        the store is busy."""
        with self.tx_now(read=True) as cur:
            return None if cur is None else self._snoozes(cur, patient_key)

    def tx_now(self, *, read: bool = False) -> AbstractContextManager[Any]:
        """A transaction begun at once, or None: a backend that cannot tell never begins one
        (its callers then wait off the event loop)."""
        return nullcontext(None)

    def _record_issued(self, cur: Any, cards: Sequence[IssuedCard]) -> None:
        now = self._clock()
        if self._prune_due("issued cards and snoozes", now):
            expired = now - self.retention_s
            cur.execute(self.q("DELETE FROM issued_card WHERE issued_at < %s"), (expired,))
            cur.execute(self.q("DELETE FROM snooze WHERE until < %s"), (expired,))
        # One statement for all of a call's cards: one round trip to PostgreSQL, not one
        # a card. A card named twice would be updated twice, which PostgreSQL refuses.
        latest = {c.card: c for c in cards}
        rows = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(latest))
        cur.execute(
            self.q(
                "INSERT INTO issued_card (card, rule, patient_key, evidence, issued_at,"  # noqa: S608
                " service_id, caller, suggestions, variant, indicator, concern)"
                f" VALUES {rows} ON CONFLICT (card) DO UPDATE"
                " SET evidence = excluded.evidence, issued_at = excluded.issued_at,"
                " service_id = excluded.service_id, suggestions = excluded.suggestions"
            ),
            [
                x
                for c in latest.values()
                for x in (
                    c.card,
                    c.rule,
                    c.patient_key,
                    c.evidence,
                    now,
                    c.service_id,
                    c.caller,
                    json.dumps(c.suggestions),
                    c.variant,
                    c.indicator,
                    c.concern,
                )
            ],
        )

    def snoozes(self, patient_key: str) -> dict[str, Snooze]:
        with self.tx(durable=False, read=True) as cur:
            return self._snoozes(cur, patient_key)

    def _snoozes(self, cur: Any, patient_key: str) -> dict[str, Snooze]:
        # The `rule` column holds each snooze's concern (schema version 6).
        cur.execute(
            self.q(
                "SELECT rule, evidence, reason, since, until FROM snooze WHERE patient_key = %s"
            ),
            (patient_key,),
        )
        return {
            r[0]: Snooze(concern=r[0], evidence=r[1], reason=r[2], since=r[3], until=r[4])
            for r in cur.fetchall()
        }

    def report_rows(self, since: float, until: float, service_id: str | None) -> ReportRows:
        return report_rows(self, since, until, service_id)

    def schema_version(self) -> int:
        with self.tx() as cur:
            cur.execute(_VERSION_TABLE)
            cur.execute("SELECT MAX(version) FROM schema_version")
            row = cur.fetchone()
            return int(row[0]) if row and row[0] is not None else 0

    def migrate(self) -> int:
        with self.tx() as cur:
            cur.execute(_VERSION_TABLE)
            cur.execute("SELECT MAX(version) FROM schema_version")
            row = cur.fetchone()
            current = int(row[0]) if row and row[0] is not None else 0
            for version, statements in MIGRATIONS:
                if version <= current:
                    continue
                for sql in statements[self.backend]:
                    cur.execute(sql)
                cur.execute(self.q("INSERT INTO schema_version (version) VALUES (%s)"), (version,))
                current = version
        return current
