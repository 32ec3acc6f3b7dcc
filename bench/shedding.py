"""Tail behaviour under overload (issue 12): many clients (200 at reference scale) on the warm dashboard,
answer cache off, through the gateway's admission control and, in the same run, without it
(``MAX_CONCURRENT_OPERATIONS=0``, the baseline).

The clients behave as clients should: after a 503 each waits its ``Retry-After`` (plus up to half again,
at random, so that they do not all come back at once) before asking again. Every request is one of:
answered (HTTP 200 with data and no error), shed (503 ``OVERLOADED``), timed out (the operation timeout's
``QUERY_TOO_COMPLEX``), or failed (anything else, which fails the figures).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from bench.gateway import open_gateway
from bench.load import Budget, plural, run_clients
from bench.plan import Plan
from bench.queries import DASHBOARD, dashboard_variables, last_days
from bench.report import Figure, Target, percentile, ratio
from usage_gateway.server.config import Settings

log = logging.getLogger(__name__)

TIMEOUT_SECONDS: float = Settings.model_fields["operation_timeout_seconds"].default
_TIMED_OUT = "the operation ran longer than"  # the start of the operation timeout's message
_JITTER = 0.5


@dataclass
class Outcomes:
    """What one load got back, request by request (milliseconds from sending to the whole answer)."""

    answered_ms: list[float] = field(default_factory=list)
    shed_ms: list[float] = field(default_factory=list)
    timed_out_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    retry_after: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.answered_ms) + len(self.shed_ms) + len(self.timed_out_ms) + len(self.failures)

    @property
    def not_shed_ms(self) -> list[float]:
        return self.answered_ms + self.timed_out_ms

    def share(self, count: int) -> float:
        return 100 * count / self.requests if self.requests else 0.0

    def details(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "answered": len(self.answered_ms),
            "shed": len(self.shed_ms),
            "timed_out": len(self.timed_out_ms),
            "failed": len(self.failures),
            "answered_per_second": len(self.answered_ms) / self.seconds if self.seconds else 0.0,
            "retry_after_seconds": {
                "min": min(self.retry_after, default=None),
                "median": percentile(self.retry_after, 50) if self.retry_after else None,
                "max": max(self.retry_after, default=None),
            },
            "seconds": self.seconds,
        }


async def _load(
    plan: Plan, database_url: str, redis_url: str, first: date, last: date, settings: dict[str, Any]
) -> Outcomes:
    variables = dashboard_variables(first, last)
    outcomes = Outcomes()
    jitter = random.Random(12)
    loop = asyncio.get_running_loop()
    async with open_gateway(database_url, redis_url, last, answer_cache=False, **settings) as gateway:
        await gateway.ask(DASHBOARD, variables)  # the day markers, the plans, the pools
        headers = {"Authorization": f"Bearer {gateway.token}"}

        async def one() -> None:
            began = time.perf_counter()
            response = await gateway.http.post(
                "/graphql", json={"query": DASHBOARD, "variables": variables}, headers=headers, timeout=600
            )
            ms = (time.perf_counter() - began) * 1000
            body = response.json()
            codes = [error.get("extensions", {}).get("code") for error in body.get("errors") or ()]
            if response.status_code == 503 and codes == ["OVERLOADED"]:
                outcomes.shed_ms.append(ms)
                wait = float(response.headers["Retry-After"])
                outcomes.retry_after.append(wait)
                # …but not past the load's time: a client has nothing more to ask after it.
                await asyncio.sleep(min(wait * (1 + _JITTER * jitter.random()), max(0.0, end - loop.time())))
            elif response.status_code == 200 and not codes and body.get("data") is not None:
                outcomes.answered_ms.append(ms)
            elif codes == ["QUERY_TOO_COMPLEX"] and body["errors"][0]["message"].startswith(_TIMED_OUT):
                outcomes.timed_out_ms.append(ms)
            else:
                outcomes.failures.append(f"HTTP {response.status_code}: {response.text[:200]}")

        clients = plan.shed_clients
        end = loop.time() + plan.load_seconds
        load = await run_clients(clients, one, budget=Budget(plan.requests_at(clients), plan.load_seconds))
        outcomes.seconds = load.seconds
    return outcomes


def _admission_settings(plan: Plan) -> dict[str, Any]:
    if plan.shed_admission is None:  # the gateway's defaults, which the other load figures override
        defaults = Settings.model_fields
        return {
            name: defaults[name].default
            for name in ("max_concurrent_operations", "max_queued_operations", "max_queue_wait_seconds")
        }
    concurrent, queued, wait = plan.shed_admission
    return {
        "max_concurrent_operations": concurrent,
        "max_queued_operations": queued,
        "max_queue_wait_seconds": wait,
    }


async def shedding_figures(plan: Plan, database_url: str, redis_url: str) -> list[Figure]:
    first, last = last_days(plan.last_day, plan.dashboard_days)
    admission = _admission_settings(plan)
    # Shedding first: the baseline's cancelled operations cannot slow it down.
    shed = await _load(plan, database_url, redis_url, first, last, admission)
    base = await _load(plan, database_url, redis_url, first, last, {"max_concurrent_operations": 0})
    for name, outcomes in (("shedding", shed), ("baseline", base)):
        log.info("%s, %s: %s", name, plural(plan.shed_clients), outcomes.details())
    details = {
        "clients": plan.shed_clients,
        "days": plan.dashboard_days,
        "admission": admission if plan.shed_admission else f"the gateway's defaults: {admission}",
        "shedding": shed.details(),
        "baseline": base.details(),
        "errors": shed.failures,
        "baseline_failures": base.failures,
    }
    prefix = f"warm {plan.dashboard_days}-d dashboard, {plural(plan.shed_clients)}"
    timeout = f"{TIMEOUT_SECONDS:g} s timeout"

    def figure(name: str, unit: str, value: float, baseline: float, baseline_name: str) -> Figure:
        return Figure(
            group="shedding",
            name=f"{prefix}, {name}",
            unit=unit,
            value=value,
            baseline=baseline,
            baseline_name=baseline_name,
            ratio=ratio(value, baseline),
            ratio_means="shedding ÷ no shedding",
            repeats=shed.requests,
            samples={
                "answered_ms": shed.answered_ms,
                "shed_ms": shed.shed_ms,
                "timed_out_ms": shed.timed_out_ms,
                "baseline_answered_ms": base.answered_ms,
                "baseline_timed_out_ms": base.timed_out_ms,
            },
            details=details,
        )

    answered = figure(
        "p95 of answered",
        "ms",
        percentile(shed.not_shed_ms, 95),
        percentile(base.not_shed_ms, 95),
        "no shedding, every request",
    )
    answered.target = Target("value", "<", TIMEOUT_SECONDS * 1000)
    to_503 = figure(
        "time to 503, p95",
        "ms",
        percentile(shed.shed_ms, 95),
        percentile(base.not_shed_ms, 95),
        "no shedding: time to any answer",
    )
    to_503.target = Target("value", "<", TIMEOUT_SECONDS * 1000 / 3)
    share_shed = figure(
        "share shed (503)",
        "%",
        shed.share(len(shed.shed_ms)),
        base.share(len(base.timed_out_ms)),
        f"no shedding: share failed by the {timeout} instead",
    )
    timed_out = figure(
        f"share that hit the {timeout}",
        "%",
        shed.share(len(shed.timed_out_ms)),
        base.share(len(base.timed_out_ms)),
        "no shedding",
    )
    timed_out.target = Target("value", "==", 0)
    return [answered, to_503, share_shed, timed_out]
