"""The day cache: Redis markers → Postgres days → LiteLLM, one fetch per day however many ask.

A day is *closed* once it was fetched (and verified) at least ``close_after`` after its end: it is
served from Postgres forever. Every other day is *open* and is fetched again once older than
``today_ttl``. Redis holds a marker per day (status and fetch time, expiring with the freshness of an
open day) so a warm request costs one MGET, and the per-day locks. Without Redis, Postgres alone
answers and advisory locks keep the fetches single.

Stale days are fetched in batches, not one by one: a batch is a run of nearby days (spanning at most
``MAX_BATCH_DAYS``) read model by model over its whole span (``day_split``), which costs about the pages of
its rows plus one request. A batch holds the locks of all its days, re-checks what another process stored
meanwhile, verifies every date against LiteLLM's totals and fetches again only the dates that moved. A
request that keeps failing fails every date it spans, so a failed batch is halved until the failure is
pinned to its days: one bad day does not take its neighbours down with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import structlog
from redis.asyncio import Redis

from usage_gateway.datasources.daycache.locks import DayLocks, FailoverDayLocks, PostgresDayLocks
from usage_gateway.datasources.daycache.store import DayState, DayStatus, DayStore, DayWrite
from usage_gateway.datasources.db import Database
from usage_gateway.datasources.hot_tier import HotTier
from usage_gateway.datasources.litellm.client import LiteLLMClient, gather_all
from usage_gateway.datasources.litellm.split import BatchRead, read_days
from usage_gateway.datasources.metrics import DAY_FETCH_FAILURES, DAYS_FETCHED, count_days_read
from usage_gateway.errors import UpstreamUnavailable

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
GoodEnough = Callable[[DayState], bool]
Outcome = DayState | UpstreamUnavailable
_CLOSED_MARKER_SECONDS = 7 * 24 * 3600
DATA_VERSION_KEY = "ug:data-version"
MAX_BATCH_DAYS = 31  # bounds a batch's memory and lock time: a long backfill goes in chunks
# Stale days with at most this many other days between them share a batch: paging through a short gap
# costs less than a second batch's extra requests (one more /aggregated, a part-filled last page per model).
_BRIDGED_GAP_DAYS = 3
_BATCHES_IN_FLIGHT = 2  # enough to overlap one batch's writes with the next one's requests


def utc_now() -> datetime:
    return datetime.now(UTC)


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


def plan_batches(days: Iterable[date], *, max_span: int = MAX_BATCH_DAYS) -> list[list[date]]:
    """The days, sorted, in batches of nearby days, each spanning at most ``max_span`` days."""
    batches: list[list[date]] = []
    for day in sorted(set(days)):
        current = batches[-1] if batches else None
        if (
            current is not None
            and (day - current[-1]).days <= _BRIDGED_GAP_DAYS + 1
            and (day - current[0]).days < max_span
        ):
            current.append(day)
        else:
            batches.append([day])
    return batches


@dataclass(frozen=True)
class _Marker:
    status: DayStatus
    fetched_at: datetime
    verified: bool = True
    unverified_fetches: int = 0

    @classmethod
    def of(cls, state: DayState) -> _Marker:
        return cls(state.status, state.fetched_at, state.verified, state.unverified_fetches)

    def encode(self) -> str:
        verified = "verified" if self.verified else f"unverified:{self.unverified_fetches}"
        return f"{self.status}|{verified}|{self.fetched_at.isoformat()}"

    @classmethod
    def decode(cls, raw: bytes | str) -> _Marker:
        text = raw.decode() if isinstance(raw, bytes) else raw
        status, rest = text.split("|", 1)
        verified, fetches = True, 0
        # A marker from before verification was kept has no middle part: that day was served as verified.
        if rest.startswith(("verified|", "unverified:")):
            check, rest = rest.split("|", 1)
            if check != "verified":
                verified, fetches = False, int(check.split(":", 1)[1])
        fetched_at = datetime.fromisoformat(rest)
        return cls("closed" if status == "closed" else "open", fetched_at, verified, fetches)


@dataclass
class RangeReport:
    """What a range looks like after the cache did its work."""

    days: list[date] = field(default_factory=list)
    closed: list[date] = field(default_factory=list)
    open: list[date] = field(default_factory=list)
    missing: list[date] = field(default_factory=list)
    unverified: list[date] = field(default_factory=list)  # stored, but not equal to LiteLLM's totals
    failures: dict[date, str] = field(default_factory=dict)
    fetched: list[date] = field(default_factory=list)
    changed: bool = False
    as_of: datetime | None = None

    @property
    def complete(self) -> bool:
        """Every day is present, fresh and equal to LiteLLM's own totals for it."""
        return not self.missing and not self.failures and not self.unverified


class DayCache:
    MARKER_PREFIX = "ug:day:"  # Redis key of a day's marker, before its date

    def __init__(
        self,
        db: Database,
        client: LiteLLMClient | None,
        redis: HotTier | Redis | None = None,
        *,
        today_ttl_seconds: float = 300,
        close_after_hours: float = 2,
        concurrency: int = 8,
        verify_attempts: int = 3,
        unverified_retries: int = 3,
        max_batch_days: int = MAX_BATCH_DAYS,
        clock: Clock = utc_now,
    ) -> None:
        """``concurrency`` bounds the days written to Postgres at once; LiteLLM requests are bounded by the
        client's own semaphore. Redis (``redis``) is only ever a shortcut: while it fails, markers are read
        from Postgres and locks taken there (:mod:`hot_tier`)."""
        self._db = db
        self._client = client
        self._hot = HotTier.of(redis) if redis is not None else None
        self._store = DayStore(db)
        self._locks: DayLocks = FailoverDayLocks(self._hot, db) if self._hot else PostgresDayLocks(db)
        self._ttl = timedelta(seconds=today_ttl_seconds)
        self._close_after = timedelta(hours=close_after_hours)
        self._batch_slots = asyncio.Semaphore(_BATCHES_IN_FLIGHT)
        self._write_slots = asyncio.Semaphore(concurrency)
        self._verify_attempts = verify_attempts
        self._unverified_retries = unverified_retries
        self._max_batch_days = max_batch_days
        self._clock = clock
        self._inflight: dict[date, asyncio.Future[DayState]] = {}
        self._batches: set[asyncio.Task[None]] = set()

    def today(self) -> date:
        return self._clock().date()

    def open_days(self) -> list[date]:
        """Days that can still change: today, and yesterday until ``close_after`` past midnight."""
        now = self._clock()
        today = now.date()
        midnight = datetime.combine(today, datetime.min.time(), UTC)
        yesterday_open = now < midnight + self._close_after
        return [today - timedelta(days=1), today] if yesterday_open else [today]

    def _is_fresh(self, day: _Marker | DayState, now: datetime) -> bool:
        """Closed days always are; open ones for ``today_ttl``. A day that did not verify is read again
        by the next request, up to ``unverified_retries`` fetches in a row; past that budget, only as
        often as any open day (it is reported as unverified all along)."""
        if day.status == "closed":
            return True
        if not day.verified and day.unverified_fetches <= self._unverified_retries:
            return False
        return now - day.fetched_at < self._ttl

    async def ensure(self, start: date, end: date) -> RangeReport:
        """Make every day of the range present and fresh, fetching only what is missing or stale."""
        now = self._clock()
        wanted = days_between(start, min(end, now.date()))
        known: dict[date, _Marker] = await self._read_markers(wanted)
        unmarked = [d for d in wanted if d not in known]
        if unmarked:
            states = await self._store.states(unmarked)
            for day, state in states.items():
                known[day] = _Marker.of(state)
            await self._write_markers(list(states.values()))
        stale = [d for d in wanted if d not in known or not self._is_fresh(known[d], now)]
        report = RangeReport(days=wanted)
        # Shielded: a caller that goes away must not cancel a fetch other callers are waiting for.
        results = await asyncio.gather(
            *(asyncio.shield(f) for f in self._single_flight(stale)), return_exceptions=True
        )
        for day, result in zip(stale, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, UpstreamUnavailable):
                    raise result
                report.failures[day] = str(result)
            else:
                known[day] = _Marker.of(result)
                report.fetched.append(day)
        report = self._finish(report, known)
        unverified = len(report.unverified)
        count_days_read(len(report.closed), len(report.open) - unverified, unverified, len(report.missing))
        return report

    async def refresh(self, days: Sequence[date], *, reopen: bool = False) -> RangeReport:
        """Fetch these days again now, whatever their freshness.

        A fetch of the day that completes after this call began satisfies it, so a burst of refreshes,
        from one process or many, costs one fetch per day.
        """
        if reopen:
            await self._store.reopen(days)
        report = RangeReport(days=list(days))
        before = await self._store.states(days)

        def fetched_since(current: DayState) -> bool:
            prior = before.get(current.date)
            return prior is None or current.fetched_at != prior.fetched_at

        outcomes: dict[date, Outcome] = {}
        batches = plan_batches(days, max_span=self._max_batch_days)
        for part in await gather_all(self._fetch_batch(batch, fetched_since) for batch in batches):
            outcomes.update(part)
        known: dict[date, _Marker] = {}
        for day, outcome in outcomes.items():
            if isinstance(outcome, UpstreamUnavailable):
                report.failures[day] = str(outcome)
                continue
            known[day] = _Marker.of(outcome)
            report.fetched.append(day)
            prior = before.get(day)
            report.changed |= prior is None or not prior.same_numbers(outcome)
        missing = [d for d in days if d not in known]
        for day, state in (await self._store.states(missing)).items():
            known[day] = _Marker.of(state)
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
            if marker is not None and not marker.verified:
                report.unverified.append(day)
        # "As of" is the oldest data that could still change: the oldest open day, else the newest fetch.
        open_times = [known[d].fetched_at for d in report.open]
        all_times = [known[d].fetched_at for d in report.days if d in known]
        report.as_of = min(open_times) if open_times else max(all_times, default=None)
        return report

    def _single_flight(self, days: Sequence[date]) -> list[asyncio.Future[DayState]]:
        """Each day's fetch in this process: joined if one is under way, else started, in batches."""
        loop = asyncio.get_running_loop()
        for batch in plan_batches(
            (d for d in days if d not in self._inflight), max_span=self._max_batch_days
        ):
            futures = {day: loop.create_future() for day in batch}
            for day, future in futures.items():
                # Marks a failure as seen even if every waiter went away, so asyncio does not log it.
                future.add_done_callback(lambda f: f.cancelled() or f.exception())
                self._inflight[day] = future
            task = asyncio.create_task(self._settle(batch, futures))
            self._batches.add(task)
            task.add_done_callback(self._batches.discard)
        return [self._inflight[d] for d in days]

    async def _settle(self, days: list[date], futures: Mapping[date, asyncio.Future[DayState]]) -> None:
        """Fetch a batch of stale days and resolve each day's future with its own outcome."""
        outcomes: Mapping[date, DayState | Exception] = {}
        try:
            outcomes = await self._fetch_batch(days, lambda s: self._is_fresh(s, self._clock()))
        except Exception as exc:
            outcomes = dict.fromkeys(days, exc)
        finally:
            for day, future in futures.items():
                if self._inflight.get(day) is future:
                    del self._inflight[day]
                outcome = outcomes.get(day)
                if outcome is None:  # cancelled
                    future.cancel()
                elif isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    async def _fetch_batch(self, days: list[date], good_enough: GoodEnough) -> dict[date, Outcome]:
        """Fetch these days under their locks, except those another holder of a lock stored good enough."""
        if self._client is None:
            return dict.fromkeys(days, UpstreamUnavailable("LiteLLM is not configured"))
        async with self._batch_slots, self._locks.hold(days):
            outcomes: dict[date, Outcome] = {
                day: state for day, state in (await self._store.states(days)).items() if good_enough(state)
            }
            todo = [d for d in days if d not in outcomes]
            fetched = await self._fetch_runs(self._client, plan_batches(todo, max_span=self._max_batch_days))
        outcomes.update(fetched)
        await self._write_markers([o for o in outcomes.values() if isinstance(o, DayState)])
        if self._hot is not None and any(isinstance(o, DayState) for o in fetched.values()):
            # Missed while Redis is down: answers stored before the outage then live out their TTL.
            await self._hot.attempt("data_version", lambda redis: redis.incr(DATA_VERSION_KEY), None)
        return outcomes

    async def _fetch_runs(
        self, client: LiteLLMClient, runs: list[list[date]], attempt: int = 1
    ) -> dict[date, Outcome]:
        outcomes: dict[date, Outcome] = {}
        for part in await gather_all(self._fetch_run(client, run, attempt) for run in runs):
            outcomes.update(part)
        return outcomes

    async def _fetch_run(self, client: LiteLLMClient, days: list[date], attempt: int) -> dict[date, Outcome]:
        """Read, verify and store a run of days; the dates that moved during the read go again, alone.

        A date that keeps changing is stored open and unverified after ``verify_attempts`` reads.
        """
        started = self._clock()
        try:
            read = await self._read_days(client, days)
        except UpstreamUnavailable as exc:
            if len(days) == 1:
                DAY_FETCH_FAILURES.inc()
                return {days[0]: exc}
            log.info(
                "days.batch_failed", first=days[0].isoformat(), last=days[-1].isoformat(), error=str(exc)
            )
            half = len(days) // 2
            return await self._fetch_runs(client, [days[:half], days[half:]], attempt)
        mismatches = {day: read.mismatch(day) for day in days}
        moved = [day for day in days if mismatches[day] and attempt < self._verify_attempts]
        done = [day for day in days if day not in moved]
        log.info(
            "days.read",
            first=days[0].isoformat(),
            last=days[-1].isoformat(),
            days=len(days),
            models=read.models,
            narrowing_queries=read.narrowings,
            moved=[day.isoformat() for day in moved],
            attempt=attempt,
        )
        for day, why in mismatches.items():
            if why:
                log.warning("day.mismatch", day=day.isoformat(), attempt=attempt, why=why)
        outcomes: dict[date, Outcome] = dict(await self._store_days(done, read, mismatches, started))
        del read
        if moved:
            outcomes.update(
                await self._fetch_runs(
                    client, plan_batches(moved, max_span=self._max_batch_days), attempt + 1
                )
            )
        return outcomes

    async def _read_days(self, client: LiteLLMClient, days: list[date]) -> BatchRead:
        return await read_days(client, days)

    async def _store_days(
        self, days: list[date], read: BatchRead, mismatches: dict[date, str | None], started: datetime
    ) -> dict[date, DayState]:
        """Store the days of one read in one write (DayStore.replace_days)."""
        writes = []
        for day in days:
            why = mismatches[day]
            verified = why is None
            if not verified:
                log.warning("day.unverified", day=day.isoformat(), reads=self._verify_attempts, why=why)
            day_end = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
            closes_at = day_end + self._close_after
            status: DayStatus = "closed" if verified and started >= closes_at else "open"
            writes.append(
                DayWrite(day, read.facts[day], read.keys[day], status, verified, started, read.side[day])
            )
        async with self._write_slots:
            states = await self._store.replace_days(writes)
        for state in states.values():
            DAYS_FETCHED.labels("true" if state.verified else "false").inc()
            log.info(
                "day.fetched",
                day=state.date.isoformat(),
                status=state.status,
                verified=state.verified,
                facts=state.fact_count,
            )
        return states

    async def _read_markers(self, days: Sequence[date]) -> dict[date, _Marker]:
        if self._hot is None or not days:
            return {}
        keys = [f"{self.MARKER_PREFIX}{d.isoformat()}" for d in days]
        raw = await self._hot.attempt("day_markers", lambda redis: redis.mget(keys), None)
        if raw is None:  # Redis unavailable: every day is asked of Postgres
            return {}
        return {d: _Marker.decode(value) for d, value in zip(days, raw, strict=True) if value is not None}

    async def _write_markers(self, states: Sequence[DayState]) -> None:
        if self._hot is None or not states:
            return
        now = self._clock()
        markers: dict[str, tuple[str, int]] = {}
        for state in states:
            if not self._is_fresh(state, now):
                continue  # to be read again: no marker, so the next request asks Postgres
            if state.status == "closed":
                ttl_ms = _CLOSED_MARKER_SECONDS * 1000
            else:
                ttl_ms = int((state.fetched_at + self._ttl - now).total_seconds() * 1000)
            if ttl_ms > 0:
                markers[f"{self.MARKER_PREFIX}{state.date.isoformat()}"] = (
                    _Marker.of(state).encode(),
                    ttl_ms,
                )
        if not markers:
            return

        async def write(redis: Redis) -> None:
            async with redis.pipeline(transaction=False) as pipe:
                for key, (marker, ttl_ms) in markers.items():
                    pipe.set(key, marker, px=ttl_ms)
                await pipe.execute()

        await self._hot.attempt("day_markers", write, None)
