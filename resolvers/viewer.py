"""Who is asking: the identity the server authenticated, as the resolvers see it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """A role claim (DESIGN §6); the value is the claim's spelling in the token."""

    ADMIN = "admin"
    ADMIN_READONLY = "adminReadonly"
    USER = "user"


@dataclass(frozen=True)
class Viewer:
    id: str
    roles: frozenset[Role]
