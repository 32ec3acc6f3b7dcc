"""Who is calling: ``Authorization: Bearer <JWT>`` becomes a :class:`Viewer`.

The one seam for authentication: the GraphQL view and the download route call :func:`authenticate`
before anything else runs and answer 401 (with :func:`challenge`) when it raises.

Tokens: HS256 signed with ``JWT_SECRET``, or RS256/ES256 signed by a key of ``JWT_JWKS_URL``; each
algorithm is pinned to its key source (``none`` and anything else are refused, and an HMAC token is never
checked against a public key). ``exp`` is required, ``exp``/``nbf``/``iat`` are checked with
``JWT_LEEWAY_SECONDS`` of slack, ``aud``/``iss`` when configured. Claims: ``sub``, a user id (not a
pseudo-user), and ``roles``, a list whose known values are ``admin``, ``adminReadonly`` and ``user``;
unknown roles are ignored, and a token with no known role is refused like an invalid one (401): it does
not identify anyone this gateway serves.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jwt
import structlog
from starlette.requests import Request

from usage_gateway.datasources.directory.lookups import is_pseudo_user
from usage_gateway.errors import Unauthenticated
from usage_gateway.resolvers.viewer import Role, Viewer
from usage_gateway.server.config import Settings
from usage_gateway.server.jwks import JwksKeys, KeysUnavailable, UnknownKey

__all__ = [
    "InvalidToken",
    "KeySourceUnavailable",
    "Role",
    "TokenVerifier",
    "Viewer",
    "authenticate",
    "challenge",
    "verifier_for",
]

log = structlog.get_logger("usage_gateway.auth")

HMAC_ALGORITHM = "HS256"
_ROLES = {role.value: role for role in Role}
_MAX_TOKEN_LENGTH = 8192


class InvalidToken(Unauthenticated):
    """A token was sent but does not authenticate anyone (RFC 6750 ``invalid_token``)."""


class KeySourceUnavailable(Unauthenticated):
    """The JWKS could not be fetched, so no RS256/ES256 token can be checked right now."""


def challenge(exc: Unauthenticated) -> dict[str, str]:
    """The ``WWW-Authenticate`` header of a 401: an error code only when a token was sent (RFC 6750 §3)."""
    if isinstance(exc, InvalidToken):
        return {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    return {"WWW-Authenticate": "Bearer"}


def _viewer(claims: dict[str, Any]) -> Viewer:
    subject, roles = claims["sub"], claims.get("roles")
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 256 or is_pseudo_user(subject):
        raise InvalidToken("invalid token: `sub` must be a user id")
    if not isinstance(roles, list):
        raise InvalidToken("invalid token: `roles` must be a list")
    known = frozenset(_ROLES[role] for role in roles if isinstance(role, str) and role in _ROLES)
    if not known:
        raise InvalidToken(f"invalid token: `roles` names none of {', '.join(_ROLES)}")
    return Viewer(subject, known)


class TokenVerifier:
    """Checks tokens against the keys ``settings`` configure (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self._secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self._leeway = settings.jwt_leeway_seconds
        self.jwks: JwksKeys | None = None
        if settings.jwt_jwks_url:
            self.jwks = JwksKeys(
                settings.jwt_jwks_url,
                cache_seconds=settings.jwt_jwks_cache_seconds,
                refresh_seconds=settings.jwt_jwks_refresh_seconds,
                timeout_seconds=settings.jwt_jwks_timeout_seconds,
            )

    @property
    def configured(self) -> bool:
        return self._secret is not None or self.jwks is not None

    async def viewer(self, token: str) -> Viewer:
        """The viewer ``token`` names; :class:`InvalidToken` if it is not valid here."""
        if not self.configured:
            raise InvalidToken("authentication is not configured on this gateway")
        if len(token) > _MAX_TOKEN_LENGTH:
            raise InvalidToken("invalid token: too long")
        try:
            header = jwt.get_unverified_header(token)
            key, algorithm = await self._key(header)
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"invalid token: {exc}") from None
        return _viewer(claims)

    async def _key(self, header: dict[str, Any]) -> tuple[Any, str]:
        algorithm = header.get("alg")
        if algorithm == HMAC_ALGORITHM and self._secret is not None:
            return self._secret, HMAC_ALGORITHM
        if algorithm in ("RS256", "ES256") and self.jwks is not None:
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid:
                raise InvalidToken("invalid token: no `kid` names its signing key")
            try:
                jwk, pinned = await self.jwks.key(kid)
            except UnknownKey as exc:
                raise InvalidToken(f"invalid token: {exc}") from None
            except KeysUnavailable as exc:
                raise KeySourceUnavailable(str(exc)) from None
            if pinned != algorithm:
                raise InvalidToken(f"invalid token: key {kid!r} verifies {pinned}, not {algorithm}")
            return jwk.key, pinned
        raise InvalidToken(f"invalid token: algorithm {str(algorithm)[:16]!r} is not accepted here")


@lru_cache(maxsize=16)
def verifier_for(settings: Settings) -> TokenVerifier:
    """One verifier (and so one JWKS cache) per configuration."""
    return TokenVerifier(settings)


async def authenticate(request: Request, settings: Settings) -> Viewer:
    """The viewer of a request; :class:`~usage_gateway.errors.Unauthenticated` without a valid bearer
    token."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("a bearer token is required")
    return await verifier_for(settings).viewer(token.strip())
