"""CDS client JWTs: the matrix of good and bad tokens, the real Sandbox's tokens, and the API."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient

from cds.app import create_app
from cds.auth import JWTVerifier, request_url
from cds.errors import AuthFailed
from cds.services import Knowledge
from cds.settings import Settings, TrustedIssuer
from tests.conftest import SHARED, needs_shared

NOW = 1_800_000_000.0
ISS = "https://ehr.example.org"
AUD = "https://cds.example.org/cds-services/mbc-bone-patient-view"
JWKS_URL = "https://ehr.example.org/.well-known/jwks.json"
EC_KEY = ec.generate_private_key(ec.SECP384R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_EC = ec.generate_private_key(ec.SECP384R1())


def jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    algo = jwt.algorithms.ECAlgorithm if alg.startswith("ES") else jwt.algorithms.RSAAlgorithm
    data: dict[str, Any] = json.loads(algo.to_jwk(key.public_key()))
    return data | {"kid": kid, "alg": alg, "use": "sig"}


JWKS = {"keys": [jwk(EC_KEY, "ec-1", "ES384"), jwk(RSA_KEY, "rsa-1", "RS384")]}


def token(
    *,
    key: Any = EC_KEY,
    alg: str = "ES384",
    kid: str | None = "ec-1",
    typ: str = "JWT",
    jku: str | None = None,
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    payload = {"iss": ISS, "aud": AUD, "exp": NOW + 300, "iat": NOW, "jti": str(uuid.uuid4())}
    payload |= claims
    for name in drop:
        payload.pop(name, None)
    headers: dict[str, Any] = {"typ": typ}
    if kid is not None:
        headers["kid"] = kid
    if jku is not None:
        headers["jku"] = jku
    return jwt.encode(payload, key, algorithm=alg, headers=headers)


def settings(tmp_path: Path, **issuer: Any) -> Settings:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(JWKS))
    spec = {"iss": ISS, "jwks_file": path} | issuer
    return Settings(
        auth_required=True,
        trusted_issuers=(TrustedIssuer(**spec),),
        feedback_db=tmp_path / "fb.sqlite3",
    )


@pytest.fixture(name="verifier")
def _verifier(tmp_path: Path) -> JWTVerifier:
    return JWTVerifier(settings(tmp_path), httpx.AsyncClient(), clock=lambda: NOW)


async def verify(v: JWTVerifier, tok: str, aud: str = AUD) -> Any:
    return await v.verify(f"Bearer {tok}", aud)


@pytest.mark.anyio
class TestMatrix:
    async def test_es384_accepted(self, verifier: JWTVerifier) -> None:
        assert (await verify(verifier, token())).iss == ISS

    async def test_rs384_accepted(self, verifier: JWTVerifier) -> None:
        await verify(verifier, token(key=RSA_KEY, alg="RS384", kid="rsa-1"))

    async def test_epic_style_extra_claims_accepted(self, verifier: JWTVerifier) -> None:
        await verify(verifier, token(sub="cds-client-id", nbf=NOW - 300))

    async def test_aud_as_a_list(self, verifier: JWTVerifier) -> None:
        await verify(verifier, token(aud=[AUD, "https://other"]))

    @pytest.mark.parametrize(
        "bad",
        [
            pytest.param({"aud": "https://cds.example.org/cds-services"}, id="aud-other-url"),
            pytest.param({"iss": "https://evil.example"}, id="untrusted-iss"),
            pytest.param({"exp": NOW - 31}, id="expired-past-leeway"),
            pytest.param({"iat": NOW + 31}, id="issued-in-the-future"),
            pytest.param({"nbf": NOW + 31}, id="not-yet-valid"),
            pytest.param({"exp": NOW + 7200}, id="lifetime-over-an-hour"),
            pytest.param({"tenant": 5}, id="nothing-wrong-but-tenant-type"),
        ],
    )
    async def test_bad_claims_rejected(self, verifier: JWTVerifier, bad: dict[str, Any]) -> None:
        if "tenant" in bad:
            await verify(verifier, token(**bad))  # no tenant allowlist: tenant is not checked
            return
        with pytest.raises(AuthFailed):
            await verify(verifier, token(**bad))

    async def test_expiry_within_leeway_accepted(self, verifier: JWTVerifier) -> None:
        await verify(verifier, token(exp=NOW - 29))

    @pytest.mark.parametrize("claim", ["jti", "exp", "iat", "aud", "iss"])
    async def test_required_claims(self, verifier: JWTVerifier, claim: str) -> None:
        with pytest.raises(AuthFailed):
            await verify(verifier, token(drop=(claim,)))

    @pytest.mark.parametrize(
        "jti", ["a\x00b", "", "x" * 257, 12345], ids=["nul", "empty", "257-chars", "number"]
    )
    async def test_jti_must_be_a_short_string(self, verifier: JWTVerifier, jti: object) -> None:
        """Issue 28 item 12: a NUL in the jti made PostgreSQL fail (500); now a 401."""
        with pytest.raises(AuthFailed):  # the reason goes to the log, never to the caller
            await verify(verifier, token(jti=jti))

    async def test_replayed_jti_rejected(self, verifier: JWTVerifier) -> None:
        tok = token()
        await verify(verifier, tok)
        with pytest.raises(AuthFailed):
            await verify(verifier, tok)

    async def test_alg_none_rejected(self, verifier: JWTVerifier) -> None:
        unsigned = jwt.encode(
            {"iss": ISS, "aud": AUD, "exp": NOW + 60, "iat": NOW, "jti": "x"},
            "",
            algorithm="none",
            headers={"kid": "ec-1", "typ": "JWT"},
        )
        with pytest.raises(AuthFailed):
            await verify(verifier, unsigned)

    async def test_hmac_with_the_public_key_rejected(self, verifier: JWTVerifier) -> None:
        """Algorithm confusion: HS256 signed with the public key as the secret."""
        public = EC_KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        import base64
        import hashlib
        import hmac

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        header = b64(json.dumps({"alg": "HS256", "kid": "ec-1", "typ": "JWT"}).encode())
        body = b64(
            json.dumps({"iss": ISS, "aud": AUD, "exp": NOW + 60, "iat": NOW, "jti": "y"}).encode()
        )
        sig = b64(hmac.new(public, f"{header}.{body}".encode(), hashlib.sha256).digest())
        with pytest.raises(AuthFailed):
            await verify(verifier, f"{header}.{body}.{sig}")

    async def test_missing_kid_rejected(self, verifier: JWTVerifier) -> None:
        with pytest.raises(AuthFailed):
            await verify(verifier, token(kid=None))

    async def test_wrong_typ_rejected(self, verifier: JWTVerifier) -> None:
        with pytest.raises(AuthFailed):
            await verify(verifier, token(typ="at+jwt"))

    async def test_signature_by_another_key_rejected(self, verifier: JWTVerifier) -> None:
        with pytest.raises(AuthFailed):
            await verify(verifier, token(key=OTHER_EC))

    async def test_unknown_kid_rejected(self, verifier: JWTVerifier) -> None:
        with pytest.raises(AuthFailed):
            await verify(verifier, token(kid="nope"))

    async def test_jku_must_be_allowlisted(self, verifier: JWTVerifier) -> None:
        with pytest.raises(AuthFailed):
            await verify(verifier, token(jku="https://evil.example/jwks.json"))

    @pytest.mark.parametrize(
        "header", ["", "Basic abc", "Bearer", "Bearer not.a.jwt", "Bearer a.b"]
    )
    async def test_malformed_authorization(self, verifier: JWTVerifier, header: str) -> None:
        with pytest.raises(AuthFailed):
            await verifier.verify(header or None, AUD)

    async def test_tenant_allowlist(self, tmp_path: Path) -> None:
        v = JWTVerifier(settings(tmp_path, tenants=("t1",)), httpx.AsyncClient(), clock=lambda: NOW)
        await verify(v, token(tenant="t1"))
        with pytest.raises(AuthFailed):
            await verify(v, token(tenant="t2"))
        with pytest.raises(AuthFailed):
            await verify(v, token())


@pytest.mark.anyio
class TestRemoteJwks:
    def verifier(self, tmp_path: Path, clock: list[float]) -> JWTVerifier:
        s = Settings(
            auth_required=True,
            feedback_db=tmp_path / "f.sqlite3",
            trusted_issuers=(TrustedIssuer(iss=ISS, jwks_url=JWKS_URL, jku_allowlist=(JWKS_URL,)),),
        )
        return JWTVerifier(s, httpx.AsyncClient(), clock=lambda: clock[0])

    async def test_cached_and_refetched_on_unknown_kid_with_cooldown(self, tmp_path: Path) -> None:
        clock = [NOW]
        v = self.verifier(tmp_path, clock)
        with respx.mock() as mock:
            route = mock.get(JWKS_URL).respond(json={"keys": [jwk(EC_KEY, "ec-1", "ES384")]})
            await verify(v, token())
            await verify(v, token())
            assert route.call_count == 1  # cached
            clock[0] = NOW + 61
            with pytest.raises(AuthFailed):
                await verify(v, token(key=RSA_KEY, alg="RS384", kid="rsa-1"))
            assert route.call_count == 2  # unknown kid: refetched once
            with pytest.raises(AuthFailed):
                await verify(v, token(key=RSA_KEY, alg="RS384", kid="rsa-1"))
            assert route.call_count == 2  # within the cooldown: not again
            route.respond(json=JWKS)  # the client rotated its keys
            clock[0] = NOW + 122
            await verify(v, token(key=RSA_KEY, alg="RS384", kid="rsa-1"))
            assert route.call_count == 3

    async def test_jwks_unreachable(self, tmp_path: Path) -> None:
        v = self.verifier(tmp_path, [NOW])
        with respx.mock() as mock:
            mock.get(JWKS_URL).respond(status_code=500)
            with pytest.raises(AuthFailed):
                await verify(v, token())

    async def test_failed_fetch_is_not_retried_within_the_cooldown(self, tmp_path: Path) -> None:
        """Issue 10 item 5: unauthenticated callers cannot make us fetch a key set per call."""
        v = self.verifier(tmp_path, [NOW])
        with respx.mock() as mock:
            route = mock.get(JWKS_URL).respond(status_code=500)
            for _ in range(20):
                with pytest.raises(AuthFailed):
                    await verify(v, token())
            assert route.call_count == 1

    async def test_an_empty_key_set_is_a_401_not_a_500(self, tmp_path: Path) -> None:
        """Issue 10 item 5: {"keys": []} used to raise PyJWKSetError (a 500)."""
        v = self.verifier(tmp_path, [NOW])
        with respx.mock() as mock:
            mock.get(JWKS_URL).respond(json={"keys": []})
            with pytest.raises(AuthFailed):
                await verify(v, token())

    @pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
    async def test_non_finite_time_claims_rejected(self, tmp_path: Path, claim: str) -> None:
        """Issue 10 item 8: exp NaN compares false with everything, so it used to pass."""
        v = JWTVerifier(settings(tmp_path), httpx.AsyncClient(), clock=lambda: NOW)
        nan: dict[str, Any] = {claim: float("nan")}
        tok = token(**nan)
        with pytest.raises(AuthFailed):
            await verify(v, tok)

    async def test_jti_cache_expires_in_order(self, tmp_path: Path) -> None:
        """Issue 10 item 12: expired jtis leave the cache without a full scan per call."""
        clock = [NOW]
        v = JWTVerifier(settings(tmp_path), httpx.AsyncClient(), clock=lambda: clock[0])
        for _ in range(50):
            await verify(v, token())
        assert len(v._seen_jti) == 50
        clock[0] = NOW + 400  # past every exp + leeway
        await verify(v, token(exp=NOW + 700, iat=NOW + 399))
        assert len(v._seen_jti) == 1


SANDBOX = SHARED / "cds-hooks" / "examples" / "captured-from-real-sandbox"


@pytest.mark.anyio
@needs_shared(SANDBOX)
class TestRealSandboxTokens:
    def verifier(self, tmp_path: Path, claims: dict[str, Any]) -> JWTVerifier:
        s = Settings(
            auth_required=True,
            feedback_db=tmp_path / "f.sqlite3",
            trusted_issuers=(
                TrustedIssuer(
                    iss="https://sandbox.cds-hooks.org",
                    jwks_file=SANDBOX / "sandbox-jwks.json",
                    jku_allowlist=("https://sandbox.cds-hooks.org/.well-known/jwks.json",),
                ),
            ),
        )
        return JWTVerifier(s, httpx.AsyncClient(), clock=lambda: claims["iat"] + 10)

    @pytest.mark.parametrize("name", ["patient-view.request.json", "order-select.request.json"])
    async def test_captured_tokens_verify_with_a_frozen_clock(
        self, tmp_path: Path, name: str
    ) -> None:
        captured = json.loads((SANDBOX / name).read_text())
        claims = jwt.decode(captured["auth"][7:], options={"verify_signature": False})
        v = self.verifier(tmp_path, claims)
        identity = await v.verify(captured["auth"], claims["aud"])
        assert identity.iss == "https://sandbox.cds-hooks.org"

    async def test_tampered_captured_token_fails(self, tmp_path: Path) -> None:
        captured = json.loads((SANDBOX / "patient-view.request.json").read_text())
        claims = jwt.decode(captured["auth"][7:], options={"verify_signature": False})
        v = self.verifier(tmp_path, claims)
        tampered = captured["auth"][:-4] + (
            "AAAA" if not captured["auth"].endswith("AAAA") else "BBBB"
        )
        with pytest.raises(AuthFailed):
            await v.verify(tampered, claims["aud"])

    async def test_captured_token_replay_is_refused(self, tmp_path: Path) -> None:
        captured = json.loads((SANDBOX / "patient-view.request.json").read_text())
        claims = jwt.decode(captured["auth"][7:], options={"verify_signature": False})
        v = self.verifier(tmp_path, claims)
        await v.verify(captured["auth"], claims["aud"])
        with pytest.raises(AuthFailed):
            await v.verify(captured["auth"], claims["aud"])


class TestApi:
    @pytest.fixture(name="client")
    def _client(self, tmp_path: Path, knowledge: Knowledge) -> Iterator[TestClient]:
        s = settings(tmp_path).model_copy(update={"public_base_url": "https://cds.example.org"})
        app = create_app(
            s, knowledge=knowledge, http_client=httpx.AsyncClient(), verifier_clock=lambda: NOW
        )
        with TestClient(app) as client:
            yield client

    def test_discovery_service_and_feedback_all_require_a_token(self, client: TestClient) -> None:
        for method, path in (
            ("GET", "/cds-services"),
            ("POST", "/cds-services/mbc-bone-patient-view"),
            ("POST", "/cds-services/mbc-bone-patient-view/feedback"),
        ):
            r = client.request(method, path, json={})
            assert r.status_code == 401
            assert r.headers["www-authenticate"] == "Bearer"
            assert r.json()["issue"][0]["diagnostics"] == "authentication failed"  # no details

    def test_audience_is_the_exact_url_called(self, client: TestClient) -> None:
        ok = token(aud="https://cds.example.org/cds-services")
        assert (
            client.get("/cds-services", headers={"Authorization": f"Bearer {ok}"}).status_code
            == 200
        )
        feedback_aud = token()  # the service URL, not .../feedback
        r = client.post(
            "/cds-services/mbc-bone-patient-view/feedback",
            json={"feedback": []},
            headers={"Authorization": f"Bearer {feedback_aud}"},
        )
        assert r.status_code == 401

    def test_valid_token_reaches_the_service(self, client: TestClient) -> None:
        r = client.post(
            "/cds-services/mbc-bone-patient-view",
            json={"hook": "x"},
            headers={"Authorization": f"Bearer {token()}"},
        )
        assert r.status_code == 400  # authenticated; then the body is checked


def test_forwarded_headers_only_when_trusted() -> None:
    headers = {"x-forwarded-proto": "https", "x-forwarded-host": "cds.example.org"}
    plain = Settings()
    trusting = Settings(trust_forwarded_headers=True)
    assert request_url("http", "10.0.0.5:8080", "/cds-services", headers, plain) == (
        "http://10.0.0.5:8080/cds-services"
    )
    assert request_url("http", "10.0.0.5:8080", "/cds-services", headers, trusting) == (
        "https://cds.example.org/cds-services"
    )
    rfc7239 = {"forwarded": 'for=1.2.3.4;proto=https;host="cds.example.org"'}
    assert request_url("http", "x", "/p", rfc7239, trusting) == "https://cds.example.org/p"


def test_time_is_real_by_default(tmp_path: Path) -> None:
    v = JWTVerifier(settings(tmp_path), httpx.AsyncClient())
    assert abs(v.clock() - time.time()) < 5
