"""Fields of a breakdown node that need more data: its series, its top groups, its user and key.

Each goes through a request-wide DataLoader keyed by the node's site, so a page of nodes costs the same
statements as one node.
"""

from __future__ import annotations

from usage_gateway.datasources.directory.lookups import ApiKeyRecord, UserRecord, is_pseudo_user
from usage_gateway.datasources.facts.aggregates import Dimension, Granularity
from usage_gateway.resolvers.context import Context
from usage_gateway.resolvers.filters import check_first
from usage_gateway.resolvers.loaders.series import Series, SeriesKey
from usage_gateway.resolvers.loaders.top import TopKey
from usage_gateway.resolvers.slices import Node, Site


async def series(ctx: Context, node: Node, granularity: Granularity) -> Series:
    return await ctx.loaders.series.load(SeriesKey(node.slice, granularity, node.site))


async def top(ctx: Context, node: Node, inner: Dimension, first: int, site: Site) -> list[Node]:
    """The node's first ``first`` groups of ``inner`` by spend, with metrics narrowed to the node.

    ``site`` is the field asking (its response path without list indices).
    """
    check_first(first, ctx.limits)
    rows = await ctx.loaders.top.load(TopKey(node.slice, inner, first, node.site))
    return [Node(node.slice, inner, row, node.row.totals.spend, site) for row in rows]


async def user(ctx: Context, node: Node) -> UserRecord | None:
    """The directory user of a user node; None for pseudo-users."""
    if is_pseudo_user(node.key):
        return None
    return await ctx.loaders.users.load((node.site, node.key))


async def api_key(ctx: Context, node: Node) -> ApiKeyRecord | None:
    """The directory key of a key node; None for buckets outside the directory."""
    return await ctx.loaders.api_keys.load((node.site, node.key))
