"""Top movers: how much each entity's metric changed between a range and the period before it.

A mover's ``current`` and ``previous`` are exactly its rows of the two periods' breakdowns
(:func:`~usage_gateway.datasources.facts.aggregates.breakdown` under each period's filter), so the movers
are the difference of ``byUser``/``byModel``/… of the two periods: an entity in only one of them counts 0
in the other. SPEND stays an exact :class:`~decimal.Decimal`, counts are integers.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from usage_gateway.datasources.db import Database
from usage_gateway.datasources.facts.aggregates import breakdown
from usage_gateway.datasources.facts.vocabulary import (
    USAGE_DIMENSIONS,
    Dimension,
    Direction,
    FactFilter,
    Order,
    OrderMetric,
)

# A breakdown's LIMIT large enough for every group: movers need each entity of both periods.
_EVERY_GROUP = 2**62


class MoverChange(StrEnum):
    CHANGED = "changed"
    NEW = "new"  # nothing in the previous period, something now
    VANISHED = "vanished"  # something in the previous period, nothing now


@dataclass(frozen=True)
class Mover:
    """One entity's metric in both periods; ``key`` is the facts' value of the dimension (for API_KEY the
    key bucket)."""

    key: str
    current: Decimal | int
    previous: Decimal | int

    @property
    def change(self) -> Decimal | int:
        return self.current - self.previous

    @property
    def magnitude(self) -> Decimal:
        """|change|, as a Decimal whatever the metric."""
        return Decimal(self.change).copy_abs()

    @property
    def change_relative(self) -> float | None:
        """change / previous; None when previous is 0."""
        return None if not self.previous else float(Decimal(self.change) / Decimal(self.previous))

    @property
    def status(self) -> MoverChange:
        if not self.previous and self.current > 0:
            return MoverChange.NEW
        if not self.current and self.previous > 0:
            return MoverChange.VANISHED
        return MoverChange.CHANGED


async def _metric_by_key(
    db: Database, f: FactFilter, dimension: Dimension, metric: OrderMetric
) -> dict[str, Decimal | int]:
    page = await breakdown(
        db,
        f,
        dimension,
        order=Order(metric, Direction.DESC),
        first=_EVERY_GROUP,
        after=None,
        active_counts=False,
    )
    return {row.key: row.totals.metric(metric) for row in page.rows}


async def find_movers(
    db: Database, dimension: Dimension, current: FactFilter, previous: FactFilter, metric: OrderMetric
) -> list[Mover]:
    """Every entity of ``dimension`` with facts under ``current`` or ``previous``, ordered by the size of
    its change descending, then by key."""
    dimension, metric = Dimension(dimension), OrderMetric(metric)
    if dimension not in USAGE_DIMENSIONS:
        raise ValueError(f"no movers by {dimension.name}")
    now, before = await asyncio.gather(
        _metric_by_key(db, current, dimension, metric), _metric_by_key(db, previous, dimension, metric)
    )
    zero: Decimal | int = Decimal(0) if metric is OrderMetric.SPEND else 0
    movers = [Mover(key, now.get(key, zero), before.get(key, zero)) for key in {*now, *before}]
    movers.sort(key=lambda m: (-m.magnitude, m.key))
    return movers
