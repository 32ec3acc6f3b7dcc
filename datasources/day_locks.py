"""One fetch per day across every process: a per-day lock in Redis, or in Postgres without Redis."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import date
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import LockError

from datasources.db import Database
from datasources.errors import UpstreamUnavailable

_ADVISORY_NAMESPACE = 7_250_302  # fixed: "usage-gateway day fetch" among advisory locks


class DayLocks(Protocol):
    def hold(self, day: date) -> contextlib.AbstractAsyncContextManager[None]: ...


class RedisDayLocks:
    """Token locks (redis-py's Lock) that expire if their holder dies mid-fetch."""

    def __init__(self, redis: Redis, *, expire_seconds: float = 120.0, wait_seconds: float = 300.0) -> None:
        self._redis = redis
        self._expire = expire_seconds
        self._wait = wait_seconds

    @contextlib.asynccontextmanager
    async def hold(self, day: date) -> AsyncIterator[None]:
        lock = self._redis.lock(
            f"ug:lock:day:{day.isoformat()}",
            timeout=self._expire,
            sleep=0.05,
            blocking_timeout=self._wait,
            raise_on_release_error=False,
        )
        if not await lock.acquire():
            raise UpstreamUnavailable(f"timed out waiting for another fetch of {day.isoformat()}")
        try:
            yield
        finally:
            with contextlib.suppress(LockError):
                await lock.release()


class PostgresDayLocks:
    """Session advisory locks on a dedicated pooled connection; released if the process dies."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @contextlib.asynccontextmanager
    async def hold(self, day: date) -> AsyncIterator[None]:
        async with self._db.connection() as conn:
            await conn.execute("SELECT pg_advisory_lock(%s, %s)", (_ADVISORY_NAMESPACE, day.toordinal()))
            try:
                yield
            finally:
                await conn.execute(
                    "SELECT pg_advisory_unlock(%s, %s)", (_ADVISORY_NAMESPACE, day.toordinal())
                )
