"""What a viewer may see: the one place a request's filter is clipped to the viewer's scope.

Admins and read-only admins see everyone. A plain ``user`` sees only the facts attributed to them: the
filter's ``user_ids`` become theirs, and a filter naming anyone else, or a key that is not theirs, is
refused with FORBIDDEN rather than answered with nothing, so a client cannot mistake "not allowed" for
"no usage". Everything a user's query can show (breakdowns, nested top lists, directory records, filter
options, previous period, exports) is computed from the clipped filter, so no one else appears in it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from usage_gateway.datasources.facts.aggregates import FactFilter
from usage_gateway.errors import Forbidden
from usage_gateway.resolvers.permissions import reads_everyone
from usage_gateway.resolvers.viewer import Viewer


def check_user_ids(viewer: Viewer, user_ids: Sequence[str] | None) -> None:
    """FORBIDDEN if a plain user names anyone but themselves (checked before any lookup, so the answer
    says nothing about whether the others exist)."""
    if reads_everyone(viewer) or not user_ids:
        return
    if any(user_id != viewer.id for user_id in user_ids):
        raise Forbidden(f"`userIds` may name only your own id ({viewer.id})")


def scoped_filter(
    viewer: Viewer, f: FactFilter, key_owners: Mapping[str, str | None] | None = None
) -> FactFilter:
    """The filter narrowed to what ``viewer`` may see.

    ``key_owners`` maps each key bucket of ``f.api_keys`` to the directory user who owns it (``None``
    outside the directory); a plain user's filter may only name buckets they own. Without it, a plain
    user's filter may name no key at all.
    """
    if reads_everyone(viewer):
        return f
    check_user_ids(viewer, f.user_ids)
    if f.api_keys:
        owners = key_owners or {}
        if any(owners.get(bucket) != viewer.id for bucket in f.api_keys):
            raise Forbidden("`apiKeyIds` may name only your own keys")
    return replace(f, user_ids=(viewer.id,) if f.user_ids is None else f.user_ids)
