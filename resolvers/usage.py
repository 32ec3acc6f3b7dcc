"""``Query.usage`` and the fields of ``Usage`` that are not breakdowns."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
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


async def usage(ctx: Context, requested: RequestedFilter) -> UsageRequest:
    f = await resolve_filter(ctx, requested)
    report = await ctx.days.ensure(f.date_from, f.date_to)
    ctx.note(report)
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
    ctx.note(await ctx.days.ensure(previous.date_from, previous.date_to))
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
