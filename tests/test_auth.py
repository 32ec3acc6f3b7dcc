"""Authentication: HS256 tokens and RS256/ES256 tokens from a JWKS served on loopback; what is refused
and how (401 before GraphQL runs, with ``WWW-Authenticate``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.api_client import SECRET, open_gateway
from usage_gateway.devtools.local_services import serving
from usage_gateway.resolvers.viewer import Role
from usage_gateway.server.auth import InvalidToken, KeySourceUnavailable, TokenVerifier
from usage_gateway.server.config import Settings

HOUR = timedelta(hours=1)


def claims(
    sub: str = "alice", roles: Any = ("admin",), *, exp: timedelta = HOUR, **extra: Any
) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "sub": sub,
        "roles": list(roles) if isinstance(roles, tuple) else roles,
        "exp": now + exp,
        **extra,
    }


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict[str, Any], payload: dict[str, Any], sign: Any = None) -> str:
    """A token PyJWT would not make: any header, signed by ``sign(signing_input)`` (or unsigned)."""
    body = {k: int(v.timestamp()) if isinstance(v, datetime) else v for k, v in payload.items()}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}"
    signature = b64(sign(signing_input.encode())) if sign else ""
    return f"{signing_input}.{signature}"


# --- A JWKS on loopback ---------------------------------------------------------------------------------


@dataclass
class Jwks:
    url: str
    keys: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    up: bool = True


@dataclass(frozen=True)
class KeyPair:
    kid: str
    private: Any
    jwk: dict[str, Any]
    pem: bytes

    def sign(self, payload: dict[str, Any], algorithm: str, kid: str | None = None) -> str:
        return jwt.encode(payload, self.private, algorithm=algorithm, headers={"kid": kid or self.kid})


def rsa_pair(kid: str) -> KeyPair:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**RSAAlgorithm.to_jwk(private.public_key(), as_dict=True), "kid": kid, "use": "sig"}
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(kid, private, jwk, pem)


def ec_pair(kid: str) -> KeyPair:
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = {**ECAlgorithm.to_jwk(private.public_key(), as_dict=True), "kid": kid, "use": "sig"}
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(kid, private, jwk, pem)


@pytest.fixture(scope="module")
def keys() -> dict[str, KeyPair]:
    return {
        "rsa1": rsa_pair("rsa1"),
        "rsa2": rsa_pair("rsa2"),
        "ec1": ec_pair("ec1"),
        "other": rsa_pair("rsa1"),
    }


@pytest.fixture(scope="module")
def jwks_server() -> Iterator[Jwks]:
    state = Jwks(url="")

    async def document(_: Request) -> Response:
        state.requests += 1
        if not state.up:
            return JSONResponse({"error": "down"}, status_code=503)
        return JSONResponse({"keys": state.keys})

    with serving(Starlette(routes=[Route("/.well-known/jwks.json", document)])) as base:
        state.url = f"{base}/.well-known/jwks.json"
        yield state


@pytest.fixture
def jwks(jwks_server: Jwks, keys: dict[str, KeyPair]) -> Jwks:
    jwks_server.keys = [keys["rsa1"].jwk, keys["ec1"].jwk]
    jwks_server.requests = 0
    jwks_server.up = True
    return jwks_server


def verifier(jwks: Jwks | None = None, **settings: Any) -> TokenVerifier:
    if jwks is not None:
        settings = {"jwt_jwks_url": jwks.url, "jwt_jwks_refresh_seconds": 0, **settings}
    return TokenVerifier(Settings(**settings))


async def refused(check: TokenVerifier, token: str) -> str:
    with pytest.raises(InvalidToken) as caught:
        await check.viewer(token)
    return caught.value.message


# --- JWKS -----------------------------------------------------------------------------------------------


async def test_rs256_and_es256_tokens_from_the_jwks_are_accepted(
    jwks: Jwks, keys: dict[str, KeyPair]
) -> None:
    check = verifier(jwks)
    viewer = await check.viewer(keys["rsa1"].sign(claims("alice", ("user",)), "RS256"))
    assert (viewer.id, viewer.roles) == ("alice", frozenset({Role.USER}))
    viewer = await check.viewer(keys["ec1"].sign(claims("root", ("admin",)), "ES256"))
    assert (viewer.id, viewer.roles) == ("root", frozenset({Role.ADMIN}))
    assert jwks.requests == 1  # the set is cached


async def test_a_rotated_key_is_picked_up_by_its_new_kid(jwks: Jwks, keys: dict[str, KeyPair]) -> None:
    check = verifier(jwks)
    assert (await check.viewer(keys["rsa1"].sign(claims(), "RS256"))).id == "alice"
    jwks.keys = [keys["rsa2"].jwk]  # the provider rotates: rsa1 retired, rsa2 new
    assert (await check.viewer(keys["rsa2"].sign(claims("bob"), "RS256"))).id == "bob"
    assert jwks.requests == 2
    assert "rsa1" in await refused(check, keys["rsa1"].sign(claims(), "RS256"))


async def test_unknown_kids_refetch_at_most_once_per_refresh_period(
    jwks: Jwks, keys: dict[str, KeyPair]
) -> None:
    check = verifier(jwks, jwt_jwks_refresh_seconds=60)
    await check.viewer(keys["rsa1"].sign(claims(), "RS256"))
    for _ in range(20):
        await refused(check, keys["rsa1"].sign(claims(), "RS256", kid=uuid.uuid4().hex))
    assert jwks.requests == 1


async def test_alg_none_is_refused(jwks: Jwks) -> None:
    for check in (verifier(jwks), verifier(jwt_secret=SECRET), verifier(jwks, jwt_secret=SECRET)):
        for alg in ("none", "None", "NONE"):
            token = handmade({"alg": alg, "typ": "JWT", "kid": "rsa1"}, claims())
            assert "not accepted" in await refused(check, token)


async def test_hs256_signed_with_the_public_key_is_refused(jwks: Jwks, keys: dict[str, KeyPair]) -> None:
    public = keys["rsa1"]
    for secret in (public.pem, json.dumps(public.jwk).encode(), public.jwk["n"].encode()):

        def sign(data: bytes, secret: bytes = secret) -> bytes:
            return hmac.new(secret, data, hashlib.sha256).digest()

        token = handmade({"alg": "HS256", "typ": "JWT", "kid": "rsa1"}, claims(), sign)
        assert "not accepted" in await refused(verifier(jwks), token)
        # With a secret configured too, HS256 is checked against that secret only.
        assert "Signature" in await refused(verifier(jwks, jwt_secret=SECRET), token)


async def test_a_known_kid_signed_by_another_key_is_refused(jwks: Jwks, keys: dict[str, KeyPair]) -> None:
    forged = keys["other"].sign(claims(), "RS256")  # same kid "rsa1", another private key
    assert "Signature" in await refused(verifier(jwks), forged)


async def test_each_key_verifies_only_its_own_algorithm(jwks: Jwks, keys: dict[str, KeyPair]) -> None:
    check = verifier(jwks)
    rsa_as_ps256 = jwt.encode(claims(), keys["rsa1"].private, algorithm="PS256", headers={"kid": "rsa1"})
    assert "not accepted" in await refused(check, rsa_as_ps256)
    rsa_as_rs512 = jwt.encode(claims(), keys["rsa1"].private, algorithm="RS512", headers={"kid": "rsa1"})
    assert "not accepted" in await refused(check, rsa_as_rs512)
    ec_kid_with_rs256 = keys["rsa1"].sign(claims(), "RS256", kid="ec1")
    assert "verifies ES256" in await refused(check, ec_kid_with_rs256)


async def test_symmetric_keys_in_a_jwks_are_ignored(jwks: Jwks) -> None:
    shared = b"a-shared-secret-that-someone-put-in-the-jwks"
    jwks.keys = [*jwks.keys, {"kty": "oct", "k": b64(shared), "kid": "sym", "alg": "HS256"}]
    token = jwt.encode(claims(), shared, algorithm="HS256", headers={"kid": "sym"})
    assert "not accepted" in await refused(verifier(jwks), token)
    forged = handmade({"alg": "RS256", "kid": "sym"}, claims(), lambda data: b"x")
    assert "sym" in await refused(verifier(jwks), forged)


async def test_a_jwks_that_is_down_is_503_until_it_answers(jwks: Jwks, keys: dict[str, KeyPair]) -> None:
    jwks.up = False
    check = verifier(jwks)
    token = keys["rsa1"].sign(claims(), "RS256")
    with pytest.raises(KeySourceUnavailable):
        await check.viewer(token)
    jwks.up = True
    assert (await check.viewer(token)).id == "alice"
    jwks.up = False  # down again: the keys already known keep working
    assert (await check.viewer(keys["ec1"].sign(claims("bob"), "ES256"))).id == "bob"


# --- Claims ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claim", "seconds", "accepted"),
    [
        ("exp", -10, True),  # within the 30 s leeway
        ("exp", -90, False),
        ("nbf", 10, True),
        ("nbf", 90, False),
        ("iat", 7200, False),  # issued in the future
        ("exp", None, False),  # no exp
        ("sub", None, False),  # no sub
    ],
)
async def test_exp_and_nbf_are_enforced_with_a_small_leeway(
    claim: str, seconds: int | None, accepted: bool
) -> None:
    # Built when the test runs (not when it is collected), so the clock is the verifier's.
    payload = claims()
    if seconds is None:
        del payload[claim]
    else:
        payload[claim] = datetime.now(UTC) + timedelta(seconds=seconds)
    check = verifier(jwt_secret=SECRET)
    token = jwt.encode(payload, SECRET, algorithm="HS256")
    if accepted:
        assert (await check.viewer(token)).id == "alice"
    else:
        await refused(check, token)


async def test_audience_and_issuer_are_checked_when_configured() -> None:
    check = verifier(jwt_secret=SECRET, jwt_audience="usage-gateway", jwt_issuer="https://idp.example")
    good = claims(aud="usage-gateway", iss="https://idp.example")
    assert (await check.viewer(jwt.encode(good, SECRET, algorithm="HS256"))).id == "alice"
    for bad in (
        claims(iss="https://idp.example"),
        claims(aud="another-service", iss="https://idp.example"),
        claims(aud="usage-gateway"),
        claims(aud="usage-gateway", iss="https://evil.example"),
    ):
        await refused(check, jwt.encode(bad, SECRET, algorithm="HS256"))


@pytest.mark.parametrize(
    ("sub", "roles", "expected"),
    [
        ("alice", ["user", "superuser"], {Role.USER}),  # unknown roles are ignored
        ("alice", ["adminReadonly", "user"], {Role.ADMIN_READONLY, Role.USER}),
        ("alice", ["superuser"], None),  # no role we know: not someone this gateway serves
        ("alice", [], None),
        ("alice", "admin", None),  # a string, not a list
        ("alice", [["admin"]], None),
        ("unattributed", ["user"], None),  # pseudo-users are not people
        ("litellm:someone", ["user"], None),
        ("", ["admin"], None),
        (42, ["admin"], None),
    ],
)
async def test_sub_and_roles(sub: Any, roles: Any, expected: set[Role] | None) -> None:
    check = verifier(jwt_secret=SECRET)
    payload = {"sub": sub, "roles": roles, "exp": datetime.now(UTC) + HOUR}
    token = handmade(
        {"alg": "HS256", "typ": "JWT"}, payload, lambda d: hmac.digest(SECRET.encode(), d, "sha256")
    )
    if expected is None:
        await refused(check, token)
    else:
        assert (await check.viewer(token)).roles == expected


# --- Over HTTP ------------------------------------------------------------------------------------------


async def test_the_app_answers_401_with_a_challenge_before_graphql_runs(database_url: str) -> None:
    async with open_gateway(database_url) as gw:
        missing = await gw.client.post("/graphql", json={"query": "{ viewer { id } }"})
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert missing.json() == {
            "errors": [{"message": "a bearer token is required", "extensions": {"code": "UNAUTHENTICATED"}}]
        }
        for token in ("x" * 10_000, jwt.encode(claims(), "wrong-" + SECRET, algorithm="HS256")):
            invalid = await gw.client.post(
                "/graphql", json={"query": "{ viewer { id } }"}, headers={"Authorization": f"Bearer {token}"}
            )
            assert invalid.status_code == 401
            assert invalid.headers["www-authenticate"] == 'Bearer error="invalid_token"'
            assert invalid.json()["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
            assert token not in invalid.text


async def test_the_app_takes_jwks_tokens_and_is_503_without_keys(
    database_url: str, jwks: Jwks, keys: dict[str, KeyPair]
) -> None:
    async with open_gateway(database_url, jwt_secret=None, jwt_jwks_url=jwks.url) as gw:
        token = keys["ec1"].sign(claims("auditor", ("adminReadonly",)), "ES256")
        data = await gw.data("{ viewer { id roles } }", token=token)
        assert data == {"viewer": {"id": "auditor", "roles": ["ADMIN_READONLY"]}}
        hs256 = jwt.encode(claims(), SECRET, algorithm="HS256")
        assert (await gw.post("{ viewer { id } }", token=hs256)).status_code == 401
    jwks.up = False
    async with open_gateway(database_url, jwt_secret=None, jwt_jwks_url=jwks.url + "?fresh") as gw:
        response = await gw.post("{ viewer { id } }", token=token)
        assert response.status_code == 503
        assert response.json()["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
