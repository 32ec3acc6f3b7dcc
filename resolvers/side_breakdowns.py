"""``Usage.byModelGroup``, ``byEndpoint`` and ``byMcpServer``: keyset-paged buckets of LiteLLM's side
roll-ups, under the filters :mod:`~usage_gateway.resolvers.side_rules` allows."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal

from usage_gateway.datasources.db import Database
from usage_gateway.datasources.facts.side_breakdowns import (
    SideRollup,
    cursor_dimension,
    days_without_side_facts,
    side_breakdown,
)
from usage_gateway.datasources.facts.vocabulary import FactFilter, GroupRow, InvalidCursor, Order
from usage_gateway.errors import BadUserInput
from usage_gateway.resolvers.context import Context
from usage_gateway.resolvers.filters import check_after, check_first
from usage_gateway.resolvers.side_rules import WHAT, check_filters, refuse_ambiguous, used_filters
from usage_gateway.resolvers.usage import UsageRequest


@dataclass(frozen=True)
class SideNode:
    row: GroupRow
    parent_spend: Decimal  # the filter's total spend

    @property
    def share(self) -> float:
        return float(self.row.totals.spend / self.parent_spend) if self.parent_spend else 0.0


@dataclass(frozen=True)
class SideNodePage:
    total_count: int
    nodes: list[SideNode]
    has_next_page: bool
    end_cursor: str | None


def check_arguments(rollup: SideRollup, after: str | None, order: Order) -> None:
    check_after(after, cursor_dimension(rollup), order)


async def check_days_known(db: Database, f: FactFilter, rollup: SideRollup) -> None:
    """BadUserInput naming the range's days stored before the roll-ups were kept (migration 0009)."""
    stale = await days_without_side_facts(db, f)
    if stale:
        shown = ", ".join(day.isoformat() for day in stale[:5]) + (" …" if len(stale) > 5 else "")
        raise BadUserInput(
            f"{WHAT[rollup]} are not known for {len(stale)} day(s) stored before they were kept ({shown}):"
            " they are read again once their cache markers expire, or now with `refreshRange`"
        )


async def side_page(
    ctx: Context,
    request: UsageRequest,
    rollup: SideRollup,
    *,
    first: int,
    after: str | None,
    order: Order,
    active_users: bool,
) -> SideNodePage:
    """A page of buckets; ``active_users``: whether ``activeUsers`` is asked for (it needs each key's
    user, as a user filter does, and is refused where a key served several users on a day)."""
    check_first(first, ctx.limits)
    check_arguments(rollup, after, order)
    f = request.filter
    check_filters(rollup, used_filters(f))  # the viewer's scope included
    await check_days_known(ctx.db, f, rollup)
    try:
        found, whole = await asyncio.gather(
            side_breakdown(
                ctx.db, f, rollup, order=order, first=first, after=after, active_users=active_users
            ),
            ctx.loaders.totals.load((f, False)),
        )
    except InvalidCursor as exc:
        raise BadUserInput(f"`after` is not a cursor of this breakdown: {exc}") from None
    if found.ambiguous:
        raise refuse_ambiguous(rollup, by_user=f.user_ids is not None)
    page = found.page
    nodes = [SideNode(row, whole.spend) for row in page.rows]
    return SideNodePage(page.total_count, nodes, page.has_next_page, page.end_cursor)
