"""The schema, by version: `migrate` applies the missing ones in order, idempotently."""

from __future__ import annotations

SCHEMA_VERSION = 6
# Version 2: the JWT replay cache, issued cards and snoozes (the same SQL on both backends).
_V2 = (
    """CREATE TABLE IF NOT EXISTS jwt_replay (
        iss TEXT NOT NULL, jti TEXT NOT NULL, expires_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (iss, jti))""",
    "CREATE INDEX IF NOT EXISTS jwt_replay_expiry ON jwt_replay (expires_at)",
    """CREATE TABLE IF NOT EXISTS issued_card (
        card TEXT PRIMARY KEY, rule TEXT NOT NULL, patient_key TEXT NOT NULL,
        evidence TEXT NOT NULL, issued_at DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS issued_card_age ON issued_card (issued_at)",
    """CREATE TABLE IF NOT EXISTS snooze (
        patient_key TEXT NOT NULL, rule TEXT NOT NULL, evidence TEXT NOT NULL,
        reason TEXT NOT NULL, since DOUBLE PRECISION NOT NULL,
        until DOUBLE PRECISION NOT NULL, PRIMARY KEY (patient_key, rule))""",
)
_V3 = ("CREATE INDEX IF NOT EXISTS snooze_until ON snooze (until)",)
# Version 4: feedback is taken only for a card issued through the same service to the same
# caller (JWT issuer and tenant), naming suggestions the card had (issue 28 item 2). Rows from
# before carry none of these and take no feedback; they expire with the retention period.
_V4 = (
    "ALTER TABLE issued_card ADD COLUMN service_id TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE issued_card ADD COLUMN caller TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE issued_card ADD COLUMN suggestions TEXT NOT NULL DEFAULT '[]'",
)
# Version 5: the committee report (`cds report`) counts issued cards by rule, variant and
# indicator; it reads them by service and time, and feedback by card.
_V5 = (
    "ALTER TABLE issued_card ADD COLUMN variant TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE issued_card ADD COLUMN indicator TEXT NOT NULL DEFAULT ''",
    "CREATE INDEX IF NOT EXISTS issued_card_service ON issued_card (service_id, issued_at)",
    "CREATE INDEX IF NOT EXISTS feedback_card ON feedback (card)",
)
# Version 6: a snooze quiets one card, not every card of its rule: two drafts each above its
# label dose are two cards of one rule and variant, and overriding the first had shown the
# second again as "changed". Issued cards keep their concern (rule, variant and number), and the
# snooze table's `rule` column holds it from now on (the column keeps its name, so a replica
# not yet upgraded still reads the table). Snoozes from before hold the rule alone and go on
# quieting their own card, which is found by its evidence.
_V6 = ("ALTER TABLE issued_card ADD COLUMN concern TEXT NOT NULL DEFAULT ''",)
# (version, {backend: statements}); a statement never breaks an existing database.
MIGRATIONS: tuple[tuple[int, dict[str, tuple[str, ...]]], ...] = (
    (
        1,
        {
            "sqlite": (
                """CREATE TABLE IF NOT EXISTS feedback (
                    id INTEGER PRIMARY KEY,
                    service_id TEXT NOT NULL, card TEXT NOT NULL, outcome TEXT NOT NULL,
                    outcome_timestamp TEXT NOT NULL, accepted_suggestions TEXT NOT NULL,
                    override_code TEXT, override_system TEXT, override_comment TEXT,
                    received_at TEXT NOT NULL,
                    UNIQUE (service_id, card, outcome, outcome_timestamp))""",
            ),
            "postgresql": (
                """CREATE TABLE IF NOT EXISTS feedback (
                    id BIGSERIAL PRIMARY KEY,
                    service_id TEXT NOT NULL, card TEXT NOT NULL, outcome TEXT NOT NULL,
                    outcome_timestamp TEXT NOT NULL, accepted_suggestions TEXT NOT NULL,
                    override_code TEXT, override_system TEXT, override_comment TEXT,
                    received_at TEXT NOT NULL,
                    UNIQUE (service_id, card, outcome, outcome_timestamp))""",
            ),
        },
    ),
    (2, {"sqlite": _V2, "postgresql": _V2}),
    # Version 3: pruning ended snoozes found them by a scan of the whole table. Accepted cards
    # stay quiet for years, so the table only grows: at 50,000 snoozes the scan cost 3.8 ms of
    # every call (0.11 ms with the index).
    (3, {"sqlite": _V3, "postgresql": _V3}),
    (4, {"sqlite": _V4, "postgresql": _V4}),
    (5, {"sqlite": _V5, "postgresql": _V5}),
    (6, {"sqlite": _V6, "postgresql": _V6}),
)

_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
