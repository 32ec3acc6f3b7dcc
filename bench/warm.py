"""The warm dashboard (every day stored, answer cache off): the gateway's server time against the bare SQL
of the same request, alone and under 1, 10 and 50 concurrent clients."""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from typing import Any

from bench.bare import BareSQL, Statements, open_bare
from bench.gateway import Answer, BenchGateway, open_gateway
from bench.load import Budget, Load, plural, run_clients
from bench.plan import Plan
from bench.queries import DASHBOARD, dashboard_variables, last_days
from bench.report import Figure, Target, median, percentile, ratio

log = logging.getLogger(__name__)
UPSTREAM = ("UPSTREAM_UNAVAILABLE",)  # allowed when the previous period lies before the data set


@dataclass
class DashboardTiming:
    days: int
    gateway_ms: list[float]
    bare_concurrent_ms: list[float]
    bare_sequential_ms: list[float]
    statements: Statements
    answer: Answer

    def details(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "statements_per_request": len(self.statements),
            "bare_sequential_median_ms": median(self.bare_sequential_ms),
            "freshness": self.answer.data["usage"]["freshness"],
            "totals": self.answer.data["usage"]["totals"],
        }


async def time_dashboard(
    gateway: BenchGateway,
    bare: BareSQL,
    first: date,
    last: date,
    repeat: int,
    *,
    allowed_errors: Collection[str] = (),
) -> DashboardTiming:
    """The dashboard ``repeat`` times, each time followed by its statements run bare, concurrently and
    one after another (interleaved, so that noise from elsewhere on the machine hits all three alike).
    A first request warms the day markers, the plans and the pools and is not counted."""
    variables = dashboard_variables(first, last)
    await gateway.ask(DASHBOARD, variables, allowed_errors=allowed_errors)
    answer, statements = await gateway.recorded(DASHBOARD, variables, allowed_errors=allowed_errors)
    await bare.concurrent(statements)
    timing = DashboardTiming((last - first).days + 1, [], [], [], statements, answer)
    for _ in range(repeat):
        timing.gateway_ms.append((await gateway.ask(DASHBOARD, variables, allowed_errors=allowed_errors)).ms)
        timing.bare_concurrent_ms.append(await bare.concurrent(statements))
        timing.bare_sequential_ms.append(await bare.sequential(statements))
    return timing


def dashboard_figure(group: str, name: str, timing: DashboardTiming, repeat: int) -> Figure:
    value = median(timing.gateway_ms)
    baseline = median(timing.bare_concurrent_ms)
    return Figure(
        group=group,
        name=name,
        unit="ms",
        value=value,
        baseline=baseline,
        baseline_name=f"its {len(timing.statements)} SQL statements, concurrent",
        ratio=ratio(value, baseline),
        ratio_means="gateway ÷ bare SQL",
        repeats=repeat,
        samples={
            "gateway_ms": timing.gateway_ms,
            "bare_concurrent_ms": timing.bare_concurrent_ms,
            "bare_sequential_ms": timing.bare_sequential_ms,
        },
        details=timing.details(),
    )


async def warm_figures(plan: Plan, database_url: str, redis_url: str) -> list[Figure]:
    first, last = last_days(plan.last_day, plan.dashboard_days)
    async with (
        open_gateway(database_url, redis_url, last, answer_cache=False) as gateway,
        open_bare(database_url, gateway) as bare,
    ):
        timing = await time_dashboard(gateway, bare, first, last, plan.repeat)
    days = plan.dashboard_days
    main = dashboard_figure("warm", f"warm {days}-d dashboard, server time", timing, plan.repeat)
    main.target = Target("value", "<=", 300)
    sequential = median(timing.bare_sequential_ms)
    versus_sequential = Figure(
        group="warm",
        name=f"warm {days}-d dashboard, against sequential SQL",
        unit="ms",
        value=main.value,
        baseline=sequential,
        baseline_name=f"its {len(timing.statements)} SQL statements, sequential",
        ratio=ratio(main.value, sequential),
        ratio_means="gateway ÷ bare SQL",
        repeats=plan.repeat,
        samples={"gateway_ms": timing.gateway_ms, "bare_sequential_ms": timing.bare_sequential_ms},
        details=timing.details(),
    )
    return [main, versus_sequential]


def _load_figures(plan: Plan, gateway: Load, bare: Load) -> list[Figure]:
    figures = []
    for p in (50, 95):
        value, baseline = percentile(gateway.ms, p), percentile(bare.ms, p)
        at_most = plan.clients[-1]
        figures.append(
            Figure(
                group="concurrency",
                name=f"warm {plan.dashboard_days}-d dashboard, {plural(gateway.clients)}, p{p}",
                unit="ms",
                value=value,
                baseline=baseline,
                baseline_name="bare SQL, as many clients",
                ratio=ratio(value, baseline),
                ratio_means="gateway ÷ bare SQL",
                target=Target("value", "<", 300) if p == 95 and gateway.clients == at_most else None,
                repeats=len(gateway.ms),
                samples={"gateway_ms": gateway.ms, "bare_ms": bare.ms},
                details={
                    "clients": gateway.clients,
                    "requests": len(gateway.ms),
                    "errors": gateway.errors,
                    "bare_errors": bare.errors,
                    "gateway_requests_per_second": gateway.throughput,
                    "bare_requests_per_second": bare.throughput,
                },
            )
        )
    return figures


async def concurrency_figures(plan: Plan, database_url: str, redis_url: str) -> list[Figure]:
    first, last = last_days(plan.last_day, plan.dashboard_days)
    variables = dashboard_variables(first, last)
    figures = []
    async with (
        open_gateway(database_url, redis_url, last, answer_cache=False) as gateway,
        open_bare(database_url, gateway) as bare,
    ):
        await gateway.ask(DASHBOARD, variables)  # the day markers, so that only the query's SQL is recorded
        _, statements = await gateway.recorded(DASHBOARD, variables)

        async def through_gateway() -> None:
            await gateway.ask(DASHBOARD, variables)

        async def bare_sql() -> None:
            await bare.concurrent(statements)

        for clients in plan.clients:
            budget = Budget(plan.requests_at(clients), plan.load_seconds)
            on_gateway = await run_clients(clients, through_gateway, budget=budget)
            on_bare = await run_clients(clients, bare_sql, budget=budget)
            figures += _load_figures(plan, on_gateway, on_bare)
            failed = len(on_gateway.errors)
            log.info("dashboard, %s: %d requests, %d failed", plural(clients), len(on_gateway.ms), failed)
    return figures
