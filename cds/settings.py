"""Configuration from the environment (prefix CDS_). Production refuses unsafe settings."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _shipped_cards() -> Path:
    """The knowledge files: the checkout's cards/ when run from one, else the installed copy."""
    checkout = Path(__file__).resolve().parent.parent / "cards"
    if (checkout / "parameters.yaml").is_file():
        return checkout
    installed = Path(__file__).resolve().parent / "knowledge"
    if (installed / "parameters.yaml").is_file():
        return installed
    return Path(str(resources.files("cds.knowledge")))


REPO_CARDS = _shipped_cards()


class TrustedIssuer(BaseModel):
    """A CDS client allowed to call us: its JWKS and the FHIR servers it may point us at."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    iss: str
    jwks_url: str | None = None  # fetched, cached, refetched on an unknown kid
    jwks_file: Path | None = None  # or a static key set
    jku_allowlist: tuple[str, ...] = ()  # jku header values accepted (exact URLs)
    fhir_servers: tuple[str, ...] = ()  # fhirServer URL prefixes this client may send
    tenants: tuple[str, ...] = ()  # if set, the tenant claim must be one of these

    @model_validator(mode="after")
    def _one_key_source(self) -> Self:
        if (self.jwks_url is None) == (self.jwks_file is None):
            raise ValueError(f"issuer {self.iss}: give exactly one of jwks_url or jwks_file")
        if self.jwks_file is not None:
            try:
                keys = json.loads(self.jwks_file.read_text(encoding="utf-8")).get("keys")
            except (OSError, ValueError, AttributeError) as exc:
                raise ValueError(f"issuer {self.iss}: jwks_file unreadable: {exc}") from None
            if not isinstance(keys, list):
                raise ValueError(f"issuer {self.iss}: jwks_file has no 'keys' list")
        return self


# Development only: production refuses to start with it (a known key hides no patient id).
DEV_PATIENT_KEY_SECRET = "development-only-patient-key-secret"  # noqa: S105 - a known non-secret
# An HMAC key shorter than this is guessable offline from the snooze table (issue 28 item 16).
MIN_PATIENT_KEY_SECRET = 32

LOOPBACK = (
    "http://127.0.0.1",
    "http://localhost",
    "http://[::1]",
    "https://127.0.0.1",
    "https://localhost",
    "https://[::1]",
)


def host_port(address: str) -> tuple[str, int]:
    """ "host:port" or "[v6]:port" → (host, port); ValueError names what is wrong."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{address!r} is not host:port (e.g. 127.0.0.1:9464)")
    return host.strip("[]"), int(port)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CDS_", extra="forbid", frozen=True)

    mode: Literal["development", "production"] = "development"
    cards_dir: Path = REPO_CARDS
    feedback_db: Path = Path("var/feedback.sqlite3")  # the SQLite store, when no database URL
    # PostgreSQL for feedback, the JWT replay cache and card snoozes (several workers or
    # instances); unset, the SQLite file above. Waits for a connection are bounded: then 503.
    database_url: SecretStr | None = None
    database_timeout_s: float = Field(default=2.0, gt=0, le=30)
    # Card snoozing: an overridden card is not shown again for this many days unless the data
    # behind it changes (0 turns snoozing off). Patients are keyed by an HMAC with this secret.
    snooze_days: float = Field(default=30, ge=0, le=365)
    # An accepted patient-view suggestion quiets its card briefly: accepting is not ordering
    # (clinical-logic §3c D20); the card stops for good once the record shows the therapy.
    accept_snooze_days: float = Field(default=1, ge=0, le=365)
    patient_key_secret: SecretStr = SecretStr(DEV_PATIENT_KEY_SECRET)
    # How long a record of each issued card is kept (keyed patients, no PHI in clear): the
    # committee report (`cds report`) reaches back this far. Never less than a snooze needs.
    issued_retention_days: float = Field(default=400, ge=1, le=3650)
    log_level: str = "INFO"
    # Prometheus metrics (/metrics) on their own address, e.g. 127.0.0.1:9464; unset, none are
    # served. Never the hook endpoints' address: the numbers are for operators only.
    metrics_address: str | None = None

    # Outbound FHIR: per-request timeout, one deadline for all of a call's fetches, and limits.
    fhir_timeout_s: float = Field(default=3.0, gt=0)
    fetch_deadline_s: float = Field(default=4.0, gt=0)
    max_pages: int = Field(default=10, ge=1)
    max_resources: int = Field(default=5000, ge=1)
    # Charts of at most this many resources (prefetch and draft orders, all sent) are evaluated
    # on the event loop, one call a turn; larger ones, and all with 0, in the worker thread.
    evaluate_on_loop_max_resources: int = Field(default=300, ge=0)
    max_body_bytes: int = Field(default=5_000_000, ge=1024)
    # All of one call's FHIR responses together, compressed and decoded.
    max_fetch_bytes: int = Field(default=10_000_000, ge=1024)
    # Requests in flight to one FHIR server, across all calls (a slow server cannot take all).
    fhir_connections_per_host: int = Field(default=10, ge=1, le=100)
    # fhirServer URL prefixes we may fetch from when no issuer-specific list applies.
    fhir_server_allowlist: tuple[str, ...] = LOOPBACK

    # Client authentication (CDS Hooks JWT). Development may run without it, on loopback only.
    auth_required: bool = False
    trusted_issuers: tuple[TrustedIssuer, ...] = ()
    jwt_algorithms: tuple[str, ...] = ("ES384", "RS384")
    jwt_leeway_s: int = Field(default=30, ge=0, le=300)
    trust_forwarded_headers: bool = False
    public_base_url: str | None = None  # the externally visible base, for the JWT aud check

    # CORS for browser clients such as the CDS Hooks Sandbox.
    cors_origins: tuple[str, ...] = ("*",)
    # /docs, /redoc and /openapi.json: on in development, off in production unless enabled.
    api_docs: bool | None = None
    # Connections the server accepts at once (beyond them: 503), so sockets cannot pile up.
    max_connections: int = Field(default=1000, ge=10)
    # A client must send its request headers within this time, or the socket is closed.
    header_timeout_s: float = Field(default=10.0, gt=0, le=120)
    # ... and a POST's body within this time of its headers (408).
    body_timeout_s: float = Field(default=10.0, gt=0, le=300)
    # All request bodies being received or worked on at once, in bytes (503 beyond): each is
    # held, with what is parsed from it (~7x), for its whole call.
    max_body_bytes_in_flight: int = Field(default=50_000_000, ge=1024)

    # How a resource is checked before the rules read it: "fields" checks the fields they read
    # against FHIR R4 (fast); "full" also validates the whole resource with fhir.resources R4B.
    validation: Literal["fields", "full"] = "fields"
    # Threshold overrides, e.g. CDS_PARAMETERS='{"dental_lookback_days": 365}'.
    parameters: dict[str, Any] = Field(default_factory=dict)
    # Rules production may run without a current clinician review (cards/reviews.yaml), by id;
    # their cards keep the research-draft banner. Every other unreviewed rule stops start-up.
    allow_unreviewed: tuple[str, ...] = ()
    # Development only: honour the request extension that fixes the evaluation date (replay).
    allow_as_of_extension: bool = True

    @field_validator("metrics_address")
    @classmethod
    def _is_host_port(cls, value: str | None) -> str | None:
        if value is not None:
            host_port(value)
        return value

    @model_validator(mode="after")
    def _production_is_safe(self) -> Self:
        if self.mode != "production":
            return self
        problems = []
        if not self.auth_required:
            problems.append("CDS_AUTH_REQUIRED must be true")
        if not self.trusted_issuers:
            problems.append("CDS_TRUSTED_ISSUERS must name at least one issuer with its JWKS")
        if self.allow_as_of_extension:
            problems.append("CDS_ALLOW_AS_OF_EXTENSION must be false (the date is the server's)")
        if "*" in self.cors_origins:
            problems.append("CDS_CORS_ORIGINS must list origins, not '*'")
        secret = self.patient_key_secret.get_secret_value()
        if self.snooze_days and (
            secret == DEV_PATIENT_KEY_SECRET or len(secret) < MIN_PATIENT_KEY_SECRET
        ):
            problems.append(
                f"CDS_PATIENT_KEY_SECRET must be set, at least {MIN_PATIENT_KEY_SECRET} "
                "characters (it keys patients in snooze records)"
            )
        if not self.public_base_url:
            # Without it the JWT aud would be built from the Host header, which the caller sets.
            problems.append("CDS_PUBLIC_BASE_URL must be set (the JWT aud is checked against it)")
        bad = [a for a in self.jwt_algorithms if a == "none" or a.startswith("HS")]
        if bad:
            problems.append(f"CDS_JWT_ALGORITHMS must not include {bad}")
        if problems:
            raise ValueError("unsafe production configuration: " + "; ".join(problems))
        return self

    @property
    def docs_enabled(self) -> bool:
        return self.api_docs if self.api_docs is not None else self.mode == "development"

    def fetch_allowlist(self, issuer_servers: tuple[str, ...]) -> tuple[str, ...]:
        """The fhirServer URLs a call may make us fetch from.

        An issuer's own `fhir_servers` win. Without them, development falls back to the
        allowlist (loopback by default); production only to an allowlist that was set
        explicitly (CDS_FHIR_SERVER_ALLOWLIST) - otherwise that issuer's calls fetch nothing.
        """
        if issuer_servers:
            return issuer_servers
        if self.mode == "production" and "fhir_server_allowlist" not in self.model_fields_set:
            return ()
        return self.fhir_server_allowlist

    def summary(self) -> str:
        """The configuration in words, for `cds check` (no secrets are held here)."""
        data = self.model_dump(mode="json")
        return json.dumps(data, indent=2, sort_keys=True)
