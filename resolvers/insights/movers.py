"""``Usage.movers``: each entity's change between the range and ``previousPeriod``, keyset-paged."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from usage_gateway.datasources.directory.lookups import identify
from usage_gateway.datasources.facts.vocabulary import USAGE_DIMENSIONS, Dimension, OrderMetric
from usage_gateway.datasources.insights.movers import Mover, find_movers
from usage_gateway.errors import BadUserInput
from usage_gateway.resolvers.context import Context
from usage_gateway.resolvers.filters import check_first
from usage_gateway.resolvers.insights import cursors
from usage_gateway.resolvers.usage import UsageRequest, ensure_days, previous_filter

_CURSOR = "movers"
_POSITION = ("dimension", "metric", "change", "key")


@dataclass(frozen=True)
class MoverNode:
    mover: Mover
    id: str  # as the breakdowns name the entity (a directory key's id for a key in the directory)
    name: str | None


@dataclass(frozen=True)
class MoverPage:
    total_count: int
    nodes: list[MoverNode]
    has_next_page: bool
    end_cursor: str | None


def check_arguments(
    dimension: Dimension, metric: OrderMetric, first: int, after: str | None, ctx: Context
) -> None:
    """BadUserInput for arguments ``movers`` refuses, before anything runs."""
    check_first(first, ctx.limits)
    if after is not None:
        _after(after, dimension, metric)


def _after(after: str, dimension: Dimension, metric: OrderMetric) -> tuple[Decimal, str]:
    position = cursors.decode(after, _CURSOR, _POSITION)
    if (position["dimension"], position["metric"]) != (dimension.name, metric.value):
        raise BadUserInput(
            "`after` is not a cursor of this connection: it was made for another dimension or metric"
        )
    try:
        change = Decimal(position["change"])
    except InvalidOperation:
        raise BadUserInput("`after` is not a cursor of this connection: malformed cursor") from None
    if not change.is_finite():
        raise BadUserInput("`after` is not a cursor of this connection: malformed cursor")
    return -change, position["key"]


def _order(mover: Mover) -> tuple[Decimal, str]:
    """The size of the change descending, then the key (for API_KEY the key bucket)."""
    return -mover.magnitude, mover.key


async def movers(
    ctx: Context,
    request: UsageRequest,
    dimension: Dimension,
    *,
    first: int,
    after: str | None,
    metric: OrderMetric,
) -> MoverPage:
    check_arguments(dimension, metric, first, after, ctx)
    if dimension not in USAGE_DIMENSIONS:
        raise BadUserInput(f"no movers by {dimension.name}")
    previous = previous_filter(request.filter)
    await ensure_days(ctx, previous, previous.date_from, previous.date_to)
    found = await find_movers(ctx.db, dimension, request.filter, previous, metric)
    rest = found
    if after is not None:
        start = _after(after, dimension, metric)
        rest = [mover for mover in found if _order(mover) > start]
    page = rest[:first]
    end_cursor = None
    if page:
        last = page[-1]
        position = {
            "dimension": dimension.name,
            "metric": metric.value,
            "change": format(last.magnitude, "f"),
            "key": last.key,
        }
        end_cursor = cursors.encode(_CURSOR, position)
    return MoverPage(len(found), await _named(ctx, dimension, page), len(rest) > first, end_cursor)


async def _named(ctx: Context, dimension: Dimension, page: list[Mover]) -> list[MoverNode]:
    """The page's movers with their entity's id and display name (one directory lookup at most)."""
    ids, names = await identify(ctx.db, dimension, [mover.key for mover in page])
    return [MoverNode(mover, ids[mover.key], names.get(mover.key)) for mover in page]
