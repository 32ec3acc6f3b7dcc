"""The answer cache (DESIGN §3, Tier 1): whole query answers in Redis, keyed by viewer scope, operation and
variables, and valid only at the data version they were computed at.

Every write of a day and every directory sync that changed something INCRs ``DATA_VERSION_KEY``
(:mod:`~usage_gateway.datasources.daycache.days`); an entry carries the version read *before* its answer
was computed, so a write that lands while an answer is being computed makes that answer miss rather than
serve stale numbers. Writes that bypass the gateway (the host application editing ``users`` or
``api_keys``) do not move the version: entries live at most ``ttl_seconds``, which bounds that staleness.
An answer over open days lives no longer than its oldest open day stays fresh (``as_of + today_ttl``),
and no entry outlives the UTC day it was computed on ("today" moves every range's last present day).

Redis failures never fail a request (:mod:`hot_tier`): a lookup that fails is a miss, a store that fails
is skipped.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import structlog
from redis.asyncio import Redis

from usage_gateway.datasources.daycache.days import DATA_VERSION_KEY, Clock, RangeReport, utc_now
from usage_gateway.datasources.hot_tier import HotTier, HotTierDown

log = structlog.get_logger(__name__)

KEY_PREFIX = "ug:answer:"
# Part of every key: change it when what is stored, or how an answer is computed, changes incompatibly.
FORMAT = "answer-v1"
# Larger answers are recomputed rather than stored (a few such entries would crowd out the day markers).
MAX_ANSWER_BYTES = 4 * 1024 * 1024


def answer_key(
    subject: str,
    roles: Iterable[str],
    query: str,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
) -> str:
    """The Redis key of an answer: a sha256 over the viewer's scope, the operation and its variables.

    ``query`` is the document's canonical text (printed back from its syntax tree), so that texts that
    differ only in comments or whitespace share a key.

    Raises ``TypeError`` for variables JSON cannot carry (then the answer is not cached).
    """
    material = orjson.dumps(
        [FORMAT, subject, sorted(map(str, roles)), operation_name, query, variables or {}],
        option=orjson.OPT_SORT_KEYS,
    )
    return KEY_PREFIX + hashlib.sha256(material).hexdigest()


@dataclass(frozen=True)
class Lookup:
    """What a lookup found: the answer (``None`` on a miss) and the data version it was read at."""

    answer: dict[str, Any] | None
    version: bytes | None


@dataclass(frozen=True)
class RawLookup:
    """What a lookup found, undecoded: the answer's JSON as stored (``None`` on a miss) and the version."""

    answer: memoryview | None
    version: bytes | None


_FAILED = RawLookup(None, None)


def _as_bytes(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


class AnswerCache:
    def __init__(
        self,
        redis: HotTier | Redis,
        ttl_seconds: float,
        *,
        today_ttl_seconds: float = 300,
        clock: Clock = utc_now,
    ) -> None:
        self._hot = HotTier.of(redis)
        self._ttl = timedelta(seconds=ttl_seconds)
        self._today_ttl = timedelta(seconds=today_ttl_seconds)
        self._clock = clock
        # Answers being computed in this process, by key: identical requests arriving meanwhile wait for
        # the first one's answer instead of computing it again (50 clients opening one dashboard).
        self._computing: dict[str, asyncio.Future[dict[str, Any] | None]] = {}

    def computing(self, key: str) -> asyncio.Future[dict[str, Any] | None] | None:
        """The answer under ``key`` another request of this process is computing, if any."""
        return self._computing.get(key)

    def begin(self, key: str) -> asyncio.Future[dict[str, Any] | None]:
        """Announce that this request computes the answer under ``key``; :meth:`finish` it always."""
        future: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._computing[key] = future
        return future

    def finish(
        self, key: str, future: asyncio.Future[dict[str, Any] | None], answer: dict[str, Any] | None
    ) -> None:
        """Hand ``answer`` (None: not shareable, the waiters compute their own) to the waiters."""
        if self._computing.get(key) is future:
            del self._computing[key]
        if not future.done():
            future.set_result(answer)

    async def lookup_raw(self, key: str) -> RawLookup:
        """The answer stored under ``key`` at the current data version, in one round trip, as the JSON
        object it was stored as (a hit can be written out without decoding it)."""
        try:
            version, stored = map(_as_bytes, await self._hot.call("answer_cache", _read(key)))
            if version is None:
                version = await self._hot.call("answer_cache", _initial_version)
        except HotTierDown:  # answered without the cache (the hot tier logs the outage)
            return _FAILED
        prefix = version + b"|"
        # Only this module writes entries (orjson, an object); anything else is not served.
        if stored is None or not stored.startswith(prefix):
            return RawLookup(None, version)
        if not stored.startswith(b"{", len(prefix)) or not stored.endswith(b"}"):
            log.warning("answer_cache.unreadable_entry", key=key)
            return RawLookup(None, version)
        return RawLookup(memoryview(stored)[len(prefix) :], version)

    async def lookup(self, key: str) -> Lookup:
        """The answer stored under ``key`` at the current data version, decoded."""
        raw = await self.lookup_raw(key)
        if raw.answer is None:
            return Lookup(None, raw.version)
        try:
            answer = orjson.loads(raw.answer)
        except orjson.JSONDecodeError:
            log.warning("answer_cache.unreadable_entry", key=key)
            return Lookup(None, raw.version)
        return Lookup(answer if isinstance(answer, dict) else None, raw.version)

    def ttl_ms(self, reports: Sequence[RangeReport]) -> int:
        """How long an answer computed from ``reports`` may be served, in ms; 0: do not store it."""
        if any(not report.complete for report in reports):
            return 0
        now = self._clock()
        tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
        expires = min(now + self._ttl, tomorrow)
        for report in reports:
            if report.open:
                if report.as_of is None:
                    return 0
                expires = min(expires, report.as_of + self._today_ttl)
        return max(0, int((expires - now).total_seconds() * 1000))

    async def store(
        self, key: str, lookup: Lookup | RawLookup, answer: Mapping[str, Any], ttl_ms: int
    ) -> bool:
        """Store ``answer`` under ``key`` at the version ``lookup`` read; False if it was not stored."""
        if lookup.version is None or ttl_ms <= 0:
            return False
        try:
            body = orjson.dumps(answer)
        except TypeError as exc:
            log.warning("answer_cache.unencodable", error=str(exc))
            return False
        if len(body) > MAX_ANSWER_BYTES:
            return False
        value = lookup.version + b"|" + body
        try:
            await self._hot.call("answer_cache", lambda redis: redis.set(key, value, px=ttl_ms))
        except HotTierDown:
            return False
        return True


def _read(key: str) -> Callable[[Redis], Awaitable[list[bytes | str | None]]]:
    async def read(redis: Redis) -> list[bytes | str | None]:
        values: list[bytes | str | None] = await redis.mget([DATA_VERSION_KEY, key])
        return values

    return read


async def _initial_version(redis: Redis) -> bytes:
    """A version for a Redis that has none (new, flushed, or the key evicted).

    It starts at the clock in milliseconds rather than at 0, so a counter restarted here cannot soon
    climb back to a version that entries still in Redis were stored at.
    """
    start = int(datetime.now(UTC).timestamp() * 1000)
    await redis.set(DATA_VERSION_KEY, start, nx=True)
    current = _as_bytes(await redis.get(DATA_VERSION_KEY))
    return current if current is not None else str(start).encode()


async def bump_data_version(redis: HotTier | Redis | None) -> None:
    """Invalidate every cached answer: the data they were computed from changed through this gateway.

    Skipped while Redis is unavailable: answers stored before then live out their TTL."""
    if redis is None:
        return
    await HotTier.of(redis).attempt("data_version", lambda client: client.incr(DATA_VERSION_KEY), None)
