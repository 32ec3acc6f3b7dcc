"""The four ``Usage.by*`` connections: keyset-paged groups of the whole filter."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal

from usage_gateway.datasources.facts import aggregates as facts
from usage_gateway.datasources.facts.aggregates import Dimension, InvalidCursor, Order
from usage_gateway.errors import BadUserInput
from usage_gateway.resolvers.context import Context
from usage_gateway.resolvers.filters import check_after, check_first
from usage_gateway.resolvers.slices import Node, Site
from usage_gateway.resolvers.usage import UsageRequest


@dataclass(frozen=True)
class NodePage:
    total_count: int
    nodes: list[Node]
    has_next_page: bool
    end_cursor: str | None


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(value))


async def breakdown(
    ctx: Context,
    request: UsageRequest,
    dimension: Dimension,
    *,
    first: int,
    after: str | None,
    order: Order,
    min_spend: float | None = None,
    max_spend: float | None = None,
    site: Site = (),
) -> NodePage:
    """A page of groups; ``site`` is the field asking (its response path), for the nodes' own fields."""
    check_first(first, ctx.limits)
    check_after(after, dimension, order)
    try:
        page, whole = await asyncio.gather(
            facts.breakdown(
                ctx.db,
                request.filter,
                dimension,
                order=order,
                first=first,
                after=after,
                min_spend=_decimal(min_spend),
                max_spend=_decimal(max_spend),
                active_counts=request.active_counts,
            ),
            # The share needs only the spend: no active counts.
            ctx.loaders.totals.load((request.filter, False)),
        )
    except InvalidCursor as exc:
        raise BadUserInput(f"`after` is not a cursor of this breakdown: {exc}") from None
    nodes = [Node(request.slice, dimension, row, whole.spend, site) for row in page.rows]
    return NodePage(page.total_count, nodes, page.has_next_page, page.end_cursor)
