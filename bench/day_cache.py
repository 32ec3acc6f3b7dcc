"""Figures for the day cache: LiteLLM requests and wall time of a cold N-day load, against the baseline of
DESIGN §10 (the same days' pages fetched one after another, page_size 1000), then warm facts queries.

Run: ``.venv/bin/python -m bench.day_cache [--days 30] [--latency-ms 200] [--concurrency 8] [--smoke]
[--legacy-share 0.05]``.

The data is the reference data set (``bench/reference_data.py``: 10,000 users, 30,000 keys, 150 models,
8 providers), its last ``--days`` days. The LiteLLM-compatible server runs in its own process, as LiteLLM
would, so its work does not compete with the gateway's for one interpreter. DESIGN §10 asks for a LiteLLM
that answers each page in 200 ms, so by default every answer is computed once in an untimed warm-up pass
and replayed after ``--latency-ms`` (see ``_Replay``). Starts its own Postgres and Redis; prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import logging
import multiprocessing
import resource
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from multiprocessing.connection import Connection
from typing import Any

import psycopg
import structlog
from redis.asyncio import Redis
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bench.reference_data import ReferenceData, Scale
from usage_gateway.datasources.daycache.days import DayCache, RangeReport
from usage_gateway.datasources.db import Database
from usage_gateway.datasources.facts import aggregates as facts
from usage_gateway.datasources.facts.vocabulary import FactFilter, Granularity
from usage_gateway.datasources.litellm.client import DAILY_ACTIVITY, LiteLLMClient
from usage_gateway.devtools.litellm_compat import LiteLLMStore, create_litellm_app
from usage_gateway.devtools.local_services import LocalPostgres, LocalRedis, serving
from usage_gateway.migrations import apply_migrations

MASTER_KEY = "sk-master-1234"
PAGE_SIZE = 1000


def _kind(path: str, params: Mapping[str, str]) -> str:
    if path != DAILY_ACTIVITY:
        return path.rsplit("/", 1)[-1]
    if "model" in params and "user_id" in params:
        return "model= & user_id= narrowing"
    if "model" in params:
        return "model= pages"
    return "unfiltered pages"


class _Replay:
    """LiteLLM answering every request in exactly ``latency`` seconds: the compat server computes each
    answer once (a warm-up pass, untimed) and it is replayed from memory afterwards.

    The compat server is single-threaded Python taking 0.1-0.3 s of CPU per 1000-row page; left in the
    measurement, it, not the gateway, would set the pace of any concurrent client. Without ``replay``
    every answer is computed anew, then delayed.
    """

    def __init__(self, app: ASGIApp, latency: float, *, replay: bool) -> None:
        self.app = app
        self.latency = latency
        self.replay = replay
        self.answers: dict[tuple[str, bytes], list[Message]] = {}
        self.counts: Counter[str] = Counter()
        self.computed = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.counts[_kind(scope["path"], dict(QueryParams(scope["query_string"])))] += 1
        key = (scope["path"], scope["query_string"])
        answer = self.answers.get(key)
        if answer is None:
            self.computed += 1
            answer = []

            async def keep(message: Message) -> None:
                answer.append(message)

            await self.app(scope, receive, keep)
            if self.replay and answer[0].get("status") == 200:
                self.answers[key] = answer
            else:
                await asyncio.sleep(self.latency)
        else:
            await asyncio.sleep(self.latency)
        for message in answer:
            await send(message)

    def take_counts(self) -> tuple[Counter[str], int]:
        counts, computed = self.counts, self.computed
        self.counts, self.computed = Counter(), 0
        return counts, computed


def with_legacy_rows(rows: list[dict[str, Any]], share: float) -> list[dict[str, Any]]:
    """``rows`` where ``share`` of the (date, key, model) groups that went to two providers carry a
    legacy row: its ``user_id`` NULL, as LiteLLM before ``''`` was written. Such a key spans two users
    and two providers within one model, the case narrowing by user has to solve without a filter that
    selects NULL users. Chosen by a hash of the group, so the same rows come out every run."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["date"], row["api_key"], row["model"]].append(row)
    threshold = int(share * 2**32)
    for group, members in groups.items():
        digest = hashlib.sha256("|".join(group).encode()).digest()
        if len({r["custom_llm_provider"] for r in members}) > 1 and int.from_bytes(digest[:4]) < threshold:
            min(members, key=lambda r: r["id"])["user_id"] = None
    return rows


def _serve(
    scale: Scale, days: int, latency_ms: float, replay: bool, legacy_share: float, conn: Connection
) -> None:
    """The LiteLLM side, in a child process: sends its URL, then serves "counts" and "forget" until "stop"."""
    data = ReferenceData(scale)
    rows = with_legacy_rows(data.litellm_rows(range(scale.days - days, scale.days)), legacy_share)
    store = LiteLLMStore(keys=data.litellm_keys(), users=data.litellm_users(), rows=rows)
    app = _Replay(create_litellm_app(store), latency_ms / 1000, replay=replay)
    with serving(app) as url:
        conn.send((url, len(rows)))
        while (command := conn.recv()) != "stop":
            if command == "counts":
                conn.send(app.take_counts())
            elif command == "forget":
                app.answers.clear()


@dataclass
class LiteLLMProcess:
    conn: Connection
    url: str
    rows: int

    def counts(self) -> tuple[Counter[str], int]:
        """Requests LiteLLM answered since the last call, by kind, and how many it had to compute."""
        self.conn.send("counts")
        counts: tuple[Counter[str], int] = self.conn.recv()
        return counts

    def forget(self) -> None:
        self.conn.send("forget")


async def sequential_baseline(url: str, start: date, end: date) -> tuple[int, float]:
    """DESIGN §10's reference: every page of every day, one request after another."""
    requests = 0
    began = time.perf_counter()
    async with LiteLLMClient(url, MASTER_KEY, concurrency=1, page_size=PAGE_SIZE) as client:
        day = start
        while day <= end:
            page, pages = 1, 1
            while page <= pages:
                body = await client.get_json(
                    DAILY_ACTIVITY,
                    {
                        "start_date": day.isoformat(),
                        "end_date": day.isoformat(),
                        "page_size": str(PAGE_SIZE),
                        "page": str(page),
                    },
                )
                requests += 1
                pages = max(1, int(body["metadata"]["total_pages"]))
                page += 1
            day += timedelta(days=1)
    return requests, time.perf_counter() - began


async def cold_load(
    args: argparse.Namespace, url: str, database_url: str, redis_url: str, start: date, end: date
) -> tuple[RangeReport, float, float]:
    """A cold ``ensure`` of the range: its report, wall seconds and the gateway's CPU seconds."""
    now = datetime.combine(end + timedelta(days=3), datetime.min.time(), UTC)
    offset = now - datetime.now(UTC)
    db = await Database.open(database_url, max_size=2 * args.concurrency + 4)
    redis = Redis.from_url(redis_url)
    await redis.flushall()
    client = LiteLLMClient(url, MASTER_KEY, concurrency=args.concurrency, page_size=PAGE_SIZE)
    cache = DayCache(
        db, client, redis, concurrency=args.concurrency, clock=lambda: datetime.now(UTC) + offset
    )
    try:
        began, cpu = time.perf_counter(), time.process_time()
        report = await cache.ensure(start, end)
        return report, time.perf_counter() - began, time.process_time() - cpu
    finally:
        await client.close()
        await redis.aclose()
        await db.close()


async def warm_queries(
    args: argparse.Namespace, database_url: str, redis_url: str, start: date, end: date
) -> None:
    db = await Database.open(database_url, max_size=4)
    redis = Redis.from_url(redis_url)
    now = datetime.combine(end + timedelta(days=3), datetime.min.time(), UTC)
    offset = now - datetime.now(UTC)
    cache = DayCache(db, None, redis, clock=lambda: datetime.now(UTC) + offset)
    f = FactFilter(start, end)
    timings: dict[str, list[float]] = {"ensure (warm)": [], "totals": [], "daily series": []}
    work: dict[str, Callable[[], Awaitable[object]]] = {
        "ensure (warm)": lambda: cache.ensure(start, end),
        "totals": lambda: facts.totals(db, f),
        "daily series": lambda: facts.time_series(db, f, Granularity.DAY),
    }
    for _ in range(args.repeat):
        for name, run in work.items():
            t0 = time.perf_counter()
            await run()
            timings[name].append((time.perf_counter() - t0) * 1000)
    for name, values in timings.items():
        print(f"warm {name}: median {statistics.median(values):.1f} ms, max {max(values):.1f} ms")
    await redis.aclose()
    await db.close()


async def measure(
    args: argparse.Namespace, litellm: LiteLLMProcess, pg: LocalPostgres, redis_url: str
) -> None:
    scale = Scale.smoke() if args.smoke else Scale()
    end = scale.last_day
    start = end - timedelta(days=args.days - 1)
    answers = "replayed (computed once, untimed)" if args.replay else "computed on every request"
    legacy = f" ({args.legacy_share:.0%} of two-provider key-model-days with a NULL-user row)"
    print(
        f"{litellm.rows} LiteLLM rows{legacy if args.legacy_share else ''} over {args.days} days"
        f" ({start} … {end}); LiteLLM answers in"
        f" {args.latency_ms:g} ms, {answers}; LITELLM_CONCURRENCY={args.concurrency}"
    )
    if args.replay:
        await cold_load(args, litellm.url, pg.url_for("warmup"), redis_url, start, end)
        litellm.counts()
    report, cold, cpu = await cold_load(args, litellm.url, pg.url_for("bench"), redis_url, start, end)
    counts, computed = litellm.counts()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"cold {args.days}-day load: {sum(counts.values())} requests, {cold:.2f} s (gateway CPU {cpu:.1f} s;"
        f" complete={report.complete}, closed={len(report.closed)}, unverified={len(report.unverified)},"
        f" peak RSS {rss_mb:.0f} MB)"
    )
    for kind, n in sorted(counts.items()):
        print(f"  {kind}: {n}")
    if args.replay and computed:
        print(f"  ({computed} answers were not replayed: the requests differed from the warm-up's)")

    if args.baseline:
        litellm.forget()
        if args.replay:
            await sequential_baseline(litellm.url, start, end)
            litellm.counts()
        requests, seconds = await sequential_baseline(litellm.url, start, end)
        litellm.counts()
        litellm.forget()
        print(
            f"baseline, the same days' pages one after another: {requests} requests, {seconds:.2f} s"
            f" → the cold load is {seconds / cold:.1f}× faster"
        )
    await warm_queries(args, pg.url_for("bench"), redis_url, start, end)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--days", type=int, default=30, help="the cold range: the data set's last N days")
    parser.add_argument("--latency-ms", type=float, default=200.0, help="LiteLLM's time per request")
    parser.add_argument("--concurrency", type=int, default=8, help="LITELLM_CONCURRENCY")
    parser.add_argument("--repeat", type=int, default=20, help="warm query repetitions")
    parser.add_argument(
        "--replay",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="compute LiteLLM's answers in an untimed warm-up pass and replay them (default), so that\n"
        "LiteLLM answers in exactly --latency-ms; --no-replay times the compat server's own work too",
    )
    parser.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time the sequential baseline (at 200 ms, over a minute for 30 days)",
    )
    parser.add_argument("--smoke", action="store_true", help="the reference set at a hundredth of its size")
    parser.add_argument(
        "--legacy-share",
        type=float,
        default=0.0,
        help="share of the (day, key, model) groups on two providers given a legacy NULL-user row",
    )
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    scale = Scale.smoke() if args.smoke else Scale()
    if not 1 <= args.days <= scale.days:
        parser.error(f"--days must be within 1..{scale.days}")

    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    server = context.Process(
        target=_serve,
        args=(scale, args.days, args.latency_ms, args.replay, args.legacy_share, theirs),
        daemon=True,
    )
    server.start()
    pg = LocalPostgres().start()
    rd = LocalRedis().start()
    try:
        with psycopg.connect(pg.url, autocommit=True) as conn:
            for name in ("bench", "warmup"):
                conn.execute(f"CREATE DATABASE {name}")
                apply_migrations(pg.url_for(name))
        url, rows = ours.recv()
        asyncio.run(measure(args, LiteLLMProcess(ours, url, rows), pg, rd.url))
    finally:
        with contextlib.suppress(OSError):
            ours.send("stop")
        server.join(10)
        rd.stop()
        pg.stop()


if __name__ == "__main__":
    main()
