"""Distinct admin dashboards under load: 50 clients, each request a dashboard no cache has seen (its own
95-day range ending on another day, half of them filtered to one model), on the small data set (1,000
users, 3,000 keys). Every request computes; the baseline is the same requests from one client."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg

from bench.gateway import BenchGateway, open_gateway
from bench.load import Budget, Load, crowd_figures, run_clients
from bench.plan import Plan
from bench.queries import DASHBOARD, last_days
from bench.report import Figure
from bench.warm import UPSTREAM

DAYS = 95
FILTERED = DASHBOARD.replace("usage(filter: {from: $from, to: $to})", "usage(filter: $filter)").replace(
    "query Dashboard($from: Date!, $to: Date!)", "query Dashboard($filter: UsageFilter!)"
)


def _models(database_url: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        return [row[0] for row in conn.execute("SELECT DISTINCT model FROM usage_model_months ORDER BY 1")]


def _filters(plan: Plan, models: list[str]) -> Iterator[dict[str, Any]]:
    """Endlessly, a filter not asked before: the range ends a day earlier each time (within the data
    set's last 200 days, then the model changes), every other one narrowed to a model."""
    span = min(DAYS, plan.small.days)
    ends = max(1, min(200, plan.small.days - span))
    for n in itertools.count():
        first, last = last_days(plan.small.last_day - timedelta(days=n % ends), span)
        f: dict[str, Any] = {"from": first.isoformat(), "to": last.isoformat()}
        if n % 2:
            f["models"] = [models[(n // ends) % len(models)]]
        yield {"filter": f}


async def _load(gateway: BenchGateway, filters: Iterator[dict[str, Any]], plan: Plan, clients: int) -> Load:
    async def one_dashboard() -> None:
        await gateway.ask(FILTERED, next(filters), allowed_errors=UPSTREAM)

    budget = Budget(max(plan.requests_at(clients), 3 * clients), plan.load_seconds)
    return await run_clients(clients, one_dashboard, budget=budget)


async def distinct_figures(plan: Plan, small_url: str, redis_url: str) -> list[Figure]:
    filters = _filters(plan, _models(small_url))
    async with open_gateway(small_url, redis_url, plan.small.last_day, answer_cache=False) as gateway:
        alone = await _load(gateway, filters, plan, 1)
        crowd = await _load(gateway, filters, plan, plan.clients[-1])
    name = f"distinct {DAYS}-d dashboards, {plan.small.users:,} users"
    return crowd_figures("distinct", name, crowd, alone, 300)
