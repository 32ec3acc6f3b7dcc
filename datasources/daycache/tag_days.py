"""Tag days (``/tag/daily/activity``) in the day cache: the same open/closed rules, single flight and
verification as user days (:class:`~.days.DayCache`), with their own markers, locks and tables
(``tag_days``, ``tag_facts``, migration 0008). They are fetched only when a query asks for tags.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import structlog
from redis.asyncio import Redis

from usage_gateway.datasources.daycache.days import Clock, DayCache, utc_now
from usage_gateway.datasources.daycache.locks import TAG_DAY_NAMESPACE, FailoverDayLocks, PostgresDayLocks
from usage_gateway.datasources.daycache.store import DayState, DayStatus, DayStore, DayWrite
from usage_gateway.datasources.db import Database, note_statement
from usage_gateway.datasources.hot_tier import HotTier
from usage_gateway.datasources.litellm.client import LiteLLMClient
from usage_gateway.datasources.litellm.split import BatchRead
from usage_gateway.datasources.litellm.tag_read import read_tag_days

log = structlog.get_logger(__name__)

_METRICS = (
    "spend, prompt_tokens, completion_tokens, cache_read_input_tokens, cache_creation_input_tokens,"
    " total_tokens, api_requests, successful_requests, failed_requests, total_response_time_ms,"
    " timed_requests"
)
_FACT_COLUMNS = f"date, tag, api_key, model, provider, {_METRICS}"
_FACT_TYPES = ("date", "text", "text", "text", "text", "numeric", *["int8"] * 10)
_STATE_COLUMNS = (
    "date, status, fetched_at, verified, spend, api_requests, total_tokens, fact_count, unverified_fetches"
)


class TagDayStore(DayStore):
    """``tag_days`` and ``tag_facts``: a tag fact is a user fact's shape with the tag where the LiteLLM
    user would be (:class:`~usage_gateway.datasources.litellm.tag_read.TagBatchRead`)."""

    async def states(self, days: Sequence[date]) -> dict[date, DayState]:
        rows = await self._db.fetch_all(
            f"SELECT {_STATE_COLUMNS} FROM tag_days WHERE date = ANY(%s)", (list(days),)
        )
        return {row[0]: DayState(*row) for row in rows}

    async def reopen(self, days: Sequence[date]) -> None:
        await self._db.execute("UPDATE tag_days SET status = 'open' WHERE date = ANY(%s)", (list(days),))

    async def replace_days(self, writes: Sequence[DayWrite]) -> dict[date, DayState]:
        """Swap in several tag days in one transaction (readers see each day old or new, never half)."""
        if not writes:
            return {}
        days = [write.day for write in writes]
        async with self._db.transaction() as conn:
            note_statement("replace_tag_days")
            await conn.execute("DELETE FROM tag_facts WHERE date = ANY(%s)", (days,))
            cursor = conn.cursor()
            async with cursor.copy(f"COPY tag_facts ({_FACT_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(_FACT_TYPES)
                for write in writes:
                    for api_key, tag, model, provider, metrics in write.facts:
                        if any(metrics):
                            await copy.write_row((write.day, tag, api_key, model, provider, *metrics))
            upserted = await conn.execute(
                "INSERT INTO tag_days (date, status, fetched_at, verified, fact_count, spend, api_requests,"
                " total_tokens, unverified_fetches)"
                " SELECT w.date, w.status, w.fetched_at, w.verified, coalesce(s.n, 0),"
                " coalesce(s.spend, 0), coalesce(s.api_requests, 0), coalesce(s.total_tokens, 0),"
                " CASE WHEN w.verified THEN 0 ELSE 1 END"
                " FROM unnest(%s::date[], %s::text[], %s::timestamptz[], %s::boolean[])"
                " AS w (date, status, fetched_at, verified)"
                " LEFT JOIN (SELECT date, count(*) AS n, sum(spend) AS spend,"
                " sum(api_requests) AS api_requests, sum(total_tokens) AS total_tokens"
                " FROM tag_facts WHERE date = ANY(%s) GROUP BY date) s USING (date)"
                " ORDER BY w.date"
                " ON CONFLICT (date) DO UPDATE SET status = EXCLUDED.status,"
                " fetched_at = EXCLUDED.fetched_at, verified = EXCLUDED.verified,"
                " fact_count = EXCLUDED.fact_count, spend = EXCLUDED.spend,"
                " api_requests = EXCLUDED.api_requests, total_tokens = EXCLUDED.total_tokens,"
                " unverified_fetches = CASE WHEN EXCLUDED.verified THEN 0"
                " ELSE tag_days.unverified_fetches + 1 END"
                f" RETURNING {_STATE_COLUMNS}",
                (
                    days,
                    [write.status for write in writes],
                    [write.fetched_at for write in writes],
                    [write.verified for write in writes],
                    days,
                ),
            )
            returned = await upserted.fetchall()
        return {state.date: state for state in (DayState(*row) for row in returned)}


class TagDayCache(DayCache):
    """The day cache over tag days: :meth:`ensure` and :meth:`refresh` behave as for user days."""

    MARKER_PREFIX = "ug:tag-day:"

    def __init__(
        self,
        db: Database,
        client: LiteLLMClient | None,
        redis: HotTier | Redis | None = None,
        *,
        today_ttl_seconds: float = 300,
        close_after_hours: float = 2,
        concurrency: int = 8,
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(
            db,
            client,
            redis,
            today_ttl_seconds=today_ttl_seconds,
            close_after_hours=close_after_hours,
            concurrency=concurrency,
            clock=clock,
        )
        self._store = TagDayStore(db)
        self._locks = (
            FailoverDayLocks(self._hot, db, prefix="ug:lock:tag-day:", namespace=TAG_DAY_NAMESPACE)
            if self._hot
            else PostgresDayLocks(db, namespace=TAG_DAY_NAMESPACE)
        )

    async def _read_days(self, client: LiteLLMClient, days: list[date]) -> BatchRead:
        return await read_tag_days(client, days)

    async def _store_days(
        self, days: list[date], read: BatchRead, mismatches: dict[date, str | None], started: datetime
    ) -> dict[date, DayState]:
        writes = []
        for day in days:
            verified = mismatches[day] is None
            if not verified:
                log.warning("tag_day.unverified", day=day.isoformat(), why=mismatches[day])
            closes_at = (
                datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC) + self._close_after
            )
            status: DayStatus = "closed" if verified and started >= closes_at else "open"
            writes.append(DayWrite(day, read.facts[day], {}, status, verified, started))
        async with self._write_slots:
            states = await self._store.replace_days(writes)
        for state in states.values():
            log.info(
                "tag_day.fetched",
                day=state.date.isoformat(),
                status=state.status,
                verified=state.verified,
                facts=state.fact_count,
            )
        return states
