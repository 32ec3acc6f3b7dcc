"""Cold load: the last N days of the reference data set from a LiteLLM-compatible server that answers
every request after a fixed latency (200 ms at reference scale).

Baseline, the LiteMaaS way: every page of every day, one request after another (page 1 of day 1, page 2
of day 1, …, then day 2), no concurrency. Gateway: a fresh database and an empty Redis, then
``DayCache.ensure(first, last)`` — pages, narrowing queries and verification included — at
``LITELLM_CONCURRENCY`` 8 (the default) and 16. The server (bench/litellm_side.py) runs in its own
process and replays answers computed in an untimed first pass, so each request costs the latency, not
the CPU of our Python stand-in for LiteLLM.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta

import psycopg
from redis.asyncio import Redis

from bench.gateway import BenchError, pinned_clock
from bench.litellm_side import COMPUTED, LiteLLMProcess, litellm_process
from bench.plan import Plan
from bench.report import Figure, Target, median, ratio
from usage_gateway.datasources.daycache.days import DayCache
from usage_gateway.datasources.db import Database
from usage_gateway.datasources.litellm.client import DAILY_ACTIVITY, LiteLLMClient
from usage_gateway.devtools.litellm_compat import MASTER_KEY
from usage_gateway.devtools.local_services import LocalPostgres
from usage_gateway.migrations import apply_migrations

PAGE_SIZE = 1000
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


async def sequential_baseline(url: str, first: date, last: date) -> tuple[float, int]:
    """Seconds and requests to read every page of every day, one request after another."""
    requests = 0
    began = time.perf_counter()
    async with LiteLLMClient(url, MASTER_KEY, concurrency=1, page_size=PAGE_SIZE) as client:
        for day in _days(first, last):
            requests += await _day_pages(client, day)
    return time.perf_counter() - began, requests


async def warm_up(litellm: LiteLLMProcess, pg: LocalPostgres, redis_url: str, first: date, last: date) -> int:
    """Untimed: make the server compute every answer the timed runs ask for — the baseline's pages (all
    days at once) and a gateway load — and return how many it computed."""
    async with LiteLLMClient(litellm.url, MASTER_KEY, concurrency=16, page_size=PAGE_SIZE) as client:
        litellm.counts()
        await asyncio.gather(*(_day_pages(client, day) for day in _days(first, last)))
        computed = litellm.counts()[COMPUTED]
    with fresh_database(pg) as url:
        _, counts = await gateway_load(litellm, url, redis_url, first, last, concurrency=16)
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


async def gateway_load(
    litellm: LiteLLMProcess, database_url: str, redis_url: str, first: date, last: date, concurrency: int
) -> tuple[float, Counter[str]]:
    """Seconds and LiteLLM requests of a cold load into an empty database; checks every row arrived."""
    redis = Redis.from_url(redis_url)
    await redis.flushall()
    db = await Database.open(database_url, max_size=2 * concurrency + 4)
    try:
        async with LiteLLMClient(
            litellm.url, MASTER_KEY, concurrency=concurrency, page_size=PAGE_SIZE
        ) as client:
            cache = DayCache(db, client, redis, concurrency=concurrency, clock=pinned_clock(last))
            litellm.counts()
            began = time.perf_counter()
            report = await cache.ensure(first, last)
            seconds = time.perf_counter() - began
            counts = litellm.counts()
        row = await db.fetch_one("SELECT count(*), coalesce(sum(api_requests), 0) FROM usage_facts")
    finally:
        await db.close()
        await redis.aclose()
    days = (last - first).days + 1
    if not report.complete or len(report.closed) != days:
        raise BenchError(
            f"cold load incomplete: {len(report.closed)} of {days} days closed, {report.failures}"
        )
    stored = (int(row[0]), int(row[1])) if row else (0, 0)
    if stored != (litellm.served.rows, litellm.served.api_requests):
        raise BenchError(f"cold load stored (facts, requests) {stored}, LiteLLM served {litellm.served}")
    return seconds, counts


def _requests(counts: Counter[str]) -> int:
    return sum(n for kind, n in counts.items() if kind != COMPUTED)


async def cold_figures(plan: Plan, pg: LocalPostgres, redis_url: str) -> list[Figure]:
    scale = plan.scale
    first, last = scale.last_day - timedelta(days=plan.cold_days - 1), scale.last_day
    indexes = range(scale.days - plan.cold_days, scale.days)
    baseline: list[float] = []
    baseline_requests = 0
    gateway: dict[int, list[float]] = {c: [] for c in plan.cold_concurrency}
    requests: dict[int, Counter[str]] = {}
    computed: Counter[str] = Counter()  # answers the server had to compute during the timed runs
    with litellm_process(scale, indexes, plan.latency_ms) as litellm:
        warmed = await warm_up(litellm, pg, redis_url, first, last)
        log.info("cold warm-up: %d answers computed", warmed)
        for _ in range(plan.slow_repeat):
            seconds, baseline_requests = await sequential_baseline(litellm.url, first, last)
            baseline.append(seconds)
            computed["baseline"] += litellm.counts()[COMPUTED]
            log.info("cold baseline: %d requests one after another, %.1f s", baseline_requests, seconds)
            for concurrency in plan.cold_concurrency:
                with fresh_database(pg) as url:
                    seconds, requests[concurrency] = await gateway_load(
                        litellm, url, redis_url, first, last, concurrency
                    )
                gateway[concurrency].append(seconds)
                computed[f"gateway at {concurrency}"] += requests[concurrency][COMPUTED]
                total = _requests(requests[concurrency])
                log.info("cold gateway at concurrency %d: %d requests, %.1f s", concurrency, total, seconds)
        served = litellm.served
    figures = []
    for concurrency in plan.cold_concurrency:
        value = median(gateway[concurrency])
        total = _requests(requests[concurrency])
        default = concurrency == plan.cold_concurrency[0]
        figures.append(
            Figure(
                group="cold",
                name=f"cold {plan.cold_days}-d load, LITELLM_CONCURRENCY {concurrency}, {total} requests",
                unit="s",
                value=value,
                baseline=median(baseline),
                baseline_name=f"{baseline_requests} pages one after another",
                ratio=ratio(median(baseline), value),
                ratio_means="baseline ÷ gateway: the speed-up",
                target=Target("ratio", ">=", 8) if default else None,
                repeats=plan.slow_repeat,
                samples={"gateway_s": gateway[concurrency], "baseline_s": baseline},
                details={
                    "days": plan.cold_days,
                    "latency_ms_per_request": plan.latency_ms,
                    "litellm_rows": served.rows,
                    "gateway_requests": {k: n for k, n in requests[concurrency].items() if k != COMPUTED},
                    "baseline_requests": baseline_requests,
                    "page_size": PAGE_SIZE,
                    "server": "answers computed once in an untimed warm-up, then replayed after the latency",
                    "warm_up_answers_computed": warmed,
                    "answers_computed_while_timed": dict(computed),
                },
            )
        )
    return figures
