"""The warm dashboard answered from the Redis answer cache, against the bare Redis read it rests on (the
MGET of the data version and the entry): its latency with one client and with the most clients of the
plan, and how many hits per second those clients get (issue 12: p95 ≤ 5 ms alone, ≥ 500 hits/s with
p95 < 100 ms under 50 clients), in ``--repeat`` rounds that alternate with the bare reads.

The hits are checked once in full (the answer of a hit is the answer of the miss that stored it); while
timed, a client sends one request built once and checks the status, ``X-Answer-Cache: hit`` and that the
body is an answer, without decoding it: the clients share the gateway's process and CPU, and encoding the
request and decoding a large answer are the client's work.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis

from bench.gateway import BenchError, open_gateway
from bench.load import Budget, Load, plural, run_clients
from bench.plan import Plan
from bench.queries import DASHBOARD, dashboard_variables, last_days
from bench.report import Figure, Target, median, percentile, ratio
from usage_gateway.datasources.answer_cache import KEY_PREFIX
from usage_gateway.datasources.daycache.days import DATA_VERSION_KEY

BASELINE = "bare Redis MGET"
P95_ALONE_MS = 5.0
P95_LOADED_MS = 100.0
HITS_PER_SECOND = 500.0


async def cache_figures(plan: Plan, database_url: str, redis_url: str) -> list[Figure]:
    first, last = last_days(plan.last_day, plan.dashboard_days)
    variables = dashboard_variables(first, last)
    redis = Redis.from_url(redis_url)
    await redis.flushall()
    try:
        async with open_gateway(database_url, redis_url, last, answer_cache=True) as gateway:
            computed = await gateway.ask(DASHBOARD, variables)  # the warm-up: computes and stores
            keys = [key async for key in redis.scan_iter(match=f"{KEY_PREFIX}*")]
            if computed.cache != "miss" or len(keys) != 1:
                raise BenchError(
                    f"answer cache: first request {computed.cache!r}, {len(keys)} entries stored"
                )
            for _ in range(2):  # through Strawberry (which prepares the text), then without it
                hit = await gateway.ask(DASHBOARD, variables)
                if hit.cache != "hit" or hit.data != computed.data:
                    raise BenchError(f"answer cache: {hit.cache!r}, or not the answer computed")
            # Built once: the clients' work is kept out of the gateway's measure as far as it can be.
            request = gateway.http.build_request(
                "POST",
                "/graphql",
                content=orjson.dumps({"query": DASHBOARD, "variables": variables}),
                headers={"Authorization": f"Bearer {gateway.token}", "Content-Type": "application/json"},
            )

            async def from_cache() -> None:
                response = await gateway.http.send(request)
                if response.status_code != 200 or response.headers.get("X-Answer-Cache") != "hit":
                    raise BenchError(f"HTTP {response.status_code}, {response.headers.get('X-Answer-Cache')}")
                if not response.content.startswith(b'{"data":{'):
                    raise BenchError(f"not an answer: {response.content[:200]!r}")

            async def bare_redis() -> None:
                version, stored = await redis.mget([DATA_VERSION_KEY, keys[0]])
                assert isinstance(version, bytes)
                assert isinstance(stored, bytes)

            levels = [
                await _level(plan, clients, from_cache, bare_redis) for clients in (1, plan.clients[-1])
            ]
    finally:
        await redis.aclose()
    details: dict[str, object] = {
        "first_request_ms": computed.ms,  # a miss: computed, then stored
        "answer_bytes": len(orjson.dumps(computed.data)),
    }
    alone, loaded = levels
    return [
        _latency(alone, 50, None, details),
        _latency(alone, 95, Target("value", "<=", P95_ALONE_MS), details),
        _latency(loaded, 95, Target("value", "<", P95_LOADED_MS), details),
        Figure(
            group="cache",
            name=f"answer cache hits per second, {plural(loaded.clients)}",
            unit="hits/s",
            value=loaded.hits_per_second,
            baseline=loaded.bare_per_second,
            baseline_name=f"{BASELINE}s per second",
            ratio=ratio(loaded.hits_per_second, loaded.bare_per_second),
            ratio_means="gateway ÷ bare Redis",
            target=Target("value", ">=", HITS_PER_SECOND),
            repeats=len(loaded.rounds),
            samples={"gateway_ms": loaded.hits_ms, "bare_ms": loaded.bare_ms},
            details={**details, **loaded.details()},
        ),
    ]


@dataclass(frozen=True)
class _Level:
    """One number of clients: rounds of hits, each followed by as many bare reads."""

    clients: int
    rounds: list[tuple[Load, Load]]

    @property
    def hits_ms(self) -> list[float]:
        return [ms for hits, _ in self.rounds for ms in hits.ms]

    @property
    def bare_ms(self) -> list[float]:
        return [ms for _, bare in self.rounds for ms in bare.ms]

    @property
    def hits_per_second(self) -> float:
        return median([hits.throughput for hits, _ in self.rounds])

    @property
    def bare_per_second(self) -> float:
        return median([bare.throughput for _, bare in self.rounds])

    def details(self) -> dict[str, object]:
        return {
            "clients": self.clients,
            "errors": [error for hits, _ in self.rounds for error in hits.errors],
            "gateway_requests_per_second": [hits.throughput for hits, _ in self.rounds],
            "bare_reads_per_second": [bare.throughput for _, bare in self.rounds],
            "gateway_p50_ms": percentile(self.hits_ms, 50),
            "gateway_p95_ms": percentile(self.hits_ms, 95),
            "gateway_p99_ms": percentile(self.hits_ms, 99),
        }


async def _level(
    plan: Plan, clients: int, hits: Callable[[], Awaitable[None]], bare: Callable[[], Awaitable[None]]
) -> _Level:
    """``plan.repeat`` rounds, the gateway's and the bare reads in turn: a machine whose load changes
    during the run moves both alike. Latencies are pooled; throughputs are the rounds' median."""
    budget = Budget(max(plan.cache_requests, 10 * clients), plan.load_seconds)
    rounds = []
    for _ in range(plan.repeat):
        gateway = await run_clients(clients, hits, warm_up=True, budget=budget)
        rounds.append((gateway, await run_clients(clients, bare, warm_up=True, budget=budget)))
    return _Level(clients, rounds)


def _latency(level: _Level, p: int, target: Target | None, details: dict[str, object]) -> Figure:
    value, baseline = percentile(level.hits_ms, p), percentile(level.bare_ms, p)
    return Figure(
        group="cache",
        name=f"answer cache hit, {plural(level.clients)}, p{p}",
        unit="ms",
        value=value,
        baseline=baseline,
        baseline_name=BASELINE,
        ratio=ratio(value, baseline),
        ratio_means="gateway ÷ bare Redis",
        target=target,
        repeats=len(level.rounds),
        samples={"gateway_ms": level.hits_ms, "bare_ms": level.bare_ms},
        details={**details, **level.details()},
    )
