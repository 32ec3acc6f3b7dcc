"""Query limits: each one hit by a crafted request and answered with its code, the limit in the message;
hostile documents (deep, aliased, fragment bombs) are refused quickly; every response reports its cost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from tests.api_client import Gateway, open_gateway, seed_days
from tests.facts_data import BASE, make_fact
from tests.facts_data import replace_facts as store_facts
from usage_gateway.datasources.db import Database
from usage_gateway.datasources.facts.aggregates import UsageTotals
from usage_gateway.datasources.rate_limit import CostRateLimiter
from usage_gateway.devtools.local_services import free_port
from usage_gateway.resolvers import usage as usage_resolvers
from usage_gateway.resolvers.context import Context
from usage_gateway.resolvers.usage import UsageRequest
from usage_gateway.resolvers.viewer import Role
from usage_gateway.server.config import Settings
from usage_gateway.server.resources import Resources

DAY = BASE.isoformat()
WEEK = {"from": DAY, "to": (BASE + timedelta(days=6)).isoformat()}
QUICKLY = 3.0  # seconds: a refusal is immediate, this only guards against a pathological slowdown


@pytest.fixture
async def gw(database_url: str, redis_url: str) -> AsyncIterator[Gateway]:
    async with open_gateway(database_url, redis_url, rate_limit_cost=0) as gateway:
        await seed_days(gateway.db, BASE - timedelta(days=400), BASE + timedelta(days=10))
        await store_facts(gateway.db, [make_fact(BASE), make_fact(BASE, user_id="bob", model="claude-3")])
        yield gateway


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors") or ()]


async def refused(gw: Gateway, query: str, variables: dict[str, Any] | None = None) -> str:
    """The messages of the QUERY_TOO_COMPLEX errors (one per limit passed) a request must get, quickly
    and before any data."""
    started = time.monotonic()
    body = await gw.query(query, variables)
    assert time.monotonic() - started < QUICKLY
    assert set(codes(body)) == {"QUERY_TOO_COMPLEX"}, body
    assert body["data"] is None
    return " ".join(error["message"] for error in body["errors"])


def chain(levels: int) -> str:
    """A query nesting ``levels`` fields: usage → byUser → nodes → models → topUsers → models → …"""
    inner = ["models(first: 1)", "topUsers(first: 1)"]
    path = ["usage(filter: $f)", "byUser(first: 1)", "nodes", *(inner[i % 2] for i in range(levels - 4))]
    leaf = "model" if path[-1].startswith("models") else "userId"
    return "query ($f: UsageFilter!) { " + " { ".join(path) + f" {{ {leaf} " + "} " * len(path) + "}"


# --- Depth, aliases, tokens -----------------------------------------------------------------------------


async def test_depth_over_the_limit_is_too_complex(gw: Gateway) -> None:
    assert "errors" not in await gw.query(chain(10), {"f": WEEK})
    assert "at most 10" in await refused(gw, chain(11), {"f": WEEK})


async def test_fragments_do_not_hide_depth(gw: Gateway) -> None:
    query = """query ($f: UsageFilter!) { usage(filter: $f) { byUser(first: 1) { nodes { ...U } } } }
    fragment U on UserUsage { models(first: 1) { ...M } }
    fragment M on ModelUsage { topUsers(first: 1) { models(first: 1) { topUsers(first: 1) { ...V } } } }
    fragment V on UserUsage { models(first: 1) { topUsers(first: 1) { models(first: 1) { model } } } }"""
    assert "11 fields deep" in await refused(gw, query, {"f": WEEK})


async def test_aliases_over_the_limit_are_too_complex(gw: Gateway) -> None:
    assert "errors" not in await gw.query("{ " + " ".join(f"a{i}: viewer {{ id }}" for i in range(30)) + " }")
    message = await refused(gw, "{ " + " ".join(f"a{i}: viewer {{ id }}" for i in range(31)) + " }")
    assert "31 aliases" in message
    assert "at most 30" in message


async def test_tokens_over_the_limit_are_too_complex(gw: Gateway) -> None:
    assert "at most 2000" in await refused(gw, "{ viewer { " + "id " * 2000 + "} }")
    assert "at most 2000" in await refused(gw, "#\n" * 2001 + "{ viewer { id } }")
    # A genuine syntax error stays what it is.
    assert codes(await gw.query("{ viewer { id }")) == ["BAD_USER_INPUT"]


# --- Cost -----------------------------------------------------------------------------------------------

BY_USER = """query ($f: UsageFilter!, $n: Int!) { usage(filter: $f) {
  totals { spend } byUser(first: $n) { nodes { userId metrics { spend } timeSeries { date } } } } }"""


async def test_cost_reads_variables_and_is_reported(gw: Gateway) -> None:
    # usage 1 + totals 10 + byUser 10 + nodes 1 + n × (metrics 1 + timeSeries 10 + 7 days × 0)
    for n in (3, 7):
        body = await gw.query(BY_USER, {"f": WEEK, "n": n})
        assert "errors" not in body
        assert body["extensions"]["cost"] == {"requested": 22 + 11 * n, "limit": 50_000}


async def test_nested_lists_multiply(gw: Gateway) -> None:
    query = """query ($f: UsageFilter!, $n: Int!, $m: Int!) { usage(filter: $f) {
      byModel(first: $n) { nodes { topUsers(first: $m) { userId metrics { spend } } } } } }"""
    for n, m in ((4, 5), (8, 5), (4, 10)):
        body = await gw.query(query, {"f": WEEK, "n": n, "m": m})
        # usage 1 + byModel 10 + nodes 1 + n × (topUsers 10 + m × metrics 1)
        assert body["extensions"]["cost"]["requested"] == 12 + n * (10 + m)


async def test_cost_over_the_limit_is_too_complex(gw: Gateway) -> None:
    query = """query ($f: UsageFilter!, $n: Int = 500) { usage(filter: $f) {
      byUser(first: $n) { nodes { timeSeries { metrics { spend } } } } } }"""
    year = {"from": (BASE - timedelta(days=364)).isoformat(), "to": DAY}
    message = await refused(gw, query, {"f": year})  # the variable's default counts: 500 × 365 points
    assert "at most 50000" in message
    assert "errors" not in await gw.query(query, {"f": WEEK, "n": 20})
    # A fragment spread many times is costed each time it is spread.
    spread = "query ($f: UsageFilter!) { " + " ".join(
        f"u{i}: usage(filter: $f) {{ ...S }}" for i in range(25)
    )
    spread += (
        " } fragment S on Usage { byUser(first: 500) { nodes { timeSeries { date metrics { spend } } } } }"
    )
    assert "at most 50000" in await refused(gw, spread, {"f": WEEK})


async def test_every_response_reports_its_cost(gw: Gateway) -> None:
    assert (await gw.query("{ viewer { id } }"))["extensions"] == {"cost": {"requested": 1, "limit": 50_000}}
    forbidden = await gw.query(
        "mutation { syncDirectory { usersCreated } }", token=gw.token("alice", Role.USER)
    )
    assert forbidden["extensions"]["cost"] == {"requested": 100, "limit": 50_000}
    assert (await gw.query("{ nope }"))["extensions"]["cost"]["limit"] == 50_000


# --- Hostile documents ----------------------------------------------------------------------------------


async def test_a_very_deep_query_is_refused_quickly(gw: Gateway) -> None:
    message = await refused(gw, chain(300), {"f": WEEK})
    assert "at most" in message


async def test_a_fragment_bomb_is_refused_quickly(gw: Gateway) -> None:
    # Each fragment spreads the previous one twice under different aliases: 2^30 fields if expanded.
    fragments = ["fragment F0 on UsageMetrics { spend }"]
    fragments += [f"fragment F{i} on UsageMetrics {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, 30)]
    bomb = "query ($f: UsageFilter!) { usage(filter: $f) { totals { ...F29 } } } " + " ".join(fragments)
    body = await gw.query(bomb, {"f": WEEK})  # merges to one field: legal, and cheap
    assert "errors" not in body
    aliased = ["fragment A0 on UserUsage { userId }"]
    aliased += [
        f"fragment A{i} on UserUsage {{ x: models(first: 500) {{ topUsers(first: 500) {{ ...A{i - 1} }} }} }}"
        for i in range(1, 6)
    ]
    query = "query ($f: UsageFilter!) { usage(filter: $f) { byUser(first: 500) { nodes { ...A5 } } } } "
    assert "at most" in await refused(gw, query + " ".join(aliased), {"f": WEEK})


async def test_many_aliases_of_expensive_fields_are_refused_quickly(gw: Gateway) -> None:
    query = "query ($f: UsageFilter!) { " + " ".join(
        f"u{i}: usage(filter: $f) {{ totals {{ spend }} }}" for i in range(400)
    )
    assert "at most" in await refused(gw, query + " }", {"f": WEEK})


# --- HTTP-level limits ----------------------------------------------------------------------------------


async def test_a_body_over_the_limit_is_413(gw: Gateway) -> None:
    headers = {"Authorization": f"Bearer {gw.admin}", "Content-Type": "application/json"}
    big = b'{"query": "{ viewer { id } }", "variables": {"pad": "' + b"x" * 70_000 + b'"}}'
    response = await gw.client.post("/graphql", content=big, headers=headers)
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"] == {"code": "QUERY_TOO_COMPLEX"}
    assert "65536" in response.json()["errors"][0]["message"]

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(20):
            yield b" " * 4096
        yield b'{"query": "{ viewer { id } }"}'

    response = await gw.client.post("/graphql", content=chunked(), headers=headers)
    assert response.status_code == 413


async def test_batches_and_get_queries_are_refused(gw: Gateway) -> None:
    headers = {"Authorization": f"Bearer {gw.admin}"}
    batch = [{"query": "{ viewer { id } }"}, {"query": "{ viewer { roles } }"}]
    response = await gw.client.post("/graphql", json=batch, headers=headers)
    assert response.status_code == 400
    response = await gw.client.get("/graphql", params={"query": "{ viewer { id } }"}, headers=headers)
    assert response.status_code == 405


async def test_an_operation_over_the_timeout_is_cut_short(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def slow(ctx: Context, request: UsageRequest) -> UsageTotals:
        await asyncio.sleep(30)
        raise AssertionError("not cancelled")

    monkeypatch.setattr(usage_resolvers, "totals", slow)
    async with open_gateway(database_url, operation_timeout_seconds=0.5) as gw:
        await seed_days(gw.db, BASE, BASE)
        started = time.monotonic()
        with capture_logs() as logs:
            body = await gw.query(
                '{ usage(filter: {from: "2024-01-22", to: "2024-01-22"}) { totals { spend } } }'
            )
        assert time.monotonic() - started < QUICKLY
        assert codes(body) == ["QUERY_TOO_COMPLEX"]
        assert "0.5 s" in body["errors"][0]["message"]
        assert [entry["event"] for entry in logs if entry["log_level"] == "warning"] == ["graphql.timeout"]


async def test_postgres_cancels_statements_over_the_timeout(database_url: str) -> None:
    db = await Database.open(database_url, max_size=1, statement_timeout_ms=200)
    try:
        with pytest.raises(psycopg.errors.QueryCanceled):
            await db.fetch_one("SELECT pg_sleep(3)")
    finally:
        await db.close()
    resources = await Resources.open(Settings(database_url=database_url, db_statement_timeout_seconds=0.25))
    try:
        assert await resources.db.fetch_one("SHOW statement_timeout") == ("250ms",)
    finally:
        await resources.close()


# --- Rate limit -----------------------------------------------------------------------------------------


async def test_the_rate_limit_answers_429_with_retry_after(database_url: str, redis_url: str) -> None:
    async with open_gateway(database_url, redis_url, rate_limit_cost=100, rate_limit_window_seconds=60) as gw:
        await seed_days(gw.db, BASE, BASE + timedelta(days=6))
        alice, bob = gw.token("alice", Role.USER), gw.token("bob", Role.USER)
        variables = {"f": WEEK, "n": 3}  # costs 55
        assert (await gw.post(BY_USER, variables, token=alice)).status_code == 200
        for _ in range(2):  # refused requests are not charged: still refused, never worse
            response = await gw.post(BY_USER, variables, token=alice)
            assert response.status_code == 429
            assert 1 <= int(response.headers["retry-after"]) <= 60
            assert response.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
            assert response.json()["data"] is None
        assert (await gw.post("{ viewer { id } }", token=alice)).status_code == 200  # costs 1: fits
        assert (await gw.post(BY_USER, variables, token=bob)).status_code == 200  # per subject


async def test_without_redis_the_rate_limit_is_skipped_with_a_warning(database_url: str) -> None:
    with capture_logs() as logs:
        async with open_gateway(database_url, None, rate_limit_cost=1) as gw:
            await seed_days(gw.db, BASE, BASE + timedelta(days=6))
            for _ in range(3):
                assert (await gw.post(BY_USER, {"f": WEEK, "n": 3})).status_code == 200
    assert "rate_limit.disabled" in [entry["event"] for entry in logs]


async def test_the_rate_limit_lets_requests_through_when_redis_fails() -> None:
    redis = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    try:
        limiter = CostRateLimiter(redis, budget=1, window_seconds=60)
        with capture_logs() as logs:
            assert await limiter.charge("alice", 1000) is None
        assert [entry["event"] for entry in logs] == ["redis.unavailable"]
    finally:
        await redis.aclose()
