"""The gateway's ASGI app on real Postgres and Redis, with a directory and stored days seeded by SQL.

The day cache has no LiteLLM client: it serves the days seeded in ``usage_days`` and reports any other
day as missing, so these tests exercise the API alone (the path through LiteLLM is tested elsewhere).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from tests.facts_data import next_bucket, py_groups, py_order, py_series
from usage_gateway.datasources.daycache.days import Clock, days_between, utc_now
from usage_gateway.datasources.db import Database, StatementCounter, count_statements
from usage_gateway.datasources.facts.aggregates import Dimension, FactFilter, GroupRow, Order, UsageTotals
from usage_gateway.resolvers.viewer import Role
from usage_gateway.schema.scalars import decimal_text
from usage_gateway.server.app import create_app
from usage_gateway.server.config import Settings
from usage_gateway.server.resources import Resources
from usage_gateway.server.tokens import issue_token

LITELLM_MASTER_KEY = "sk-master-1234"  # what the LiteLLM-compatible server accepts by default
SECRET = "test-secret-" + "0123456789abcdef" * 4  # long enough for HS384 too


def token_hash(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


@dataclass(frozen=True)
class DirectoryUser:
    id: str
    username: str | None = None
    email: str | None = None
    department: str | None = None


@dataclass(frozen=True)
class DirectoryKey:
    id: str
    token_hash: str
    user_id: str | None
    name: str | None = None
    revoked: bool = False


@dataclass
class Gateway:
    client: httpx.AsyncClient
    db: Database
    settings: Settings
    admin: str = field(init=False)

    def __post_init__(self) -> None:
        self.admin = self.token("admin", Role.ADMIN)

    def token(self, sub: str, *roles: Role) -> str:
        return issue_token(SECRET, sub, roles)

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.admin}"}
        return await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )

    async def query(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        """The JSON body of a POST that must answer HTTP 200."""
        response = await self.post(query, variables, token=token)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> Any:
        """The data of a query that must succeed without any error."""
        body = await self.query(query, variables, token=token)
        assert "errors" not in body, body["errors"]
        return body["data"]

    async def statements(self, query: str, variables: dict[str, Any] | None = None) -> tuple[int, Any]:
        """SQL statements one request costs, and its data."""
        counter, data = await self.counted(query, variables)
        return counter.count, data

    async def counted(
        self, query: str, variables: dict[str, Any] | None = None
    ) -> tuple[StatementCounter, Any]:
        """The SQL statements one request ran, and its data."""
        with count_statements() as counter:
            data = await self.data(query, variables)
        return counter, data


@asynccontextmanager
async def open_gateway(
    database_url: str,
    redis_url: str | None = None,
    *,
    litellm_url: str | None = None,
    clock: Clock = utc_now,
    **overrides: Any,
) -> AsyncIterator[Gateway]:
    """The app on real Postgres (and Redis), opened by ``Resources.open``; with ``litellm_url`` its day
    cache reads that LiteLLM, retrying once, soon."""
    settings = Settings(
        **{
            "database_url": database_url,
            "redis_url": redis_url,
            "jwt_secret": SECRET,
            "litellm_url": litellm_url,
            "litellm_master_key": LITELLM_MASTER_KEY,
            "litellm_retries": 1,
            # Tests write facts straight into Postgres, which moves no data version: answers cached by an
            # earlier example would be served. tests/test_answer_cache.py turns the cache on.
            "answer_cache_ttl_seconds": 0,
            **overrides,
        }
    )
    resources = await Resources.open(settings, clock=clock, litellm_backoff_seconds=0.01)
    app = create_app(settings, resources=resources)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway"
        ) as client:
            yield Gateway(client, resources.db, settings)
    finally:
        await resources.close()


# --- Seeding --------------------------------------------------------------------------------------------


async def seed_days(db: Database, start: date, end: date) -> None:
    """Mark every day of the range as stored and closed (its facts are whatever usage_facts holds)."""
    now = datetime.now(UTC)
    async with db.transaction() as conn, conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO usage_days (date, status, fetched_at, verified, fact_count, spend, api_requests,"
            " total_tokens) VALUES (%s, 'closed', %s, true, 0, 0, 0, 0) ON CONFLICT (date) DO NOTHING",
            [(day, now) for day in days_between(start, end)],
        )


async def seed_directory(db: Database, users: Iterable[DirectoryUser], keys: Iterable[DirectoryKey]) -> None:
    """Insert users and keys; do it before the facts (inserting keys re-attributes their facts)."""
    async with db.transaction() as conn, conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO users (id, username, email, department) VALUES (%s, %s, %s, %s)",
            [(u.id, u.username, u.email, u.department) for u in users],
        )
        await cursor.executemany(
            "INSERT INTO api_keys (id, token_hash, user_id, name, revoked_at) VALUES (%s, %s, %s, %s, %s)",
            [(k.id, k.token_hash, k.user_id, k.name, datetime.now(UTC) if k.revoked else None) for k in keys],
        )


# --- What the API must answer, from the Python model of the facts ---------------------------------------


def metrics(t: UsageTotals) -> dict[str, Any]:
    return {
        "spend": float(t.spend),
        "requests": t.requests,
        "successfulRequests": t.successful_requests,
        "failedRequests": t.failed_requests,
        "successRate": t.success_rate,
        "promptTokens": t.prompt_tokens,
        "completionTokens": t.completion_tokens,
        "cacheReadInputTokens": t.cache_read_input_tokens,
        "cacheCreationInputTokens": t.cache_creation_input_tokens,
        "totalTokens": t.total_tokens,
        "averageLatencyMs": t.average_latency_ms,
        "activeUsers": t.active_users,
        "activeApiKeys": t.active_api_keys,
        "activeModels": t.active_models,
    }


METRICS = " ".join(metrics(UsageTotals.ZERO))


def share(part: Decimal, whole: Decimal) -> float:
    return float(part / whole) if whole else 0.0


def exact_metrics(t: UsageTotals) -> dict[str, Any]:
    """:func:`metrics` with ``spendExact``, the exact sum as text."""
    return {**metrics(t), "spendExact": decimal_text(t.spend)}


EXACT_METRICS = " ".join(exact_metrics(UsageTotals.ZERO))


def series(facts: Sequence[Any], f: FactFilter, granularity: Any) -> list[dict[str, Any]]:
    """The points of ``date from to metrics { EXACT_METRICS }``: each bucket's days clipped to the range."""
    return [
        {
            "date": day.isoformat(),
            "from": max(day, f.date_from).isoformat(),
            "to": min(next_bucket(day, granularity) - timedelta(days=1), f.date_to).isoformat(),
            "metrics": exact_metrics(t),
        }
        for day, t in py_series(facts, f, granularity)
    ]


DEFAULT_ORDER = Order()


def ranked(
    facts: Sequence[Any], f: FactFilter, dimension: Dimension, order: Order = DEFAULT_ORDER
) -> list[GroupRow]:
    """The groups of the matching facts, in the order the API pages them."""
    return py_order(py_groups(facts, f, dimension), order)


def own(facts: Sequence[Any], dimension: Dimension, key: str) -> list[Any]:
    return [fact for fact in facts if fact.value(dimension) == key]
