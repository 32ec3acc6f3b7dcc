"""``Query.filterOptions``: what a filter can choose from in a range (within the viewer's scope)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from usage_gateway.datasources.directory.lookups import ApiKeyRecord, TeamRecord, UserRecord, teams_by_ids
from usage_gateway.datasources.facts import aggregates as facts
from usage_gateway.datasources.facts.aggregates import Dimension, FactFilter
from usage_gateway.resolvers.context import Context
from usage_gateway.resolvers.filters import check_range
from usage_gateway.resolvers.scope import scoped_filter

_SITE = ("filterOptions",)


@dataclass(frozen=True)
class OptionsRequest:
    filter: FactFilter


async def filter_options(ctx: Context, start: date, end: date) -> OptionsRequest:
    check_range(start, end, ctx.limits)
    f = scoped_filter(ctx.viewer, FactFilter(start, end))
    ctx.note(await ctx.days.ensure(start, end))
    return OptionsRequest(f)


async def users(ctx: Context, request: OptionsRequest) -> list[tuple[str, UserRecord | None]]:
    """Every attributed user seen, with its directory record (None for pseudo-users)."""
    ids = await facts.distinct_values(ctx.db, request.filter, Dimension.USER)
    records = await ctx.loaders.users.load_many([(_SITE, user_id) for user_id in ids])
    return list(zip(ids, records, strict=True))


async def api_keys(ctx: Context, request: OptionsRequest) -> list[tuple[str, ApiKeyRecord | None]]:
    """Every key bucket seen, with its directory key (None outside the directory)."""
    buckets = await facts.distinct_values(ctx.db, request.filter, Dimension.API_KEY)
    records = await ctx.loaders.api_keys.load_many([(_SITE, bucket) for bucket in buckets])
    return list(zip(buckets, records, strict=True))


async def teams(ctx: Context, request: OptionsRequest) -> list[tuple[str, TeamRecord | None]]:
    """Every team with usage in the range (``no-team`` included), with its record (None if never listed)."""
    ids = await facts.distinct_values(ctx.db, request.filter, Dimension.TEAM)
    records = await teams_by_ids(ctx.db, ids)
    return [(team_id, records.get(team_id)) for team_id in ids]


async def tags(ctx: Context, request: OptionsRequest) -> list[str]:
    """Every LiteLLM tag with usage in the range (the range's tag days are made present for it)."""
    f = request.filter
    if ctx.tag_days is None:
        return []
    ctx.note(await ctx.tag_days.ensure(f.date_from, f.date_to))
    return await facts.distinct_values(ctx.db, f, Dimension.TAG)


async def values(ctx: Context, request: OptionsRequest, dimension: Dimension) -> list[str]:
    return await facts.distinct_values(ctx.db, request.filter, dimension)
