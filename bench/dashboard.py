"""Server time of a 90-day dashboard on the demo data set: cold (days fetched from LiteLLM) and warm.

Run: ``.venv/bin/python -m bench.dashboard [--days 90] [--repeat 20]``. Starts its own Postgres, Redis
and LiteLLM-compatible server with the demo data, drives the app in-process over ASGI (server time, no
network), and prints the cold time, warm median/p95 and SQL statements per request.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from redis.asyncio import Redis

from usage_gateway.datasources.daycache.days import DayCache
from usage_gateway.datasources.db import Database, count_statements
from usage_gateway.datasources.litellm.client import LiteLLMClient
from usage_gateway.devtools.demo import fill_directory
from usage_gateway.devtools.demo_data import generate
from usage_gateway.devtools.litellm_compat import LiteLLMStore, running_litellm
from usage_gateway.devtools.local_services import LocalPostgres, LocalRedis
from usage_gateway.migrations import apply_migrations
from usage_gateway.resolvers.viewer import Role
from usage_gateway.server.app import create_app
from usage_gateway.server.config import Settings
from usage_gateway.server.resources import Resources
from usage_gateway.server.tokens import issue_token

SECRET = "bench-" + "0" * 40
NODES = "metrics { spend requests totalTokens } share"
DASHBOARD = f"""
query($from: Date!, $to: Date!) {{
  usage(filter: {{from: $from, to: $to}}) {{
    totals {{ spend requests successRate totalTokens averageLatencyMs
              activeUsers activeApiKeys activeModels }}
    previousPeriod {{ spend requests totalTokens activeUsers }}
    timeSeries(granularity: DAY) {{ date metrics {{ spend requests totalTokens }} }}
    byUser(first: 50) {{ totalCount nodes {{ userId user {{ username }} {NODES} }} }}
    byModel(first: 50) {{ totalCount nodes {{ model providers {NODES} }} }}
    byProvider(first: 50) {{ totalCount nodes {{ provider models {NODES} }} }}
    byApiKey(first: 50) {{
      totalCount nodes {{ apiKeyId apiKey {{ keyAlias }} user {{ username }} {NODES} }}
    }}
    freshness {{ complete days closedDays openDays missingDays }}
  }}
}}"""


async def measure(database_url: str, redis_url: str, litellm_url: str, days: int, repeat: int) -> None:
    settings = Settings(database_url=database_url, redis_url=redis_url, jwt_secret=SECRET)
    db = await Database.open(database_url, max_size=24)
    redis = Redis.from_url(redis_url)
    client = LiteLLMClient(litellm_url, "sk-master-1234")
    resources = Resources(settings, db, redis, client, DayCache(db, client, redis))
    app = create_app(settings, resources=resources)
    today = datetime.now(UTC).date()
    variables = {"from": (today - timedelta(days=days - 1)).isoformat(), "to": today.isoformat()}
    headers = {"Authorization": f"Bearer {issue_token(SECRET, 'bench', [Role.ADMIN])}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:

        async def once() -> tuple[float, int, Any]:
            with count_statements() as counter:
                began = time.perf_counter()
                response = await http.post(
                    "/graphql",
                    json={"query": DASHBOARD, "variables": variables},
                    headers=headers,
                    timeout=600,
                )
                elapsed = time.perf_counter() - began
            body = response.json()
            assert "errors" not in body, body["errors"]
            return elapsed, counter.count, body

        cold, cold_statements, body = await once()
        warm = [await once() for _ in range(repeat)]
    times = sorted(w[0] * 1000 for w in warm)
    freshness = body["data"]["usage"]["freshness"]
    print(f"{days}-day dashboard, six fields, 50 nodes each (days in range: {freshness['days']})")
    print(
        f"  cold (fetch {2 * days} days from LiteLLM, then answer): {cold:.2f} s,"
        f" {cold_statements} statements"
    )
    print(
        f"  warm: median {statistics.median(times):.1f} ms, p95 {times[int(0.95 * (len(times) - 1))]:.1f} ms,"
        f" {warm[-1][1]} statements per request"
    )
    await resources.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    data = generate()
    store = LiteLLMStore(keys=data.keys, users=data.users, rows=data.rows)
    pg = LocalPostgres().start()
    rd = LocalRedis().start()
    try:
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench")
        url = pg.url_for("bench")
        apply_migrations(url)
        fill_directory(url, data)
        with running_litellm(store) as litellm_url:
            asyncio.run(measure(url, rd.url, litellm_url, args.days, args.repeat))
        print(f"  LiteLLM rows in the data set: {len(data.rows)}; requests served: {len(store.request_log)}")
    finally:
        rd.stop()
        pg.stop()


if __name__ == "__main__":
    main()
