"""The day cache: Redis markers → Postgres days → LiteLLM, one fetch per day however many ask.

A day is *closed* once it was fetched (and verified) at least ``close_after`` after its end: it is
served from Postgres forever. Every other day is *open* and is fetched again once older than
``today_ttl``. Redis holds a marker per day (status and fetch time, expiring with the freshness of an
open day) so a warm request costs one MGET, and the per-day locks. Without Redis, Postgres alone
answers and advisory locks keep the fetches single.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import structlog
from redis.asyncio import Redis

from datasources.day_locks import DayLocks, PostgresDayLocks, RedisDayLocks
from datasources.day_split import DaySplitter, total
from datasources.day_store import DayState, DayStatus, DayStore
from datasources.db import Database
from datasources.errors import UpstreamUnavailable
from datasources.litellm import LiteLLMClient
from datasources.metrics import DayMetrics

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
_CLOSED_MARKER_SECONDS = 7 * 24 * 3600
DATA_VERSION_KEY = "ug:data-version"


def utc_now() -> datetime:
    return datetime.now(UTC)


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


@dataclass(frozen=True)
class _Marker:
    status: DayStatus
    fetched_at: datetime

    def encode(self) -> str:
        return f"{self.status}|{self.fetched_at.isoformat()}"

    @classmethod
    def decode(cls, raw: bytes | str) -> _Marker:
        text = raw.decode() if isinstance(raw, bytes) else raw
        status, fetched_at = text.split("|", 1)
        return cls("closed" if status == "closed" else "open", datetime.fromisoformat(fetched_at))


@dataclass
class RangeReport:
    """What a range looks like after the cache did its work."""

    days: list[date] = field(default_factory=list)
    closed: list[date] = field(default_factory=list)
    open: list[date] = field(default_factory=list)
    missing: list[date] = field(default_factory=list)
    failures: dict[date, str] = field(default_factory=dict)
    fetched: list[date] = field(default_factory=list)
    changed: bool = False
    as_of: datetime | None = None

    @property
    def complete(self) -> bool:
        return not self.missing and not self.failures


class DayCache:
    def __init__(
        self,
        db: Database,
        client: LiteLLMClient | None,
        redis: Redis | None = None,
        *,
        today_ttl_seconds: float = 300,
        close_after_hours: float = 2,
        concurrency: int = 8,
        verify_attempts: int = 3,
        clock: Clock = utc_now,
    ) -> None:
        self._db = db
        self._client = client
        self._redis = redis
        self._store = DayStore(db)
        self._locks: DayLocks = RedisDayLocks(redis) if redis is not None else PostgresDayLocks(db)
        self._ttl = timedelta(seconds=today_ttl_seconds)
        self._close_after = timedelta(hours=close_after_hours)
        self._slots = asyncio.Semaphore(concurrency)
        self._verify_attempts = verify_attempts
        self._clock = clock
        self._inflight: dict[date, asyncio.Task[DayState]] = {}

    def today(self) -> date:
        return self._clock().date()

    def open_days(self) -> list[date]:
        """Days that can still change: today, and yesterday until ``close_after`` past midnight."""
        now = self._clock()
        today = now.date()
        midnight = datetime.combine(today, datetime.min.time(), UTC)
        yesterday_open = now < midnight + self._close_after
        return [today - timedelta(days=1), today] if yesterday_open else [today]

    def _is_fresh(self, status: DayStatus, fetched_at: datetime, now: datetime) -> bool:
        return status == "closed" or now - fetched_at < self._ttl

    async def ensure(self, start: date, end: date) -> RangeReport:
        """Make every day of the range present and fresh, fetching only what is missing or stale."""
        now = self._clock()
        wanted = days_between(start, min(end, now.date()))
        known: dict[date, _Marker] = await self._read_markers(wanted)
        unmarked = [d for d in wanted if d not in known]
        if unmarked:
            states = await self._store.states(unmarked)
            for day, state in states.items():
                known[day] = _Marker(state.status, state.fetched_at)
            await self._write_markers(
                [s for s in states.values() if self._is_fresh(s.status, s.fetched_at, now)]
            )
        stale = [
            d
            for d in wanted
            if d not in known or not self._is_fresh(known[d].status, known[d].fetched_at, now)
        ]
        report = RangeReport(days=wanted)
        results = await asyncio.gather(*(self._single_flight(d) for d in stale), return_exceptions=True)
        for day, result in zip(stale, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, UpstreamUnavailable):
                    raise result
                report.failures[day] = str(result)
            else:
                known[day] = _Marker(result.status, result.fetched_at)
                report.fetched.append(day)
        return self._finish(report, known)

    async def refresh(self, days: Sequence[date], *, reopen: bool = False) -> RangeReport:
        """Fetch these days again now, whatever their freshness.

        A fetch of the day that completes after this call began satisfies it, so a burst of refreshes,
        from one process or many, costs one fetch per day.
        """
        if reopen:
            await self._store.reopen(days)
        report = RangeReport(days=list(days))
        known: dict[date, _Marker] = {}

        async def one(day: date) -> None:
            try:
                before = await self._store.state(day)
                after = await self._fetch_locked(
                    day, good_enough=lambda current: before is None or current.fetched_at != before.fetched_at
                )
            except UpstreamUnavailable as exc:
                report.failures[day] = str(exc)
                return
            known[day] = _Marker(after.status, after.fetched_at)
            report.fetched.append(day)
            report.changed |= before is None or not before.same_numbers(after)

        await asyncio.gather(*(one(d) for d in days))
        missing = [d for d in days if d not in known]
        for day, state in (await self._store.states(missing)).items():
            known[day] = _Marker(state.status, state.fetched_at)
        return self._finish(report, known)

    @staticmethod
    def _finish(report: RangeReport, known: dict[date, _Marker]) -> RangeReport:
        for day in report.days:
            marker = known.get(day)
            if marker is None:
                report.missing.append(day)
            elif marker.status == "closed":
                report.closed.append(day)
            else:
                report.open.append(day)
        # "As of" is the oldest data that could still change: the oldest open day, else the newest fetch.
        open_times = [known[d].fetched_at for d in report.open]
        all_times = [known[d].fetched_at for d in report.days if d in known]
        report.as_of = min(open_times) if open_times else max(all_times, default=None)
        return report

    def _single_flight(self, day: date) -> asyncio.Task[DayState]:
        task = self._inflight.get(day)
        if task is None:
            task = asyncio.ensure_future(
                self._fetch_locked(
                    day, good_enough=lambda s: self._is_fresh(s.status, s.fetched_at, self._clock())
                )
            )
            self._inflight[day] = task
            task.add_done_callback(lambda _: self._inflight.pop(day, None))
        return task

    async def _fetch_locked(self, day: date, *, good_enough: Callable[[DayState], bool]) -> DayState:
        """Fetch under the day's lock, unless what another holder of the lock stored is good enough."""
        if self._client is None:
            raise UpstreamUnavailable("LiteLLM is not configured")
        async with self._slots, self._locks.hold(day):
            current = await self._store.state(day)
            if current is not None and good_enough(current):
                return current
            state = await self._fetch(day, self._client)
        await self._write_markers([state])
        if self._redis is not None:
            await self._redis.incr(DATA_VERSION_KEY)
        return state

    async def _fetch(self, day: date, client: LiteLLMClient) -> DayState:
        """Fetch, split and verify a day; store it. A day that keeps changing is stored open, unverified."""
        for attempt in range(1, self._verify_attempts + 1):
            started = self._clock()
            activity = await client.day(day)
            splitter = DaySplitter(lambda query: client.day(day, query))
            facts = await splitter.split(activity)
            expected = (await client.aggregated_totals(day, day)).get(day, DayMetrics())
            verified = total(facts).matches(expected)
            if verified or attempt == self._verify_attempts:
                break
            log.info("day.changed_during_fetch", day=day.isoformat(), attempt=attempt)
        if not verified:
            log.warning("day.unverified", day=day.isoformat(), attempts=self._verify_attempts)
        closes_at = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC) + self._close_after
        status: DayStatus = "closed" if verified and started >= closes_at else "open"
        state = await self._store.replace_day(
            day, facts, activity.key_metadata, status=status, verified=verified, fetched_at=started
        )
        log.info(
            "day.fetched",
            day=day.isoformat(),
            status=status,
            verified=verified,
            facts=len(facts),
            narrowing_queries=len(splitter.queries),
        )
        return state

    async def _read_markers(self, days: Sequence[date]) -> dict[date, _Marker]:
        if self._redis is None or not days:
            return {}
        raw = await self._redis.mget([f"ug:day:{d.isoformat()}" for d in days])
        return {d: _Marker.decode(value) for d, value in zip(days, raw, strict=True) if value is not None}

    async def _write_markers(self, states: Sequence[DayState]) -> None:
        if self._redis is None or not states:
            return
        now = self._clock()
        async with self._redis.pipeline(transaction=False) as pipe:
            for state in states:
                if state.status == "closed":
                    ttl_ms = _CLOSED_MARKER_SECONDS * 1000
                else:
                    ttl_ms = int((state.fetched_at + self._ttl - now).total_seconds() * 1000)
                if ttl_ms > 0:
                    marker = _Marker(state.status, state.fetched_at)
                    pipe.set(f"ug:day:{state.date.isoformat()}", marker.encode(), px=ttl_ms)
            await pipe.execute()
