"""What the store holds and the interface both backends implement."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from cds import schemas

DAY_S = 86_400.0
# Retention is counted in days: pruning once a minute keeps the tables as small as pruning on
# every call did, without two more statements (two more round trips on PostgreSQL) per call.
PRUNE_EVERY_S = 60.0
# Feedback records one card may collect (distinct outcomes and times; a resent one is not new).
MAX_FEEDBACK_PER_CARD = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredFeedback:
    service_id: str
    card: str
    outcome: str
    outcome_timestamp: str
    accepted_suggestions: tuple[str, ...]
    override_code: str | None
    override_system: str | None
    override_comment: str | None
    received_at: str


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedCard:
    """What a card was about, to snooze it when overridden: never the patient id in clear."""

    card: str  # the card uuid
    rule: str
    patient_key: str  # HMAC of the patient id
    evidence: str  # digest of the data behind the card
    service_id: str = ""  # the service that issued it: feedback goes to that service's URL
    caller: str = ""  # who received it (see `caller`): only they may give feedback on it
    suggestions: tuple[str, ...] = ()  # its suggestion uuids, the ones feedback may accept
    variant: str = ""  # the rule's variant and the card's indicator: for the committee report
    indicator: str = ""
    concern: str = ""  # rule, variant and number (R2b:above-label#2): what its snooze quiets


def caller(iss: str | None, tenant: str | None) -> str:
    """Who called, as stored with an issued card: the JWT issuer and tenant ("|" when the
    service runs without authentication)."""
    return f"{iss or ''}|{tenant or ''}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Snooze:
    """One card's snooze: `concern` names the card's kind (Decision.concern; the rule alone
    in snoozes from before schema version 6), `evidence` the data it was snoozed on."""

    concern: str
    evidence: str
    reason: Literal["overridden", "accepted"]
    since: float
    until: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CardTally:
    """Issued cards of one rule variant in a period, and what feedback said of them; a card
    counts once as accepted and once as overridden however many items named it."""

    service_id: str
    rule: str
    variant: str
    issued: int
    patients: int
    accepted: int
    overridden: int
    no_feedback: int


@dataclass(frozen=True, slots=True)
class ReportRows:
    tallies: list[CardTally]
    # (service, rule, variant, override reason code or "", cards overridden with it)
    reasons: list[tuple[str, str, str, str, int]]
    # (service, rule, Monday of the week as epoch seconds, issued, accepted, overridden)
    weeks: list[tuple[str, str, float, int, int, int]]
    # (rule, snooze reason, patients whose card for the rule went quiet in the period)
    snoozes: list[tuple[str, str, int]]


class Store(Protocol):
    # "sqlite": a local file, a call takes microseconds; "postgresql": a database over the network.
    backend: str
    # Whether its calls are fast enough to make beside a call's evaluation (a local file): then
    # a call reads snoozes and records its cards where it evaluates (on the event loop, with
    # the *_now methods, which never wait; or in the same worker-thread hop).
    local: bool

    def add(
        self, service_id: str, items: Iterable[schemas.FeedbackItem], *, caller: str = "|"
    ) -> int:
        """Store feedback (durable before it returns) and snooze what it overrode or accepted;
        returns how many items were new. With issued cards recorded (snoozing on), every item
        must name a card issued through `service_id` to `caller`, and suggestions it had, or
        nothing is stored (FeedbackRefused)."""

    def list(self, *, service_id: str | None = None, limit: int = 100) -> list[StoredFeedback]: ...

    def first_use(self, iss: str, jti: str, expires_at: float, now: float) -> bool:
        """Record a JWT id; False if it was seen before and has not expired (a replay)."""

    def record_issued(self, cards: Sequence[IssuedCard]) -> None: ...

    def snoozes(self, patient_key: str) -> dict[str, Snooze]: ...

    def record_issued_now(self, cards: Sequence[IssuedCard]) -> bool:
        """record_issued without waiting for a lock (the event loop calls it): False, with
        nothing written, when it would have to wait; the caller then waits off the loop."""

    def snoozes_now(self, patient_key: str) -> dict[str, Snooze] | None:
        """snoozes without waiting for a lock (the event loop calls it): None when it would."""

    def report_rows(self, since: float, until: float, service_id: str | None) -> ReportRows:
        """The committee report's counts for cards issued in [since, until) (epoch seconds)."""

    def schema_version(self) -> int: ...

    def migrate(self) -> int:
        """Apply missing schema versions; returns the version now in place."""

    def close(self) -> None: ...
