"""SQL statements per request: each selected field costs a fixed number, whatever the number of nodes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from tests.api_client import (
    DirectoryKey,
    DirectoryUser,
    Gateway,
    open_gateway,
    seed_days,
    seed_directory,
    token_hash,
)
from tests.facts_data import BASE, Fact, make_fact
from tests.facts_data import replace_facts as store_facts

USERS = 500
RANGE = {"from": BASE.isoformat(), "to": (BASE + timedelta(days=6)).isoformat()}

NESTED = """
query ($f: UsageFilter!, $n: Int!) {
  usage(filter: $f) {
    totals { spend }
    byUser(first: $n) {
      nodes {
        userId share user { id username }
        timeSeries { date metrics { spend requests } }
        models(first: 3) {
          model providers timeSeries { date metrics { spend } }
          topUsers { userId user { id } models { model } }
        }
        apiKeys { apiKeyId apiKey { id user { id } } user { id } timeSeries(granularity: WEEK) { date } }
      }
    }
    byModel(first: $n) {
      nodes { model topUsers(first: 3) { userId timeSeries { date } apiKeys { apiKeyId } } }
    }
    byApiKey(first: $n) {
      nodes { apiKeyId user { id } apiKey { id } timeSeries(granularity: MONTH) { date } }
    }
  }
}
"""


def user_facts(n: int) -> list[Fact]:
    facts = []
    for day in range(3):
        for model in ("gpt-4o", "claude-3"):
            facts.append(
                make_fact(
                    BASE + timedelta(days=day),
                    user_id=f"user-{n:03d}",
                    api_key=token_hash(f"key-{n}"),
                    model=model,
                    spend=f"{n % 17}.25",
                )
            )
    return facts


@pytest.fixture
async def gw(database_url: str, redis_url: str) -> AsyncIterator[Gateway]:
    # Far larger than a client would ask: lift the cost and rate limits (tested in test_limits).
    async with open_gateway(database_url, redis_url, max_query_cost=10_000_000, rate_limit_cost=0) as gateway:
        users = [DirectoryUser(f"user-{n:03d}", f"User {n}") for n in range(USERS)]
        keys = [DirectoryKey(f"key-{n}", token_hash(f"key-{n}"), f"user-{n:03d}") for n in range(USERS)]
        await seed_directory(gateway.db, users, keys)
        await seed_days(gateway.db, BASE - timedelta(days=30), BASE + timedelta(days=30))
        facts = [fact for n in range(USERS) for fact in user_facts(n)]
        facts.append(make_fact(BASE, user_id="unattributed", api_key="unattributed", model="claude-3"))
        facts.append(make_fact(BASE, user_id="litellm:x", api_key="raw:abc", model="gpt-4o"))
        await store_facts(gateway.db, facts)
        await gateway.data(
            "query ($f: UsageFilter!) { usage(filter: $f) { from } }", {"f": RANGE}
        )  # warm days
        yield gateway


async def test_statements_do_not_grow_with_nodes(gw: Gateway) -> None:
    counts = {}
    for n in (5, 50, 500):
        counts[n], data = await gw.statements(NESTED, {"f": RANGE, "n": n})
        assert len(data["usage"]["byUser"]["nodes"]) == n
        assert len(data["usage"]["byApiKey"]["nodes"]) == n
        assert all(len(node["timeSeries"]) == 7 for node in data["usage"]["byUser"]["nodes"])
        assert all(len(node["models"]) == 2 for node in data["usage"]["byUser"]["nodes"][: n - 2])
    assert counts[5] == counts[50] == counts[500], counts
    # One per loader-backed field of each selection site: the totals, 3 breakdowns, then byUser's user,
    # timeSeries, models, apiKeys; models' timeSeries, topUsers; their user, models; apiKeys' key, timeSeries;
    # byModel's topUsers, their timeSeries, apiKeys; byApiKey's key, timeSeries.
    assert counts[500] == 20, counts


async def test_each_field_costs_only_when_selected(gw: Gateway) -> None:
    count, _ = await gw.statements("query ($f: UsageFilter!) { usage(filter: $f) { from to } }", {"f": RANGE})
    assert count == 0
    count, _ = await gw.statements(
        "query ($f: UsageFilter!) { usage(filter: $f) { totals { spend } } }", {"f": RANGE}
    )
    assert count == 1
    count, _ = await gw.statements(
        "query ($f: UsageFilter!) { usage(filter: $f) { totals { spend } byUser { nodes { share } } } }",
        {"f": RANGE},
    )
    assert count == 2  # the breakdown; the share's denominator is the totals already asked for


async def test_active_counts_are_computed_only_when_asked_for(gw: Gateway) -> None:
    plain = "query ($f: UsageFilter!) { usage(filter: $f) { totals { spend } byModel { nodes { model } } } }"
    counter, _ = await gw.counted(plain, {"f": RANGE})
    assert counter.count == 2
    assert not any("count(DISTINCT" in statement for statement in counter.statements)
    asking = """query ($f: UsageFilter!) { usage(filter: $f) { totals { spend }
        byModel { nodes { ...on ModelUsage { metrics { ...Active } } } } } }
        fragment Active on UsageMetrics { activeUsers }"""
    counter, data = await gw.counted(asking, {"f": RANGE})
    # Per field: the breakdown asks for active users, the totals do not.
    distinct = ["count(DISTINCT" in statement for statement in counter.statements]
    assert sorted(distinct) == [False, True], counter.statements
    assert data["usage"]["byModel"]["nodes"][0]["metrics"]["activeUsers"] == USERS


async def test_user_id_filter_costs_one_lookup(gw: Gateway) -> None:
    f = {**RANGE, "userIds": [f"user-{n:03d}" for n in range(200)], "apiKeyIds": ["key-1", "key-2"]}
    count, data = await gw.statements(
        "query ($f: UsageFilter!) { usage(filter: $f) { totals { activeUsers } } }", {"f": f}
    )
    assert data["usage"]["totals"]["activeUsers"] == 2
    assert count == 3  # users exist, keys by id, the totals
