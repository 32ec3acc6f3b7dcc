"""A gateway data layer (Postgres, optional Redis, LiteLLM client, day cache) for one test."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from redis.asyncio import Redis

from usage_gateway.datasources.daycache.days import Clock, DayCache
from usage_gateway.datasources.db import Database
from usage_gateway.datasources.litellm.client import LiteLLMClient
from usage_gateway.datasources.litellm.day_metrics import DayMetrics

MASTER_KEY = "sk-master-1234"


def clock_at(moment: datetime) -> Clock:
    """A clock that starts at ``moment`` and runs at real speed (Redis TTLs run in real time)."""
    offset = moment - datetime.now(UTC)
    return lambda: datetime.now(UTC) + offset


def long_after(day: date) -> datetime:
    """A moment when ``day`` is closed under any sane CLOSE_AFTER."""
    return datetime.combine(day + timedelta(days=3), time(12), UTC)


@dataclass
class Gateway:
    db: Database
    client: LiteLLMClient
    days: DayCache
    redis: Redis | None


@contextlib.asynccontextmanager
async def gateway(
    database_url: str,
    litellm_url: str,
    *,
    redis_url: str | None = None,
    clock: Clock,
    page_size: int = 1000,
    today_ttl_seconds: float = 300,
    retries: int = 2,
    timeout_seconds: float = 5.0,
    concurrency: int = 8,
    master_key: str = MASTER_KEY,
) -> AsyncIterator[Gateway]:
    db = await Database.open(database_url, max_size=2 * concurrency + 4)
    redis = Redis.from_url(redis_url) if redis_url else None
    client = LiteLLMClient(
        litellm_url,
        master_key,
        timeout_seconds=timeout_seconds,
        retries=retries,
        concurrency=concurrency,
        page_size=page_size,
        backoff_seconds=0.01,
    )
    days = DayCache(
        db, client, redis, today_ttl_seconds=today_ttl_seconds, concurrency=concurrency, clock=clock
    )
    try:
        yield Gateway(db, client, days, redis)
    finally:
        await client.close()
        if redis is not None:
            await redis.aclose()
        await db.close()


async def stored_cells(db: Database) -> dict[tuple[date, str, str, str, str], DayMetrics]:
    rows = await db.fetch_all(
        "SELECT date, api_key, litellm_user_id, model, provider, spend, prompt_tokens, completion_tokens,"
        " cache_read_input_tokens, cache_creation_input_tokens, total_tokens, api_requests,"
        " successful_requests, failed_requests, total_response_time_ms, timed_requests FROM usage_facts"
    )
    return {(row[0], row[1], row[2], row[3], row[4]): DayMetrics(*row[5:]) for row in rows}
