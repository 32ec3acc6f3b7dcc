"""Paging through each breakdown with cursors returns every node once, in order, for every ordering."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api_client import Gateway, open_gateway, ranked, seed_days
from tests.facts_data import BASE, DAYS, Fact, facts_lists, make_fact
from tests.facts_data import replace_facts as store_facts
from usage_gateway.datasources.facts.aggregates import Dimension, Direction, FactFilter, Order, OrderMetric

examples = settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

FIELDS = {
    Dimension.USER: ("byUser", "userId"),
    Dimension.MODEL: ("byModel", "model"),
    Dimension.PROVIDER: ("byProvider", "provider"),
    Dimension.API_KEY: ("byApiKey", "tokenHashPrefix"),
}


def shown(dimension: Dimension, key: str) -> str:
    """How a node shows its key (a key bucket by its prefix, unique in the test data)."""
    return key[:12] if dimension is Dimension.API_KEY else key


PAGE = """
query ($filter: UsageFilter!, $first: Int!, $order: UsageOrder, $afterUser: String, $afterModel: String,
       $afterProvider: String, $afterKey: String, $min: Float, $max: Float) {
  usage(filter: $filter) {
    byUser(first: $first, after: $afterUser, orderBy: $order, minSpend: $min, maxSpend: $max) {
      totalCount pageInfo { hasNextPage endCursor } nodes { userId }
    }
    byModel(first: $first, after: $afterModel, orderBy: $order) {
      totalCount pageInfo { hasNextPage endCursor } nodes { model }
    }
    byProvider(first: $first, after: $afterProvider, orderBy: $order) {
      totalCount pageInfo { hasNextPage endCursor } nodes { provider }
    }
    byApiKey(first: $first, after: $afterKey, orderBy: $order) {
      totalCount pageInfo { hasNextPage endCursor } nodes { tokenHashPrefix }
    }
  }
}
"""
AFTER = {
    Dimension.USER: "afterUser",
    Dimension.MODEL: "afterModel",
    Dimension.PROVIDER: "afterProvider",
    Dimension.API_KEY: "afterKey",
}
WHOLE = FactFilter(BASE - timedelta(days=1), BASE + timedelta(days=DAYS + 1))


@pytest.fixture
async def gw(database_url: str, redis_url: str) -> AsyncIterator[Gateway]:
    async with open_gateway(database_url, redis_url) as gateway:
        await seed_days(gateway.db, WHOLE.date_from, WHOLE.date_to)
        yield gateway


async def page_all(
    gw: Gateway, order: Order, page_size: int, low: Decimal | None, high: Decimal | None
) -> dict[Dimension, list[str]]:
    """Every node of the four breakdowns, fetched together page by page, checking each page."""
    variables: dict[str, Any] = {
        "filter": {"from": WHOLE.date_from.isoformat(), "to": WHOLE.date_to.isoformat()},
        "first": page_size,
        "order": {"metric": order.metric.name, "direction": order.direction.name},
        "min": None if low is None else float(low),
        "max": None if high is None else float(high),
    }
    seen: dict[Dimension, list[str]] = {dimension: [] for dimension in FIELDS}
    done: set[Dimension] = set()
    for _ in range(100):
        usage = (await gw.data(PAGE, variables))["usage"]
        for dimension, (field, key) in FIELDS.items():
            if dimension in done:
                continue
            connection = usage[field]
            nodes = [node[key] for node in connection["nodes"]]
            seen[dimension] += nodes
            info = connection["pageInfo"]
            assert len(nodes) <= page_size
            assert info["hasNextPage"] == (len(seen[dimension]) < connection["totalCount"])
            assert (info["endCursor"] is None) == (not nodes)
            if info["hasNextPage"]:
                variables[AFTER[dimension]] = info["endCursor"]
            else:
                done.add(dimension)
                variables[AFTER[dimension]] = None
        if len(done) == len(FIELDS):
            return seen
    raise AssertionError("paging did not end")


spend_bounds = st.one_of(st.none(), st.sampled_from(["0", "0.5", "1.5", "100"]).map(Decimal))


@examples
@given(facts=facts_lists, page_size=st.integers(1, 4), low=spend_bounds, high=spend_bounds)
async def test_pages_return_every_node_once_in_order_for_every_ordering(
    gw: Gateway, facts: list[Fact], page_size: int, low: Decimal | None, high: Decimal | None
) -> None:
    await store_facts(gw.db, facts)
    for metric in OrderMetric:
        for direction in Direction:
            order = Order(metric, direction)
            seen = await page_all(gw, order, page_size, low, high)
            for dimension in FIELDS:
                rows = ranked(facts, WHOLE, dimension, order)
                if dimension is Dimension.USER:
                    rows = [
                        row
                        for row in rows
                        if (low is None or row.totals.spend >= low)
                        and (high is None or row.totals.spend <= high)
                    ]
                assert seen[dimension] == [shown(dimension, row.key) for row in rows], (dimension, order)


async def test_ties_on_every_metric_page_by_key(gw: Gateway) -> None:
    models = [f"model-{n:02d}" for n in range(12)]
    await store_facts(gw.db, [make_fact(BASE, model=model, spend="1.5") for model in models])
    for direction in Direction:
        seen = await page_all(gw, Order(OrderMetric.SPEND, direction), 5, None, None)
        assert seen[Dimension.MODEL] == models


async def test_first_zero_counts_without_nodes(gw: Gateway) -> None:
    await store_facts(gw.db, [make_fact(BASE, model=f"m{n}") for n in range(3)])
    query = """query ($f: UsageFilter!) { usage(filter: $f) {
        byModel(first: 0) { totalCount pageInfo { hasNextPage endCursor } nodes { model } } } }"""
    usage = (await gw.data(query, {"f": {"from": BASE.isoformat(), "to": BASE.isoformat()}}))["usage"]
    assert usage["byModel"] == {
        "totalCount": 3,
        "pageInfo": {"hasNextPage": True, "endCursor": None},
        "nodes": [],
    }
