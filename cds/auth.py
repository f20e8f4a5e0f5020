"""CDS client authentication: the CDS Hooks JWT (spec §Security; best-practices §JWT).

Checks, in order: a Bearer token; header alg on our allowlist (never `none` or HMAC, whatever the
token says), `kid` present, `typ` JWT; `iss` a trusted issuer; `jku`, if sent, on that issuer's
allowlist; the signature against the issuer's JWKS (cached; refetched on an unknown kid, with a
cooldown); `aud` equal to the exact URL called; `exp`, `iat`, `nbf` within a small leeway; `jti`
not seen before; `tenant` on the allowlist when one is set. Any failure is a 401 with no detail;
the reason is logged without the token.
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import jwt
from jwt import PyJWK, PyJWKSet

from cds import metrics
from cds.errors import AuthFailed
from cds.settings import Settings, TrustedIssuer

log = logging.getLogger(__name__)

JWKS_REFETCH_COOLDOWN_S = 60.0
JWKS_TTL_S = 3600.0
MAX_JWKS_BYTES = 256 * 1024
MAX_TOKEN_AGE_S = 3600  # best practice: JWTs live no longer than about an hour
MAX_JTI_CHARS = 256  # a UUID is 36; room for any issuer's scheme, never a payload


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    iss: str
    tenant: str | None
    fhir_servers: tuple[str, ...]


class _Reject(Exception):
    """Internal: why a token was refused (logged, never returned to the caller), and its kind:
    one of a fixed few words, the label of the rejection metric."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(slots=True)
class _CachedKeys:
    keys: dict[str, PyJWK]
    fetched_at: float


class JWTVerifier:
    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        clock: Callable[[], float] = time.time,
        replay: Callable[[str, str, float, float], bool] | None = None,
    ) -> None:
        self.settings = settings
        # Shared replay cache (the store: every worker and instance); None keeps it in memory.
        self.replay = replay
        self.client = client
        self.clock = clock
        self.issuers: Mapping[str, TrustedIssuer] = {i.iss: i for i in settings.trusted_issuers}
        self._keys: dict[str, _CachedKeys] = {}
        self._last_fetch: dict[str, float] = {}
        # jti replay cache: a set for lookups, a heap ordered by expiry for cheap eviction.
        self._seen_jti: set[tuple[str, str]] = set()
        self._jti_expiry: list[tuple[float, tuple[str, str]]] = []
        for issuer in settings.trusted_issuers:
            if issuer.jwks_file is not None:
                self._keys[f"file:{issuer.jwks_file}"] = _CachedKeys(
                    keys=_parse_jwks(json.loads(issuer.jwks_file.read_text(encoding="utf-8"))),
                    fetched_at=float("inf"),
                )

    async def verify(self, authorization: str | None, audience: str) -> ClientIdentity:
        try:
            return await self._verify(authorization, audience)
        except _Reject as exc:
            log.warning("client JWT rejected: %s", exc)
            metrics.JWT_REJECTIONS.labels(exc.kind).inc()
            raise AuthFailed("authentication failed") from None

    async def _verify(self, authorization: str | None, audience: str) -> ClientIdentity:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise _Reject("no Bearer token", "missing")
        token = authorization[7:].strip()
        try:
            # Header and claims from one parse (PyJWT checks each base64url character in
            # Python: ~30 µs a parse; the verified decode below is the other one).
            unverified_token = jwt.decode_complete(token, options={"verify_signature": False})
            header: dict[str, Any] = unverified_token["header"]
            unverified: dict[str, Any] = unverified_token["payload"]
        except jwt.PyJWTError as exc:
            raise _Reject(f"malformed token ({type(exc).__name__})", "malformed") from None
        alg = header.get("alg")
        if alg not in self.settings.jwt_algorithms or alg == "none" or str(alg).startswith("HS"):
            raise _Reject(f"algorithm {alg!r} not allowed", "algorithm")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _Reject("no kid in the header", "header")
        if str(header.get("typ", "")).upper() != "JWT":
            raise _Reject("typ is not JWT", "header")
        issuer = self.issuers.get(str(unverified.get("iss")))
        if issuer is None:
            raise _Reject(f"issuer {unverified.get('iss')!r} is not trusted", "issuer")
        jku = header.get("jku")
        if jku is not None and jku not in issuer.jku_allowlist:
            raise _Reject(f"jku {jku!r} is not on the allowlist of {issuer.iss}", "jku")
        key = await self._key(issuer, kid, jku)
        # Off the event loop: an ES384 signature check takes ~0.5 ms (cryptography releases
        # the GIL meanwhile) and the shared replay cache is a store write; one hop for both.
        claims, until, now = await anyio.to_thread.run_sync(
            self._check_signed, token, key, alg, audience, issuer
        )
        if self.replay is None:  # the in-process cache: kept on the event loop, unlocked
            self._remember_jti(issuer.iss, str(claims["jti"]), until, now)
        tenant = claims.get("tenant")
        return ClientIdentity(
            iss=issuer.iss,
            tenant=tenant if isinstance(tenant, str) else None,
            fhir_servers=issuer.fhir_servers,
        )

    def _check_signed(
        self, token: str, key: PyJWK, alg: str, audience: str, issuer: TrustedIssuer
    ) -> tuple[dict[str, Any], float, float]:
        """The signature, the claims and, in the shared cache, the jti (in a worker thread):
        the claims, until when the jti is remembered, and the time it was checked."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=audience,
                issuer=issuer.iss,
                options={
                    "require": ["iss", "aud", "exp", "iat", "jti"],
                    # Time claims are checked below against our (injectable) clock.
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidAudienceError:
            raise _Reject(f"aud does not match {audience}", "audience") from None
        except jwt.PyJWTError as exc:
            raise _Reject(f"invalid token ({type(exc).__name__})", "signature") from None
        now = self.clock()
        leeway = self.settings.jwt_leeway_s
        exp, iat = _number(claims, "exp"), _number(claims, "iat")
        if exp < now - leeway:
            raise _Reject("token expired", "expired")
        if iat > now + leeway:
            raise _Reject("token issued in the future", "time")
        if exp - iat > MAX_TOKEN_AGE_S + leeway:
            raise _Reject("token lifetime exceeds an hour", "time")
        if "nbf" in claims and _number(claims, "nbf") > now + leeway:
            raise _Reject("token not yet valid (nbf)", "time")
        if issuer.tenants and claims.get("tenant") not in issuer.tenants:
            raise _Reject("tenant is not allowed", "tenant")
        jti = claims["jti"]
        if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_CHARS or "\x00" in jti:
            # A NUL made PostgreSQL fail (a 500); a megabyte jti would fill the replay cache.
            raise _Reject(f"jti must be a string of 1 to {MAX_JTI_CHARS} characters, no NUL", "jti")
        if self.replay is not None and not self.replay(
            issuer.iss, str(claims["jti"]), exp + leeway, now
        ):
            raise _Reject("jti replayed", "replay")
        return claims, exp + leeway, now

    def _remember_jti(self, iss: str, jti: str, until: float, now: float) -> None:
        while self._jti_expiry and self._jti_expiry[0][0] < now:
            _, expired = heapq.heappop(self._jti_expiry)
            self._seen_jti.discard(expired)
        if (iss, jti) in self._seen_jti:
            raise _Reject("jti replayed", "replay")
        self._seen_jti.add((iss, jti))
        heapq.heappush(self._jti_expiry, (until, (iss, jti)))

    async def _key(self, issuer: TrustedIssuer, kid: str, jku: str | None) -> PyJWK:
        # A static key set wins: an allowlisted jku is then only a hint, never fetched.
        if issuer.jwks_file is not None:
            static = self._keys[f"file:{issuer.jwks_file}"]
            if kid in static.keys:
                return static.keys[kid]
            raise _Reject(f"unknown kid {kid!r}", "key")
        url = jku or issuer.jwks_url
        if url is None:
            raise _Reject("no JWKS for this issuer", "key")
        now = self.clock()
        cached: _CachedKeys | None = self._keys.get(url)
        if cached is not None and kid in cached.keys and now - cached.fetched_at < JWKS_TTL_S:
            return cached.keys[kid]
        # One fetch per key set per cooldown, successful or not: unauthenticated callers cannot
        # make us fetch (a failed or empty fetch is cached as such until the cooldown ends).
        if now - self._last_fetch.get(url, float("-inf")) < JWKS_REFETCH_COOLDOWN_S:
            if cached is not None and kid in cached.keys:
                return cached.keys[kid]
            raise _Reject(f"unknown kid {kid!r} (key set {url} refetched recently)", "key")
        self._last_fetch[url] = now
        try:
            response = await self.client.get(url, timeout=self.settings.fhir_timeout_s)
            response.raise_for_status()
            if len(response.content) > MAX_JWKS_BYTES:
                raise ValueError("key set too large")
            cached = _CachedKeys(keys=_parse_jwks(response.json()), fetched_at=now)
            self._keys[url] = cached
        except (httpx.HTTPError, ValueError) as exc:
            raise _Reject(
                f"JWKS {url} could not be fetched ({type(exc).__name__})", "key"
            ) from None
        if cached is not None and kid in cached.keys:
            return cached.keys[kid]
        raise _Reject(f"unknown kid {kid!r}", "key")


def _number(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Reject(f"{name} is not a number", "time")
    if not math.isfinite(value):
        raise _Reject(
            f"{name} is not a finite number", "time"
        )  # NaN compares false with everything
    return float(value)


def _parse_jwks(data: object) -> dict[str, PyJWK]:
    """The usable keys of a JWKS; an empty or unusable set is no keys (then 401), not a 500."""
    if not isinstance(data, dict):
        raise ValueError("a JWKS is a JSON object")
    try:
        found = PyJWKSet.from_dict(data).keys
    except jwt.PyJWTError:
        return {}
    return {k.key_id: k for k in found if k.key_id}


def request_url(
    scheme: str, host: str, path: str, headers: Mapping[str, str], settings: Settings
) -> str:
    """The URL the client called, for the aud check: configured base, proxy headers, or direct."""
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/") + path
    if settings.trust_forwarded_headers:
        forwarded = headers.get("forwarded")
        if forwarded:
            first = forwarded.split(",")[0]
            parts = dict(p.strip().split("=", 1) for p in first.split(";") if "=" in p)
            scheme = parts.get("proto", scheme).strip('"')
            host = parts.get("host", host).strip('"')
        else:
            scheme = headers.get("x-forwarded-proto", scheme).split(",")[0].strip()
            host = headers.get("x-forwarded-host", host).split(",")[0].strip()
    return f"{scheme}://{host}{path}"
