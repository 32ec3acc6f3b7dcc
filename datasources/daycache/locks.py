"""One fetch per day across every process: per-day locks in Redis, or in Postgres without Redis.

Days are fetched in batches, so a holder takes the locks of all its days, always in ascending date order:
two processes wanting overlapping batches then queue on their first common day instead of each holding
what the other waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection
from datetime import date
from typing import Protocol

import structlog
from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError

from usage_gateway.datasources.db import Database
from usage_gateway.errors import UpstreamUnavailable

log = structlog.get_logger(__name__)

_ADVISORY_NAMESPACE = 7_250_302  # fixed: "usage-gateway day fetch" among advisory locks


class DayLocks(Protocol):
    def hold(self, days: Collection[date]) -> contextlib.AbstractAsyncContextManager[None]: ...


class RedisDayLocks:
    """Token locks (redis-py's Lock) that expire if their holder dies mid-fetch.

    A live holder renews them while it waits for the rest of its days and while it fetches, so a batch
    that takes longer than ``expire_seconds`` keeps its days.
    """

    def __init__(self, redis: Redis, *, expire_seconds: float = 120.0, wait_seconds: float = 300.0) -> None:
        self._redis = redis
        self._expire = expire_seconds
        self._wait = wait_seconds

    @contextlib.asynccontextmanager
    async def hold(self, days: Collection[date]) -> AsyncIterator[None]:
        held: list[Lock] = []
        renewal = asyncio.create_task(self._renew(held))
        try:
            for day in sorted(set(days)):
                lock = self._redis.lock(
                    f"ug:lock:day:{day.isoformat()}",
                    timeout=self._expire,
                    sleep=0.05,
                    blocking_timeout=self._wait,
                    raise_on_release_error=False,
                )
                if not await lock.acquire():
                    raise UpstreamUnavailable(f"timed out waiting for another fetch of {day.isoformat()}")
                held.append(lock)
            yield
        finally:
            renewal.cancel()
            for lock in reversed(held):
                with contextlib.suppress(LockError):
                    await lock.release()

    async def _renew(self, held: list[Lock]) -> None:
        while True:
            await asyncio.sleep(self._expire / 3)
            for lock in list(held):
                try:
                    await lock.reacquire()
                except LockError:
                    log.warning("day_lock.lost", lock=str(lock.name))


class PostgresDayLocks:
    """Session advisory locks, all of a batch on one dedicated pooled connection; released if the process
    dies."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @contextlib.asynccontextmanager
    async def hold(self, days: Collection[date]) -> AsyncIterator[None]:
        async with self._db.connection() as conn:
            try:
                for day in sorted(set(days)):
                    await conn.execute(
                        "SELECT pg_advisory_lock(%s, %s)", (_ADVISORY_NAMESPACE, day.toordinal())
                    )
                yield
            finally:
                # The connection is ours alone while we hold it: every advisory lock on it is one of ours.
                await conn.execute("SELECT pg_advisory_unlock_all()")
