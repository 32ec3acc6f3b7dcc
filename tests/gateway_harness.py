"""A gateway data layer (Postgres, optional Redis, LiteLLM client, day cache) for one test, opened as the
server opens it: ``Resources.open``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import httpx
from redis.asyncio import Redis

from usage_gateway.datasources.daycache.days import Clock, DayCache
from usage_gateway.datasources.db import Database
from usage_gateway.datasources.litellm.client import LiteLLMClient
from usage_gateway.datasources.litellm.day_metrics import DayMetrics
from usage_gateway.server.config import Settings
from usage_gateway.server.resources import Resources

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
    resources: Resources

    @property
    def db(self) -> Database:
        return self.resources.db

    @property
    def client(self) -> LiteLLMClient:
        assert self.resources.litellm is not None
        return self.resources.litellm

    @property
    def days(self) -> DayCache:
        return self.resources.days

    @property
    def redis(self) -> Redis | None:
        return self.resources.redis


@contextlib.asynccontextmanager
async def gateway(
    database_url: str,
    litellm_url: str,
    *,
    redis_url: str | None = None,
    clock: Clock,
    page_size: int = 1000,
    today_ttl_seconds: int = 300,
    retries: int = 2,
    timeout_seconds: float = 5.0,
    concurrency: int = 8,
    master_key: str = MASTER_KEY,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[Gateway]:
    """What ``Resources.open`` opens for these settings, retrying soon (``transport``: the LiteLLM
    client's, e.g. one that injects faults)."""
    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        litellm_url=litellm_url,
        litellm_master_key=master_key,
        litellm_concurrency=concurrency,
        litellm_page_size=page_size,
        litellm_timeout_seconds=timeout_seconds,
        litellm_retries=retries,
        today_ttl_seconds=today_ttl_seconds,
    )
    resources = await Resources.open(settings, clock=clock, transport=transport, litellm_backoff_seconds=0.01)
    try:
        yield Gateway(resources)
    finally:
        await resources.close()


async def stored_cells(db: Database) -> dict[tuple[date, str, str, str, str], DayMetrics]:
    rows = await db.fetch_all(
        "SELECT date, api_key, litellm_user_id, model, provider, spend, prompt_tokens, completion_tokens,"
        " cache_read_input_tokens, cache_creation_input_tokens, total_tokens, api_requests,"
        " successful_requests, failed_requests, total_response_time_ms, timed_requests FROM usage_facts"
    )
    return {(row[0], row[1], row[2], row[3], row[4]): DayMetrics(*row[5:]) for row in rows}
