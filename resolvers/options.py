"""``Query.filterOptions``: what a filter can choose from in a range (within the viewer's scope)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from usage_gateway.datasources.directory.lookups import ApiKeyRecord, TeamRecord, UserRecord, teams_by_ids
from usage_gateway.datasources.facts import aggregates as facts
from usage_gateway.datasources.facts.aggregates import Dimension, FactFilter
from usage_gateway.resolvers.context import Context
from usage_gateway.resolvers.filters import RequestedFilter, check_range, resolve_filter
from usage_gateway.resolvers.scope import scoped_filter

_SITE = ("filterOptions",)


@dataclass(frozen=True)
class OptionsRequest:
    filter: FactFilter
    keys_filter: FactFilter | None = None  # the chosen users and teams: the keys cascade from them


def chosen(
    start: date, end: date, user_ids: Sequence[str] | None, team_ids: Sequence[str] | None
) -> RequestedFilter:
    """The users and teams a filter has chosen, as a filter of the range (checked as ``usage``'s is)."""
    return RequestedFilter(start, end, user_ids=user_ids, team_ids=team_ids)


async def filter_options(
    ctx: Context,
    start: date,
    end: date,
    user_ids: Sequence[str] | None = None,
    team_ids: Sequence[str] | None = None,
) -> OptionsRequest:
    check_range(start, end, ctx.limits)
    f = scoped_filter(ctx.viewer, FactFilter(start, end))
    narrowed = None
    if user_ids is not None or team_ids is not None:
        narrowed = await resolve_filter(ctx, chosen(start, end, user_ids, team_ids))
    ctx.note(await ctx.days.ensure(start, end))
    return OptionsRequest(f, narrowed)


async def users(ctx: Context, request: OptionsRequest) -> list[tuple[str, UserRecord | None]]:
    """Every attributed user seen, with its directory record (None for pseudo-users)."""
    ids = await facts.distinct_values(ctx.db, request.filter, Dimension.USER)
    records = await ctx.loaders.users.load_many([(_SITE, user_id) for user_id in ids])
    return list(zip(ids, records, strict=True))


async def api_keys(ctx: Context, request: OptionsRequest) -> list[tuple[str, ApiKeyRecord | None]]:
    """Every key bucket seen, with its directory key (None outside the directory); only those the chosen
    users and teams used, if any are chosen."""
    f = request.filter if request.keys_filter is None else request.keys_filter
    buckets = await facts.distinct_values(ctx.db, f, Dimension.API_KEY)
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
