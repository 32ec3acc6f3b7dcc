"""Who is calling: ``Authorization: Bearer <JWT>`` (HS256, ``JWT_SECRET``) becomes a :class:`Viewer`.

The one seam for authentication: the GraphQL view calls :func:`authenticate` before any GraphQL runs
and answers 401 when it raises. Claims: ``sub`` (the user id), ``roles`` (a non-empty subset of
``admin``, ``adminReadonly``, ``user``), ``exp`` (required and enforced).
"""

from __future__ import annotations

from typing import Any

import jwt
from starlette.requests import Request

from datasources.errors import Unauthenticated
from resolvers.viewer import Role, Viewer
from server.config import Settings

__all__ = ["Role", "Viewer", "authenticate", "decode_viewer"]

ALGORITHMS = ["HS256"]
_ROLES = {role.value: role for role in Role}


def decode_viewer(token: str, settings: Settings) -> Viewer:
    """The viewer a token names; Unauthenticated if it is not valid for these settings."""
    if settings.jwt_secret is None:
        raise Unauthenticated("authentication is not configured on this gateway")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=ALGORITHMS,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise Unauthenticated(f"invalid token: {exc}") from None
    subject, roles = claims["sub"], claims.get("roles")
    if not isinstance(subject, str) or not subject:
        raise Unauthenticated("invalid token: `sub` must be a user id")
    if not isinstance(roles, list) or not roles or any(role not in _ROLES for role in roles):
        raise Unauthenticated(f"invalid token: `roles` must be a non-empty list of {', '.join(_ROLES)}")
    return Viewer(subject, frozenset(_ROLES[role] for role in roles))


async def authenticate(request: Request, settings: Settings) -> Viewer:
    """The viewer of a request; Unauthenticated without a valid bearer token."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("a bearer token is required")
    return decode_viewer(token.strip(), settings)
