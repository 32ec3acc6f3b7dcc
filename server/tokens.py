"""Issuing tokens the gateway accepts (for the demo and the tests; production tokens come from the IdP)."""

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
) -> str:
    """An HS256 JWT for ``sub`` with ``roles``, valid for ``ttl``."""
    issued = now or datetime.now(UTC)
    claims = {"sub": sub, "roles": [str(role) for role in roles], "iat": issued, "exp": issued + ttl}
    return jwt.encode(claims, secret, algorithm="HS256")
