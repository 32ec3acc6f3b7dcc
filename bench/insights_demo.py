"""Top movers and anomalies on the demo data (issue 17 items 3 and 4): "what changed most since last
month?".

    .venv/bin/python -m bench.insights_demo [--seed 7]

Starts a private PostgreSQL and the LiteLLM-compatible server with the demo data set as ``make demo``
does, opens the gateway in this process on the demo's clock (today, 12:00 UTC) and asks, for last month
against the period of equal length before it (``previousPeriod``'s), the top movers by user, model and
team (spend), and the anomalies of last month by user and by model; then prints them, with the time of
each query (the first makes the days present from LiteLLM; answer cache off).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any

import httpx
import structlog

from usage_gateway.devtools.demo import fill_directory
from usage_gateway.devtools.demo_data import generate
from usage_gateway.devtools.litellm_compat import MASTER_KEY, LiteLLMStore, running_litellm
from usage_gateway.devtools.local_services import LocalPostgres
from usage_gateway.migrations import apply_migrations
from usage_gateway.resolvers.viewer import Role
from usage_gateway.server.app import create_app
from usage_gateway.server.config import Settings
from usage_gateway.server.resources import Resources
from usage_gateway.server.tokens import issue_token

SECRET = "bench-secret-" + "0123456789abcdef" * 4
MOVERS = """query($f: UsageFilter!, $d: MoverDimension!) {
  usage(filter: $f) { previousPeriod { spend } totals { spend }
    movers(dimension: $d, first: 5) { totalCount
      nodes { id name current previous change changeRelative status } } } }"""
ANOMALIES = """query($f: UsageFilter!, $d: AnomalyDimension!) {
  usage(filter: $f) { anomalies(dimension: $d, first: 5) { totalCount complete skippedDays
    nodes { id name date metric value baseline spread threshold size baselineDays } } } }"""


async def ask(
    http: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any]
) -> tuple[float, Any]:
    began = time.perf_counter()
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    ms = (time.perf_counter() - began) * 1000
    body = response.json()
    if response.status_code != 200 or "errors" in body:
        raise RuntimeError(str(body)[:500])
    return ms, body["data"]["usage"]


def last_month(today: date) -> dict[str, str]:
    end = today.replace(day=1) - timedelta(days=1)
    return {"from": end.replace(day=1).isoformat(), "to": end.isoformat()}


async def measure(database_url: str, litellm_url: str, now: datetime) -> None:
    settings = Settings(
        database_url=database_url,
        litellm_url=litellm_url,
        litellm_master_key=MASTER_KEY,
        jwt_secret=SECRET,
        answer_cache_ttl_seconds=0,
        rate_limit_cost=0,
    )
    resources = await Resources.open(settings, clock=lambda: now)
    app = create_app(resources.settings, resources=resources)
    token = issue_token(SECRET, "bench", [Role.ADMIN])
    month = last_month(now.date())
    print(f"last month {month['from']} to {month['to']}, against the 30 days before it")
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
            for dimension in ("USER", "MODEL", "TEAM"):
                ms, usage = await ask(http, token, MOVERS, {"f": month, "d": dimension})
                movers = usage["movers"]
                print(
                    f"\nmovers by {dimension} ({ms:.0f} ms; {movers['totalCount']} entities; spend"
                    f" {usage['previousPeriod']['spend']:,.2f} -> {usage['totals']['spend']:,.2f}):"
                )
                for n in movers["nodes"]:
                    relative = "" if n["changeRelative"] is None else f" ({n['changeRelative']:+.0%})"
                    print(
                        f"  {n['id']} {n['name'] or ''}: {n['previous']:,.2f} -> {n['current']:,.2f},"
                        f" {n['change']:+,.2f}{relative} {n['status']}"
                    )
            for dimension in ("USER", "MODEL"):
                ms, usage = await ask(http, token, ANOMALIES, {"f": month, "d": dimension})
                found = usage["anomalies"]
                print(
                    f"\nanomalies by {dimension} ({ms:.0f} ms; {found['totalCount']} found;"
                    f" complete {found['complete']}):"
                )
                for n in found["nodes"]:
                    print(
                        f"  {n['date']} {n['id']} {n['name'] or ''} {n['metric']}: {n['value']:,.4g} against"
                        f" median {n['baseline']:,.4g} (spread {n['spread']:,.4g},"
                        f" threshold {n['threshold']:,.4g}, {n['baselineDays']} days):"
                        f" {n['size']:.1f} spreads"
                    )
    finally:
        await resources.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    data = generate(args.seed)
    now = datetime.combine(datetime.now(UTC).date(), clock_time(12), UTC)
    postgres = LocalPostgres().start()
    try:
        apply_migrations(postgres.url)
        fill_directory(postgres.url, data)
        store = LiteLLMStore(data.keys, data.users, data.rows, master_key=MASTER_KEY, tag_rows=data.tag_rows)
        store.set_teams(data.teams)
        with running_litellm(store) as litellm_url:
            asyncio.run(measure(postgres.url, litellm_url, now))
    finally:
        postgres.stop()


if __name__ == "__main__":
    main()
