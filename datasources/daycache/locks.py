"""One fetch per day across every process: per-day locks in Redis, or in Postgres without Redis.

Days are fetched in batches, so a holder takes the locks of all its days, always in ascending date order:
two processes wanting overlapping batches then queue on their first common day instead of each holding
what the other waits for.

With Redis configured, :class:`FailoverDayLocks` takes Redis locks while Redis answers and Postgres
advisory locks while it does not (see :mod:`hot_tier`). The two kinds do not exclude each other: for the
moment when one process still holds a day in Redis and another, which just found Redis gone, takes it in
Postgres, both may fetch it. Each then replaces the day in one transaction, so the day stays whole; the
cost is a second read of it from LiteLLM, once per outage at most.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from datetime import date
from typing import Protocol, TypeVar

import structlog
from psycopg.errors import QueryCanceled
from redis.asyncio import Redis
from redis.asyncio.lock import Lock

from usage_gateway.datasources.db import Database
from usage_gateway.datasources.hot_tier import HotTier, HotTierDown
from usage_gateway.errors import UpstreamUnavailable

log = structlog.get_logger(__name__)

T = TypeVar("T")

_ADVISORY_NAMESPACE = 7_250_302  # fixed: "usage-gateway day fetch" among advisory locks
TAG_DAY_NAMESPACE = 7_250_308  # fixed: "usage-gateway tag day fetch" (a tag day is fetched on its own)


def _on(method: Callable[[], Awaitable[T]]) -> Callable[[Redis], Awaitable[T]]:
    """A lock's method as an operation of the hot tier (the lock carries its own client)."""
    return lambda _: method()


class DayLocks(Protocol):
    def hold(self, days: Collection[date]) -> contextlib.AbstractAsyncContextManager[None]: ...


class RedisDayLocks:
    """Token locks (redis-py's Lock) that expire if their holder dies mid-fetch.

    A live holder renews them while it waits for the rest of its days and while it fetches, so a batch
    that takes longer than ``expire_seconds`` keeps its days. Raises :class:`HotTierDown` if Redis fails
    while the locks are taken (those already taken are released first).
    """

    def __init__(
        self,
        hot: HotTier,
        *,
        expire_seconds: float = 120.0,
        wait_seconds: float = 300.0,
        prefix: str = "ug:lock:day:",
    ) -> None:
        self._hot = hot
        self._prefix = prefix
        self._expire = expire_seconds
        self._wait = wait_seconds

    @contextlib.asynccontextmanager
    async def hold(self, days: Collection[date]) -> AsyncIterator[None]:
        held: list[Lock] = []
        renewal = asyncio.create_task(self._renew(held))
        try:
            for day in sorted(set(days)):
                lock = self._hot.client.lock(
                    f"{self._prefix}{day.isoformat()}",
                    timeout=self._expire,
                    sleep=0.05,
                    blocking_timeout=self._wait,
                    raise_on_release_error=False,
                )
                if not await self._hot.call("day_lock", _on(lock.acquire)):
                    raise UpstreamUnavailable(f"timed out waiting for another fetch of {day.isoformat()}")
                held.append(lock)
            yield
        finally:
            renewal.cancel()
            for lock in reversed(held):
                # Gone with a Redis that went away meanwhile, or expired: either way no longer ours.
                await self._hot.attempt("day_lock", _on(lock.release), None)

    async def _renew(self, held: list[Lock]) -> None:
        while True:
            await asyncio.sleep(self._expire / 3)
            for lock in list(held):
                try:
                    await self._hot.call("day_lock", _on(lock.reacquire))
                except HotTierDown:
                    log.warning("day_lock.lost", lock=str(lock.name))


class PostgresDayLocks:
    """Session advisory locks, all of a batch on one dedicated pooled connection; released if the process
    dies. Waiting for another holder is bounded by ``wait_seconds``, as with the Redis locks, not by the
    statement timeout meant for queries."""

    def __init__(
        self, db: Database, *, wait_seconds: float = 300.0, namespace: int = _ADVISORY_NAMESPACE
    ) -> None:
        self._db = db
        self._namespace = namespace
        self._wait_ms = str(round(wait_seconds * 1000))

    @contextlib.asynccontextmanager
    async def hold(self, days: Collection[date]) -> AsyncIterator[None]:
        async with self._db.connection() as conn:
            try:
                await conn.execute("SELECT set_config('statement_timeout', %s, false)", (self._wait_ms,))
                for day in sorted(set(days)):
                    try:
                        await conn.execute(
                            "SELECT pg_advisory_lock(%s, %s)", (self._namespace, day.toordinal())
                        )
                    except QueryCanceled as exc:
                        raise UpstreamUnavailable(
                            f"timed out waiting for another fetch of {day.isoformat()}"
                        ) from exc
                await conn.execute("RESET statement_timeout")  # the session's own, from its options
                yield
            finally:
                await conn.execute("RESET statement_timeout")
                # The connection is ours alone while we hold it: every advisory lock on it is one of ours.
                await conn.execute("SELECT pg_advisory_unlock_all()")


class FailoverDayLocks:
    """Redis locks while Redis answers, Postgres advisory locks while it does not."""

    def __init__(
        self,
        hot: HotTier,
        db: Database,
        *,
        prefix: str = "ug:lock:day:",
        namespace: int = _ADVISORY_NAMESPACE,
    ) -> None:
        self._redis = RedisDayLocks(hot, prefix=prefix)
        self._postgres = PostgresDayLocks(db, namespace=namespace)

    @contextlib.asynccontextmanager
    async def hold(self, days: Collection[date]) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(self._redis.hold(days))
            except HotTierDown:
                await stack.enter_async_context(self._postgres.hold(days))
            yield
