"""Issuing tokens the gateway accepts: for the demo, the tests and ``usage-gateway token`` (teams without
an identity provider)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import jwt

from usage_gateway.resolvers.viewer import Role


def issue_token(
    secret: str,
    sub: str,
    roles: Iterable[Role | str],
    ttl: timedelta = timedelta(hours=12),
    *,
    now: datetime | None = None,
    audience: str | None = None,
    issuer: str | None = None,
) -> str:
    """An HS256 JWT for ``sub`` with ``roles``, valid for ``ttl``; with ``aud``/``iss`` when given (the
    gateway requires them when JWT_AUDIENCE/JWT_ISSUER are set)."""
    issued = now or datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": sub,
        "roles": [str(r) for r in roles],
        "iat": issued,
        "exp": issued + ttl,
    }
    if audience is not None:
        claims["aud"] = audience
    if issuer is not None:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm="HS256")
