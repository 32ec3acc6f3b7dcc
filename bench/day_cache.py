"""Figures for the day cache: LiteLLM requests and time of a cold 30-day range, and warm facts queries.

Run: ``.venv/bin/python -m bench.day_cache [--rows-per-day 3000] [--days 30] [--latency 0]``.
Starts its own Postgres, Redis and LiteLLM-compatible server; prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from datasources import facts
from datasources.days import DayCache, days_between
from datasources.db import Database
from datasources.facts_types import FactFilter, Granularity
from datasources.litellm import LiteLLMClient
from migrations import apply_migrations
from server.litellm_compat import Faults, LiteLLMStore, running_litellm
from server.local_services import LocalPostgres, LocalRedis

PROVIDERS = ["openai", "azure", "anthropic", "bedrock", "vertex_ai", "mistral"]


def generate_rows(days: list[date], rows_per_day: int, seed: int = 1) -> list[dict[str, Any]]:
    """Keys mostly on one model; about one key in ten on two models over two providers."""
    rng = random.Random(seed)
    keys = [f"{n:064x}" for n in range(rows_per_day // 2)]
    owners = {key: f"user-{rng.randrange(max(1, len(keys) // 3))}" for key in keys}
    models = [f"model-{n}" for n in range(25)]
    rows: list[dict[str, Any]] = []
    for day in days:
        cells: set[tuple[str, str, str]] = set()
        while len(cells) < rows_per_day:
            key = rng.choice(keys)
            model = models[hash(key) % 25] if rng.random() < 0.9 else rng.choice(models)
            provider = PROVIDERS[hash(model) % 6] if rng.random() < 0.9 else PROVIDERS[(hash(model) + 1) % 6]
            cells.add((key, model, provider))
        for key, model, provider in cells:
            requests = rng.randint(1, 200)
            prompt = requests * rng.randint(100, 4000)
            rows.append(
                {
                    "id": f"{rng.getrandbits(128):032x}",
                    "user_id": owners[key],
                    "date": day.isoformat(),
                    "api_key": key,
                    "model": model,
                    "model_group": model,
                    "custom_llm_provider": provider,
                    "mcp_namespaced_tool_name": "",
                    "endpoint": "/chat/completions",
                    "prompt_tokens": prompt,
                    "completion_tokens": prompt // 5,
                    "spend": round(prompt * 2.5e-6, 9),
                    "api_requests": requests,
                    "successful_requests": requests,
                    "failed_requests": 0,
                    "total_response_time_ms": requests * 900,
                    "timed_requests": requests,
                }
            )
    return rows


async def measure(args: argparse.Namespace, pg: LocalPostgres, redis_url: str, litellm_url: str) -> None:
    end = datetime.now(UTC).date() - timedelta(days=2)
    start = end - timedelta(days=args.days - 1)
    db = await Database.open(pg.url_for("bench"), max_size=24)
    redis = Redis.from_url(redis_url)
    client = LiteLLMClient(litellm_url, "sk-master-1234", concurrency=8)
    cache = DayCache(db, client, redis, concurrency=8)
    began = time.perf_counter()
    report = await cache.ensure(start, end)
    cold = time.perf_counter() - began
    print(
        f"cold {args.days}-day range: {cold:.2f} s, complete={report.complete}, closed={len(report.closed)}",
    )
    f = FactFilter(start, end)
    timings: dict[str, list[float]] = {"ensure (warm)": [], "totals": [], "daily series": []}
    for _ in range(args.repeat):
        for name, work in (
            ("ensure (warm)", lambda: cache.ensure(start, end)),
            ("totals", lambda: facts.totals(db, f)),
            ("daily series", lambda: facts.time_series(db, f, Granularity.DAY)),
        ):
            t0 = time.perf_counter()
            await work()
            timings[name].append((time.perf_counter() - t0) * 1000)
    for name, values in timings.items():
        print(f"warm {name}: median {statistics.median(values):.1f} ms, max {max(values):.1f} ms")
    await client.close()
    await redis.aclose()
    await db.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows-per-day", type=int, default=3000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    end = datetime.now(UTC).date() - timedelta(days=2)
    days = days_between(end - timedelta(days=args.days - 1), end)
    rows = generate_rows(days, args.rows_per_day)
    store = LiteLLMStore(keys=[], users=[], rows=rows)
    pg = LocalPostgres().start()
    rd = LocalRedis().start()
    try:
        import psycopg

        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench")
        apply_migrations(pg.url_for("bench"))
        with running_litellm(store, Faults(latency_seconds=args.latency)) as url:
            asyncio.run(measure(args, pg, rd.url, url))
            counts = Counter(
                (r.path, "narrowed" if "model" in r.params else "page") for r in store.request_log
            )
        print(f"{len(rows)} LiteLLM rows over {args.days} days; LiteLLM requests for the cold range:")
        for (path, kind), n in sorted(counts.items()):
            print(f"  {path} [{kind}]: {n}")
    finally:
        rd.stop()
        pg.stop()


if __name__ == "__main__":
    main()
