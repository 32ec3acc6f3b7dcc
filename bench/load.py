"""Concurrent clients, each issuing requests back to back: the latency of every request."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bench.gateway import BenchError
from bench.report import Figure, Target, percentile, ratio


def plural(clients: int) -> str:
    return f"{clients} client" if clients == 1 else f"{clients} clients"


@dataclass
class Load:
    clients: int
    ms: list[float] = field(default_factory=list)  # every request's, failed ones too
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the whole level

    @property
    def throughput(self) -> float:
        return len(self.ms) / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Budget:
    requests: int
    seconds: float


async def run_clients(
    clients: int, one: Callable[[], Awaitable[object]], *, budget: Budget, warm_up: bool = False
) -> Load:
    """``clients`` tasks, each making requests back to back (``one`` makes one) until the budget's
    requests were started or its seconds have passed — but each client makes one at least. A request
    that fails (:class:`BenchError`: a timeout, an error in the answer) is timed and counted, not
    retried. ``warm_up``: one untimed request per client first, to fill the pools to this concurrency."""
    load = Load(clients)
    if warm_up:
        await asyncio.gather(*(one() for _ in range(clients)))
    gc.collect()
    loop = asyncio.get_running_loop()
    began = loop.time()
    started = 0

    async def client() -> None:
        nonlocal started
        made = 0
        while started < budget.requests and (made == 0 or loop.time() - began < budget.seconds):
            started += 1
            made += 1
            request_began = time.perf_counter()
            try:
                await one()
            except BenchError as exc:
                load.errors.append(str(exc)[:200])
            load.ms.append((time.perf_counter() - request_began) * 1000)

    await asyncio.gather(*(client() for _ in range(clients)))
    load.seconds = loop.time() - began
    return load


def crowd_figures(group: str, name: str, crowd: Load, alone: Load, p95_below_ms: float) -> list[Figure]:
    """p50 and p95 of ``crowd`` (``name`` followed by its clients and the percentile) against the same
    requests from ``alone``, one client; the p95 targets ``p95_below_ms``."""
    figures = []
    for p in (50, 95):
        value, baseline = percentile(crowd.ms, p), percentile(alone.ms, p)
        figures.append(
            Figure(
                group=group,
                name=f"{name}, {plural(crowd.clients)}, p{p}",
                unit="ms",
                value=value,
                baseline=baseline,
                baseline_name="the same kind, 1 client",
                ratio=ratio(value, baseline),
                ratio_means="crowd ÷ alone",
                target=Target("value", "<", p95_below_ms) if p == 95 else None,
                repeats=len(crowd.ms),
                samples={"crowd_ms": crowd.ms, "alone_ms": alone.ms},
                details={
                    "clients": crowd.clients,
                    "errors": crowd.errors + alone.errors,
                    "requests_per_second": crowd.throughput,
                },
            )
        )
    return figures
