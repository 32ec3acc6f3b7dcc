"""``Query.usage`` and the fields of ``Usage`` that are not breakdowns."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal

from usage_gateway.datasources.daycache.days import RangeReport
from usage_gateway.datasources.directory.lookups import UNATTRIBUTED
from usage_gateway.datasources.facts.aggregates import FactFilter, Granularity, UsageTotals
from usage_gateway.errors import BadUserInput
from usage_gateway.resolvers.context import Context
from usage_gateway.resolvers.filters import RequestedFilter, check_seen, resolve_filter
from usage_gateway.resolvers.loaders.series import Series, SeriesKey
from usage_gateway.resolvers.slices import Slice


@dataclass(frozen=True)
class UsageRequest:
    """A validated, scoped filter whose days the cache has made present (``report`` says how well)."""

    filter: FactFilter
    report: RangeReport
    active_counts: bool = True  # False when the field at hand asks for no active users, keys or models

    @property
    def slice(self) -> Slice:
        return Slice(self.filter, active_counts=self.active_counts)


async def ensure_days(ctx: Context, f: FactFilter, start: date, end: date) -> RangeReport:
    """Make the days the filter reads present: user days, and under a tag filter tag days too (whose
    report is the answer's: its numbers are theirs). Tag facts take their users from the same key owners
    as usage facts, which user days keep up to date, so those are made present as well."""
    if f.tags is None:
        report = await ctx.days.ensure(start, end)
        ctx.note(report)
        return report
    if ctx.tag_days is None:
        raise BadUserInput("`tag` cannot be answered: this gateway has no tag day cache")
    users, tags = await asyncio.gather(ctx.days.ensure(start, end), ctx.tag_days.ensure(start, end))
    ctx.note(users)
    ctx.note(tags)
    return tags


async def ensure_tag_days(ctx: Context, request: UsageRequest) -> None:
    """``byTag`` under a filter without a tag: the range's tag days, made present for that field only."""
    f = request.filter
    if f.tags is None:
        await ensure_days(ctx, replace(f, tags=()), f.date_from, f.date_to)


async def usage(ctx: Context, requested: RequestedFilter) -> UsageRequest:
    f = await resolve_filter(ctx, requested)
    report = await ensure_days(ctx, f, f.date_from, f.date_to)
    await check_seen(ctx, f)
    return UsageRequest(f, report)


async def totals(ctx: Context, request: UsageRequest) -> UsageTotals:
    return await ctx.loaders.totals.load((request.filter, request.active_counts))


def previous_filter(f: FactFilter) -> FactFilter:
    """The same number of days right before ``from``, under the same filter."""
    length = f.date_to - f.date_from + timedelta(days=1)
    try:
        return replace(f, date_from=f.date_from - length, date_to=f.date_from - timedelta(days=1))
    except OverflowError:
        raise BadUserInput("the range has no previous period before year 1") from None


async def previous_period(ctx: Context, request: UsageRequest) -> UsageTotals:
    """The totals of the same number of days right before ``from`` (made present first)."""
    previous = previous_filter(request.filter)
    await ensure_days(ctx, previous, previous.date_from, previous.date_to)
    return await ctx.loaders.totals.load((previous, request.active_counts))


async def time_series(ctx: Context, request: UsageRequest, granularity: Granularity) -> Series:
    return await ctx.loaders.series.load(SeriesKey(request.slice, granularity))


@dataclass(frozen=True)
class Freshness:
    report: RangeReport
    unattributed_spend: Decimal


async def freshness(ctx: Context, request: UsageRequest) -> Freshness:
    f = request.filter
    allowed = f.user_ids is None or UNATTRIBUTED in f.user_ids
    unattributed = replace(f, user_ids=(UNATTRIBUTED,) if allowed else ())
    spend = (await ctx.loaders.totals.load((unattributed, request.active_counts))).spend
    return Freshness(request.report, spend)
