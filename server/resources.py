"""Opens and closes what the gateway talks to: Postgres, Redis (optional), LiteLLM, the day cache, the
answer cache."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import structlog
from redis.asyncio import Redis

from usage_gateway.datasources.answer_cache import AnswerCache
from usage_gateway.datasources.daycache.days import Clock, DayCache, utc_now
from usage_gateway.datasources.daycache.tag_days import TagDayCache
from usage_gateway.datasources.db import Database
from usage_gateway.datasources.hot_tier import POOL_CONNECTIONS, HotTier, connect
from usage_gateway.datasources.litellm.client import LiteLLMClient
from usage_gateway.migrations import apply_migrations
from usage_gateway.server.config import Settings

log = structlog.get_logger(__name__)

REDIS_CONNECTIONS = POOL_CONNECTIONS  # per process (hot_tier.connect)


def _answer_cache(settings: Settings, redis: HotTier | Redis | None, clock: Clock) -> AnswerCache | None:
    """On with Redis and ANSWER_CACHE_TTL_SECONDS > 0."""
    ttl = settings.answer_cache_ttl_seconds
    if redis is None or ttl <= 0:
        return None
    return AnswerCache(redis, ttl, today_ttl_seconds=settings.today_ttl_seconds, clock=clock)


def _tag_days(
    settings: Settings, db: Database, litellm: LiteLLMClient | None, hot: HotTier | None, clock: Clock
) -> TagDayCache:
    """Tag days follow the user days' settings: same freshness, closing and concurrency."""
    return TagDayCache(
        db,
        litellm,
        hot,
        today_ttl_seconds=settings.today_ttl_seconds,
        close_after_hours=settings.close_after_hours,
        concurrency=settings.litellm_concurrency,
        clock=clock,
    )


@dataclass
class Resources:
    settings: Settings
    db: Database
    redis: Redis | None  # the client; its users go through ``hot``, which fails open
    litellm: LiteLLMClient | None
    days: DayCache
    # Built from the settings when not given: on with Redis and ANSWER_CACHE_TTL_SECONDS > 0.
    answers: AnswerCache | None = None
    hot: HotTier | None = None  # built around ``redis`` when not given
    tag_days: TagDayCache | None = None  # built from the settings when not given (issue 16: tags)

    def __post_init__(self) -> None:
        if self.hot is None and self.redis is not None:
            self.hot = HotTier(self.redis)
        if self.tag_days is None:
            self.tag_days = _tag_days(self.settings, self.db, self.litellm, self.hot, utc_now)
        if self.answers is None:
            self.answers = _answer_cache(self.settings, self.hot, utc_now)

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        clock: Clock = utc_now,
        transport: httpx.AsyncBaseTransport | None = None,
        litellm_backoff_seconds: float = 0.2,
    ) -> Resources:
        """Everything the settings name, opened. The keywords are for tests and benchmarks, their defaults
        what the server runs with: ``clock`` is the day cache's and the answer cache's now (which days
        are closed, how long an answer lives); ``transport`` carries the LiteLLM client's requests (the
        network, or e.g. one that injects faults); ``litellm_backoff_seconds`` scales the client's
        randomised wait between retries (LITELLM_RETRIES says how many)."""
        if settings.migrate_on_start:
            apply_migrations(settings.database_url)
        # Day fetches hold a connection for their lock (without Redis) and another to write the day.
        pool_size = max(settings.db_pool_size, 2 * settings.litellm_concurrency + 4)
        db = await Database.open(
            settings.database_url,
            max_size=pool_size,
            statement_timeout_ms=round(settings.db_statement_timeout_seconds * 1000),
        )
        redis: Redis | None = None
        hot: HotTier | None = None
        if settings.redis_url:
            # Not pinged: a Redis that is down now is the hot tier's outage, not a reason not to start.
            redis = connect(settings.redis_url)
            hot = HotTier(redis)
        else:
            log.warning("redis.absent", effect="Postgres advisory locks, no answer cache")
        litellm: LiteLLMClient | None = None
        if settings.litellm_url:
            master_key = settings.litellm_master_key.get_secret_value() if settings.litellm_master_key else ""
            litellm = LiteLLMClient(
                settings.litellm_url,
                master_key,
                timeout_seconds=settings.litellm_timeout_seconds,
                retries=settings.litellm_retries,
                concurrency=settings.litellm_concurrency,
                page_size=settings.litellm_page_size,
                backoff_seconds=litellm_backoff_seconds,
                transport=transport,
            )
        else:
            log.warning("litellm.absent", effect="only days already stored are served")
        days = DayCache(
            db,
            litellm,
            hot,
            today_ttl_seconds=settings.today_ttl_seconds,
            close_after_hours=settings.close_after_hours,
            concurrency=settings.litellm_concurrency,
            clock=clock,
        )
        tag_days = _tag_days(settings, db, litellm, hot, clock)
        return cls(settings, db, redis, litellm, days, _answer_cache(settings, hot, clock), hot, tag_days)

    async def close(self) -> None:
        if self.litellm is not None:
            await self.litellm.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.db.close()
