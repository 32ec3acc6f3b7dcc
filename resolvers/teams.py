"""Teams: the directory record (alias, deleted) of each team a page or an option list names."""

from __future__ import annotations

from collections.abc import Sequence

from usage_gateway.datasources.directory.lookups import TeamRecord, teams_by_ids
from usage_gateway.resolvers.context import Context


async def records(ctx: Context, team_ids: Sequence[str]) -> dict[str, TeamRecord]:
    """The synced teams among ``team_ids``, in one statement (``no-team`` and unlisted teams are absent)."""
    return await teams_by_ids(ctx.db, team_ids)
