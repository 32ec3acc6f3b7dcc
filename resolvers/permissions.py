"""Who may call what: the policy for every root field, and the checks resolvers call.

    admin           everything
    adminReadonly   every query and export; not refreshToday, refreshRange, syncDirectory
    user            every query and export, clipped to their own usage (:mod:`resolvers.scope`)

Roles add up: a viewer holding several has the union of what each allows. The policy is enforced once
per operation, before any resolver runs (:mod:`schema.access`); resolvers that change things call
:func:`require_admin` as well, so a resolver reached some other way is still guarded.
"""

from __future__ import annotations

from collections.abc import Mapping

from usage_gateway.errors import Forbidden
from usage_gateway.resolvers.viewer import Role, Viewer

ADMINS = frozenset({Role.ADMIN})
READERS_OF_EVERYONE = frozenset({Role.ADMIN, Role.ADMIN_READONLY})
EVERYONE = frozenset(Role)

# Every root field, as ``Type.field``, with the roles that may call it. A field missing here is refused
# to everyone (a test checks that every root field of the schema is listed).
ROOT_FIELDS: Mapping[str, frozenset[Role]] = {
    "Query.usage": EVERYONE,
    "Query.filterOptions": EVERYONE,
    "Query.viewer": EVERYONE,
    "Query.export": EVERYONE,
    "Mutation.exportUsage": EVERYONE,
    "Mutation.refreshToday": ADMINS,
    "Mutation.refreshRange": ADMINS,
    "Mutation.syncDirectory": ADMINS,
}


def reads_everyone(viewer: Viewer) -> bool:
    """Whether the viewer sees every user's usage (admins, read-only admins)."""
    return bool(viewer.roles & READERS_OF_EVERYONE)


def may_call(viewer: Viewer, root_field: str) -> bool:
    """Whether the viewer may call ``root_field`` (``Type.field``)."""
    return bool(viewer.roles & ROOT_FIELDS.get(root_field, frozenset()))


def require_role(viewer: Viewer, *roles: Role, action: str = "this operation") -> None:
    """:class:`Forbidden` unless the viewer holds one of ``roles``."""
    if not viewer.roles & set(roles):
        needed = " or ".join(role.value for role in roles)
        raise Forbidden(f"{action} needs the role {needed}")


def require_admin(viewer: Viewer, action: str = "this operation") -> None:
    """:class:`Forbidden` unless the viewer is an admin (read-only admins are not)."""
    require_role(viewer, Role.ADMIN, action=action)


def require_owner(viewer: Viewer, owner_id: str, what: str = "this") -> None:
    """:class:`Forbidden` unless the viewer owns the thing (``owner_id``) or reads everyone's usage."""
    if viewer.id != owner_id and not reads_everyone(viewer):
        raise Forbidden(f"{what} belongs to another user")
