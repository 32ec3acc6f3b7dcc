"""Cold loads: the last N days of the reference data set from a LiteLLM-compatible server that answers
every request after a fixed latency (200 ms at reference scale), then the same days warm.

- The load. Baseline, the LiteMaaS way: every page of every day, one request after another (page 1 of
  day 1, page 2 of day 1, …, then day 2), no concurrency. Gateway: a fresh database and an empty Redis,
  opened as the server opens them (``Resources.open``), then ``DayCache.ensure(first, last)`` — pages,
  narrowing queries and verification included — at each ``LITELLM_CONCURRENCY`` of the plan (8, the
  default, and 16).
- The gateway's own CPU per LiteLLM row in the default load (``time.process_time`` around it, over the
  rows LiteLLM serves), against the baseline's: what stays serial however many requests overlap.
- The dashboard: the same on a fresh database, but through ``POST /graphql`` (bench/queries.py's
  dashboard over the N days; its previous period, the N days before, LiteLLM has no rows for), against
  the load at the default concurrency: what answering a cold request adds to loading its days.
- Warm, on the database the default load filled (no LiteLLM: the stored days): the day check (the same
  ``ensure`` again) against the bare Redis read of its day markers; ``totals`` and the daily series of
  the range against their SQL run bare.

The server (bench/litellm_side.py) runs in its own process and replays answers computed in an untimed
first pass, so each request costs the latency, not the CPU of our Python stand-in for LiteLLM.
Options (``python -m bench.run``): ``--cold-days``, ``--latency-ms``, ``--cold-concurrency``,
``--legacy-share`` (NULL-user legacy rows), ``--no-replay``, ``--no-cold-baseline``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import psycopg
from redis.asyncio import Redis

from bench.bare import BareSQL
from bench.gateway import BenchError, open_gateway, pinned_clock
from bench.litellm_side import COMPUTED, LiteLLMProcess, litellm_process
from bench.plan import Plan
from bench.queries import DASHBOARD, dashboard_variables
from bench.report import Figure, Target, median, ratio
from usage_gateway.datasources.db import Params, Query, count_statements
from usage_gateway.datasources.facts import aggregates as facts
from usage_gateway.datasources.facts.vocabulary import FactFilter, Granularity
from usage_gateway.datasources.litellm.client import DAILY_ACTIVITY, LiteLLMClient
from usage_gateway.devtools.litellm_compat import MASTER_KEY
from usage_gateway.devtools.local_services import LocalPostgres
from usage_gateway.migrations import apply_migrations
from usage_gateway.server.config import Settings
from usage_gateway.server.resources import Resources

PAGE_SIZE = 1000
# The gateway's own CPU per LiteLLM row in a cold load (issue 12): 117 µs before typed decoding.
CPU_TARGET_US_PER_ROW = 30.0
# A cold dashboard waits for its days: at reference scale that outlasts the default
# OPERATION_TIMEOUT_SECONDS (30 s), which would cut the request short rather than time it.
DASHBOARD_TIMEOUT_SECONDS = 3600.0
log = logging.getLogger(__name__)
_databases = itertools.count()


async def _day_pages(client: LiteLLMClient, day: date) -> int:
    """Every page of one day, one after another; how many there were."""
    page, pages = 1, 1
    while page <= pages:
        params = {"start_date": day.isoformat(), "end_date": day.isoformat(), "page_size": str(PAGE_SIZE)}
        body = await client.get_json(DAILY_ACTIVITY, {**params, "page": str(page)})
        pages = max(1, int(body["metadata"]["total_pages"]))
        page += 1
    return pages


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@dataclass(frozen=True)
class Load:
    """A timed read of the range: wall seconds, this process's CPU seconds, LiteLLM requests by kind."""

    seconds: float
    cpu_seconds: float
    counts: Counter[str]


async def sequential_baseline(url: str, first: date, last: date) -> tuple[float, float, int]:
    """Seconds, CPU seconds and requests to read every page of every day, one request after another."""
    requests = 0
    began, cpu = time.perf_counter(), time.process_time()
    async with LiteLLMClient(url, MASTER_KEY, concurrency=1, page_size=PAGE_SIZE) as client:
        for day in _days(first, last):
            requests += await _day_pages(client, day)
    return time.perf_counter() - began, time.process_time() - cpu, requests


def _litellm_settings(litellm: LiteLLMProcess, concurrency: int) -> dict[str, Any]:
    """The settings of a gateway reading this LiteLLM: the defaults but the concurrency."""
    return {
        "litellm_url": litellm.url,
        "litellm_master_key": MASTER_KEY,
        "litellm_concurrency": concurrency,
        "litellm_page_size": PAGE_SIZE,
    }


@contextlib.asynccontextmanager
async def opened(database_url: str, redis_url: str, last: date, **settings: Any) -> AsyncIterator[Resources]:
    """What the server opens for these settings, on a clock that has every day of the range closed."""
    values: dict[str, Any] = {"database_url": database_url, "redis_url": redis_url, **settings}
    resources = await Resources.open(Settings(**values), clock=pinned_clock(last))
    try:
        yield resources
    finally:
        await resources.close()


async def warm_up(
    plan: Plan, litellm: LiteLLMProcess, pg: LocalPostgres, redis_url: str, first: date, last: date
) -> int:
    """Untimed: make the server compute every answer the timed runs ask for — the baseline's pages (all
    days at once), a gateway load and a cold dashboard — and return how many it computed."""
    async with LiteLLMClient(litellm.url, MASTER_KEY, concurrency=16, page_size=PAGE_SIZE) as client:
        litellm.counts()
        await asyncio.gather(*(_day_pages(client, day) for day in _days(first, last)))
        computed = litellm.counts()[COMPUTED]
    with fresh_database(pg) as url:
        load = await gateway_load(litellm, url, redis_url, first, last, concurrency=16)
    computed += load.counts[COMPUTED]
    with fresh_database(pg) as url:
        _, counts, _ = await dashboard_load(litellm, url, redis_url, first, last, plan.cold_concurrency[0])
    return computed + counts[COMPUTED]


@contextlib.contextmanager
def fresh_database(pg: LocalPostgres) -> Iterator[str]:
    name = f"bench_cold_{os.getpid()}_{next(_databases)}"
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        url = pg.url_for(name)
        apply_migrations(url)
        yield url
    finally:
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def _check_stored(litellm: LiteLLMProcess, resources: Resources, what: str) -> None:
    """Every row LiteLLM serves arrived, one fact each (none outside the cold range: no other rows)."""
    row = await resources.db.fetch_one("SELECT count(*), coalesce(sum(api_requests), 0) FROM usage_facts")
    stored = (int(row[0]), int(row[1])) if row else (0, 0)
    if stored != (litellm.served.rows, litellm.served.api_requests):
        raise BenchError(f"{what} stored (facts, requests) {stored}, LiteLLM served {litellm.served}")


async def gateway_load(
    litellm: LiteLLMProcess, database_url: str, redis_url: str, first: date, last: date, concurrency: int
) -> Load:
    """A cold load into an empty database; checks every row arrived. Its CPU is this process's only:
    LiteLLM runs in its own, and Postgres's work is not counted."""
    async with opened(database_url, redis_url, last, **_litellm_settings(litellm, concurrency)) as resources:
        assert resources.redis is not None
        await resources.redis.flushall()
        litellm.counts()
        began, cpu = time.perf_counter(), time.process_time()
        report = await resources.days.ensure(first, last)
        load = Load(time.perf_counter() - began, time.process_time() - cpu, litellm.counts())
        days = (last - first).days + 1
        if not report.complete or len(report.closed) != days:
            raise BenchError(
                f"cold load incomplete: {len(report.closed)} of {days} days closed,"
                f" {len(report.unverified)} unverified, {report.failures}"
            )
        await _check_stored(litellm, resources, "cold load")
    return load


async def dashboard_load(
    litellm: LiteLLMProcess, database_url: str, redis_url: str, first: date, last: date, concurrency: int
) -> tuple[float, Counter[str], dict[str, Any]]:
    """Seconds and LiteLLM requests of the dashboard asked of a gateway with an empty database and Redis,
    and its ``usage`` answer; checks the answer is complete and sums every row LiteLLM served."""
    redis = Redis.from_url(redis_url)
    try:
        await redis.flushall()
    finally:
        await redis.aclose()
    async with open_gateway(
        database_url,
        redis_url,
        last,
        answer_cache=False,
        operation_timeout_seconds=DASHBOARD_TIMEOUT_SECONDS,
        **_litellm_settings(litellm, concurrency),
    ) as gateway:
        litellm.counts()
        answer = await gateway.ask(DASHBOARD, dashboard_variables(first, last))
        counts = litellm.counts()
        usage = answer.data["usage"]
        if not usage["freshness"]["complete"]:
            raise BenchError(f"cold dashboard incomplete: {usage['freshness']}")
        if usage["totals"]["requests"] != litellm.served.api_requests:
            raise BenchError(f"cold dashboard sums {usage['totals']}, LiteLLM served {litellm.served}")
        await _check_stored(litellm, gateway.resources, "cold dashboard")
    return answer.ms / 1000, counts, usage


@dataclass
class Warm:
    """A warm operation ``repeat`` times, each followed by its baseline (interleaved)."""

    ms: list[float] = field(default_factory=list)
    baseline_ms: list[float] = field(default_factory=list)


async def _interleaved(
    repeat: int, operation: Callable[[], Awaitable[object]], baseline: Callable[[], Awaitable[object]]
) -> Warm:
    warm = Warm()
    await operation()  # plans and pools, not counted
    await baseline()
    for _ in range(repeat):
        for samples, run in ((warm.ms, operation), (warm.baseline_ms, baseline)):
            began = time.perf_counter()
            await run()
            samples.append((time.perf_counter() - began) * 1000)
    return warm


async def warm_timings(
    database_url: str, redis_url: str, first: date, last: date, repeat: int
) -> dict[str, Warm]:
    """On a database a cold load filled, a gateway without LiteLLM: the day check against the Redis read
    it rests on, and totals and the daily series against their statements run bare."""
    timings: dict[str, Warm] = {}
    async with opened(database_url, redis_url, last, litellm_url=None) as resources:
        assert resources.redis is not None
        redis = resources.redis
        markers = [f"ug:day:{day.isoformat()}" for day in _days(first, last)]

        async def check() -> None:
            report = await resources.days.ensure(first, last)
            if not report.complete or report.fetched:
                raise BenchError(f"warm day check: {report}")

        async def read_markers() -> None:
            if any(marker is None for marker in await redis.mget(markers)):
                raise BenchError("warm day check: the day markers are not where the bench reads them")

        timings["day check"] = await _interleaved(repeat, check, read_markers)
        f = FactFilter(first, last)
        bare = BareSQL(resources.db)
        queries: dict[str, Callable[[], Awaitable[object]]] = {
            "totals": lambda: facts.totals(resources.db, f),
            "daily series": lambda: facts.time_series(resources.db, f, Granularity.DAY),
        }
        for name, query in queries.items():
            with count_statements(record=True) as counter:
                await query()
            statements: list[tuple[Query, Params]] = counter.recorded or []
            if not statements:
                raise BenchError(f"warm {name}: no SQL statement recorded")
            timings[name] = await _interleaved(repeat, query, functools.partial(bare.sequential, statements))
    return timings


def _requests(counts: Counter[str]) -> int:
    return sum(n for kind, n in counts.items() if kind != COMPUTED)


@dataclass
class ColdRuns:
    baseline: list[float] = field(default_factory=list)
    baseline_cpu: list[float] = field(default_factory=list)
    baseline_requests: int = 0
    gateway: dict[int, list[float]] = field(default_factory=dict)
    gateway_cpu: dict[int, list[float]] = field(default_factory=dict)
    requests: dict[int, Counter[str]] = field(default_factory=dict)
    dashboard: list[float] = field(default_factory=list)
    dashboard_requests: Counter[str] = field(default_factory=Counter)
    computed: Counter[str] = field(default_factory=Counter)  # answers computed during the timed runs
    warm: dict[str, Warm] = field(default_factory=dict)


async def _run(plan: Plan, litellm: LiteLLMProcess, pg: LocalPostgres, redis_url: str) -> ColdRuns:
    first, last = plan.last_day - timedelta(days=plan.cold_days - 1), plan.last_day
    default = plan.cold_concurrency[0]
    runs = ColdRuns(
        gateway={c: [] for c in plan.cold_concurrency}, gateway_cpu={c: [] for c in plan.cold_concurrency}
    )
    for repetition in range(plan.slow_repeat):
        if plan.cold_baseline:
            seconds, cpu, runs.baseline_requests = await sequential_baseline(litellm.url, first, last)
            runs.baseline.append(seconds)
            runs.baseline_cpu.append(cpu)
            runs.computed["baseline"] += litellm.counts()[COMPUTED]
            log.info("cold baseline: %d requests one after another, %.1f s", runs.baseline_requests, seconds)
        for concurrency in plan.cold_concurrency:
            with fresh_database(pg) as url:
                load = await gateway_load(litellm, url, redis_url, first, last, concurrency)
                if concurrency == default and repetition == plan.slow_repeat - 1:
                    runs.warm = await warm_timings(url, redis_url, first, last, plan.repeat)
            seconds, runs.requests[concurrency] = load.seconds, load.counts
            runs.gateway[concurrency].append(seconds)
            runs.gateway_cpu[concurrency].append(load.cpu_seconds)
            runs.computed[f"gateway at {concurrency}"] += runs.requests[concurrency][COMPUTED]
            total = _requests(runs.requests[concurrency])
            log.info("cold gateway at concurrency %d: %d requests, %.1f s", concurrency, total, seconds)
        with fresh_database(pg) as url:
            seconds, runs.dashboard_requests, _ = await dashboard_load(
                litellm, url, redis_url, first, last, default
            )
        runs.dashboard.append(seconds)
        runs.computed["dashboard"] += runs.dashboard_requests[COMPUTED]
        log.info("cold dashboard: %d requests, %.1f s", _requests(runs.dashboard_requests), seconds)
    return runs


def _cpu_figure(plan: Plan, runs: ColdRuns, rows: int, common: dict[str, Any]) -> Figure:
    """The gateway's own CPU per LiteLLM row in the default load: what is left of its time once requests
    overlap (LiteLLM's CPU is its own process's; Postgres's is not counted). Against the baseline's CPU
    per row: receiving every page and parsing it to dicts, nothing more."""
    default = plan.cold_concurrency[0]
    per_row = [seconds * 1e6 / rows for seconds in runs.gateway_cpu[default]]
    baseline = [seconds * 1e6 / rows for seconds in runs.baseline_cpu]
    return Figure(
        group="cold",
        name=f"gateway CPU per LiteLLM row, cold {plan.cold_days}-d load at LITELLM_CONCURRENCY {default}",
        unit="µs",
        value=median(per_row),
        baseline=median(baseline) if baseline else None,
        baseline_name="the baseline's: fetching and parsing the pages, nothing else" if baseline else "",
        ratio=ratio(median(per_row), median(baseline)) if baseline else None,
        ratio_means="gateway ÷ baseline",
        target=Target("value", "<=", CPU_TARGET_US_PER_ROW),
        repeats=len(per_row),
        samples={"us_per_row": per_row, "baseline_us_per_row": baseline},
        details={**common, "concurrency": default, "measured": "time.process_time() around the load"},
    )


async def cold_figures(plan: Plan, pg: LocalPostgres, redis_url: str) -> list[Figure]:
    scale = plan.scale
    first, last = scale.last_day - timedelta(days=plan.cold_days - 1), scale.last_day
    indexes = range(scale.days - plan.cold_days, scale.days)
    with litellm_process(
        scale, indexes, plan.latency_ms, legacy_share=plan.legacy_share, replay=plan.replay
    ) as litellm:
        warmed = await warm_up(plan, litellm, pg, redis_url, first, last) if plan.replay else 0
        log.info("cold warm-up: %d answers computed", warmed)
        runs = await _run(plan, litellm, pg, redis_url)
        served = litellm.served
    server = (
        "answers computed once in an untimed warm-up, then replayed after the latency"
        if plan.replay
        else "every answer computed on request, after the latency"
    )
    common = {
        "days": plan.cold_days,
        "first_day": first.isoformat(),
        "latency_ms_per_request": plan.latency_ms,
        "litellm_rows": served.rows,
        "legacy_share": plan.legacy_share,
        "legacy_null_user_rows": served.legacy_rows,
        "page_size": PAGE_SIZE,
        "server": server,
        "warm_up_answers_computed": warmed,
        "answers_computed_while_timed": dict(runs.computed),
    }
    baseline = median(runs.baseline) if runs.baseline else None
    legacy = f", {plan.legacy_share:.0%} legacy NULL-user rows" if plan.legacy_share else ""
    figures = []
    for concurrency in plan.cold_concurrency:
        value = median(runs.gateway[concurrency])
        total = _requests(runs.requests[concurrency])
        name = f"cold {plan.cold_days}-d load, LITELLM_CONCURRENCY {concurrency}, {total} requests{legacy}"
        figures.append(
            Figure(
                group="cold",
                name=name,
                unit="s",
                value=value,
                baseline=baseline,
                baseline_name=f"{runs.baseline_requests} pages one after another" if runs.baseline else "",
                ratio=None if baseline is None else ratio(baseline, value),
                ratio_means="baseline ÷ gateway: the speed-up",
                target=Target("ratio", ">=", 8) if concurrency == plan.cold_concurrency[0] else None,
                repeats=plan.slow_repeat,
                samples={"gateway_s": runs.gateway[concurrency], "baseline_s": runs.baseline},
                details={
                    **common,
                    "concurrency": concurrency,
                    "gateway_requests": {
                        k: n for k, n in runs.requests[concurrency].items() if k != COMPUTED
                    },
                    "baseline_requests": runs.baseline_requests if runs.baseline else None,
                },
            )
        )
    default = plan.cold_concurrency[0]
    value, load = median(runs.dashboard), median(runs.gateway[default])
    total = _requests(runs.dashboard_requests)
    figures.append(
        Figure(
            group="cold",
            name=f"cold {plan.cold_days}-d dashboard through /graphql, {total} requests{legacy}",
            unit="s",
            value=value,
            baseline=load,
            baseline_name=f"the cold load alone, LITELLM_CONCURRENCY {default}",
            ratio=ratio(value, load),
            ratio_means="dashboard ÷ load",
            repeats=plan.slow_repeat,
            samples={"dashboard_s": runs.dashboard, "load_s": runs.gateway[default]},
            details={
                **common,
                "concurrency": default,
                "previous_period": f"the {plan.cold_days} days before, no rows in LiteLLM",
                "operation_timeout_seconds": DASHBOARD_TIMEOUT_SECONDS,
                "gateway_requests": {k: n for k, n in runs.dashboard_requests.items() if k != COMPUTED},
            },
        )
    )
    figures.append(_cpu_figure(plan, runs, served.rows, common))
    baselines = {
        "day check": "bare Redis MGET of its day markers",
        "totals": "its SQL, run bare",
        "daily series": "its SQL, run bare",
    }
    for name, warm in runs.warm.items():
        value, bare = median(warm.ms), median(warm.baseline_ms)
        figures.append(
            Figure(
                group="cold",
                name=f"then warm: {plan.cold_days}-d {name}",
                unit="ms",
                value=value,
                baseline=bare,
                baseline_name=baselines[name],
                ratio=ratio(value, bare),
                ratio_means="gateway ÷ bare",
                repeats=len(warm.ms),
                samples={"ms": warm.ms, "bare_ms": warm.baseline_ms},
                details={"days": plan.cold_days, "database": f"filled by the load at concurrency {default}"},
            )
        )
    return figures
