"""Top movers (issue 17 item 4): exactly the difference of the two periods' breakdowns.

For random facts and filters, each mover's ``current`` and ``previous`` are the entity's metric in
``breakdown`` of the range and of the previous period of equal length (the one ``previousPeriod``
reads), 0 where it is absent; every entity of either breakdown is a mover; NEW and VANISHED are marked
by the zeros; the order is by the size of the change, then key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.facts_data import Fact, facts_lists, filters, replace_facts
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
from usage_gateway.datasources.insights.movers import MoverChange, find_movers
from usage_gateway.resolvers.usage import previous_filter

examples = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await Database.open(database_url, max_size=2)
    yield database
    await database.close()


async def by_key(db: Database, f: FactFilter, dimension: Dimension, metric: OrderMetric) -> dict[str, object]:
    """The breakdown of ``f`` (every group: the data has far fewer than 500) as key -> metric."""
    page = await breakdown(
        db, f, dimension, order=Order(metric, Direction.ASC), first=500, after=None, active_counts=False
    )
    assert not page.has_next_page
    return {row.key: row.totals.metric(metric) for row in page.rows}


@given(
    rows=facts_lists,
    f=filters(),
    dimension=st.sampled_from(USAGE_DIMENSIONS),
    metric=st.sampled_from(OrderMetric),
)
@examples
async def test_movers_are_the_difference_of_the_two_breakdowns(
    db: Database, rows: list[Fact], f: FactFilter, dimension: Dimension, metric: OrderMetric
) -> None:
    await replace_facts(db, rows)
    previous = previous_filter(f)
    assert previous.date_to.toordinal() == f.date_from.toordinal() - 1
    assert (previous.date_to - previous.date_from) == (f.date_to - f.date_from)
    now, before = await by_key(db, f, dimension, metric), await by_key(db, previous, dimension, metric)
    movers = await find_movers(db, dimension, f, previous, metric)
    zero = Decimal(0) if metric is OrderMetric.SPEND else 0
    assert sorted(m.key for m in movers) == sorted({*now, *before})
    for mover in movers:
        assert (mover.current, mover.previous) == (now.get(mover.key, zero), before.get(mover.key, zero))
        assert type(mover.current) is type(zero)
        assert mover.change == mover.current - mover.previous
        if mover.key not in before or not before[mover.key]:
            expected = MoverChange.NEW if mover.current else MoverChange.CHANGED
        elif mover.key not in now or not now[mover.key]:
            expected = MoverChange.VANISHED
        else:
            expected = MoverChange.CHANGED
        assert mover.status is expected
        if mover.previous:
            assert mover.change_relative == float(Decimal(mover.change) / Decimal(mover.previous))
        else:
            assert mover.change_relative is None
    order = [(-abs(Decimal(m.change)), m.key) for m in movers]
    assert order == sorted(order)
