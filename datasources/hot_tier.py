"""Redis as the hot tier: every Redis access of the gateway goes through :class:`HotTier`, which fails open.

Redis only ever makes things faster or cheaper (day markers, answers, the rate limit's counters, the day
locks), never decides an answer, so its failure must not fail a request. A call that cannot use Redis
(refused, timed out, reset, an answer that is not Redis's, a read-only replica) raises
:class:`HotTierDown`, which each user turns into its fallback:

- day markers: read from Postgres' day states instead (``daycache.days``);
- day locks: Postgres advisory locks instead (``daycache.locks``);
- answers: not looked up and not stored (``answer_cache``);
- the rate limit: the request is let through (``rate_limit``): the limit protects capacity, an outage of
  the limit's store is not worth an outage of the API.

After such a failure Redis is left alone for :data:`BACKOFF_SECONDS`: calls meanwhile raise at once
instead of each waiting for a connect timeout. Then one call (only one at a time) tries again; the
first that succeeds ends the outage. An outage is logged once when it starts and once when it ends,
not per request. The client reconnects by itself: a failed connection is dropped and the next command
opens a new one.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    DataError,
    LockError,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    WatchError,
)

log = structlog.get_logger("usage_gateway.hot_tier")

T = TypeVar("T")

# A dead Redis must cost milliseconds, not the client's default 5 s per connect and per command.
CONNECT_TIMEOUT_SECONDS = 0.25
COMMAND_TIMEOUT_SECONDS = 1.0
BACKOFF_SECONDS = 1.0
# Redis connections per process. Requests beyond them wait for one (at most POOL_WAIT_SECONDS) rather
# than fail at once: redis-py's default pool raises "Too many connections" as soon as 100 are in use.
POOL_CONNECTIONS = 64
POOL_WAIT_SECONDS = 10.0

# Refusals of one command (a wrong type, a script error, a lock no longer held): Redis itself is fine.
_COMMAND_ERRORS = (ResponseError, DataError, LockError, WatchError)
# Refusals that every command would meet: an outage as much as a closed port.
_REDIS_WIDE = (ReadOnlyError, OutOfMemoryError, NoPermissionError)


def _is_outage(exc: Exception) -> bool:
    """Whether Redis is unusable as a whole (unreachable, timing out, not speaking Redis, refusing every
    write), rather than refusing one command."""
    return isinstance(exc, _REDIS_WIDE) or not isinstance(exc, _COMMAND_ERRORS)


class HotTierDown(Exception):
    """Redis did not answer, or is in back-off after an outage: take the path without it."""


def connect(url: str) -> Redis:
    """A Redis client with short timeouts and one immediate retry, which reconnects a connection that a
    restart of Redis broke."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_CONNECTIONS,
        timeout=POOL_WAIT_SECONDS,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=COMMAND_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 1),
    )
    return Redis.from_pool(pool)


class HotTier:
    def __init__(
        self,
        client: Redis,
        *,
        backoff_seconds: float = BACKOFF_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self._backoff = backoff_seconds
        self._monotonic = monotonic
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._probing = False

    @classmethod
    def of(cls, redis: Redis | HotTier) -> HotTier:
        return redis if isinstance(redis, HotTier) else cls(redis)

    @property
    def up(self) -> bool:
        """False during an outage (until a call succeeds again)."""
        return self._down_since is None

    async def call(self, what: str, operation: Callable[[Redis], Awaitable[T]]) -> T:
        """``operation`` on the client; :class:`HotTierDown` if Redis cannot be reached (or is in back-off).

        ``what`` names the use in the outage's log line. A command that Redis refuses on its own (a wrong
        type, a script error) raises :class:`HotTierDown` too, but starts no outage.
        """
        probe = False
        if self._down_since is not None:
            if self._probing or self._monotonic() < self._retry_at:
                raise HotTierDown("Redis is unavailable (in back-off)")
            self._probing = probe = True
        try:
            result = await operation(self.client)
        except (RedisError, OSError) as exc:
            if not _is_outage(exc):
                log.warning("redis.error", during=what, error=str(exc))
                raise HotTierDown(f"Redis refused the command: {exc}") from exc
            self._failed(what, exc)
            raise HotTierDown(f"Redis is unavailable: {exc}") from exc
        finally:
            if probe:
                self._probing = False
        if self._down_since is not None:
            log.warning(
                "redis.recovered", during=what, outage_seconds=round(self._monotonic() - self._down_since, 3)
            )
            self._down_since = None
        return result

    async def attempt(self, what: str, operation: Callable[[Redis], Awaitable[T]], fallback: T) -> T:
        """:meth:`call`, with ``fallback`` as the result when Redis is unavailable."""
        try:
            return await self.call(what, operation)
        except HotTierDown:
            return fallback

    def _failed(self, what: str, exc: BaseException) -> None:
        now = self._monotonic()
        self._retry_at = now + self._backoff
        if self._down_since is None:
            self._down_since = now
            log.warning(
                "redis.unavailable",
                during=what,
                error=str(exc) or type(exc).__name__,
                effect="day states and locks from Postgres, answers uncached, rate limit not applied",
            )

    async def ping(self) -> None:
        """Raises if Redis does not answer now (for /readyz: bypasses the back-off)."""
        await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()
