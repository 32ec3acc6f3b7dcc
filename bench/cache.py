"""The warm dashboard answered from the Redis answer cache, against the bare Redis read it rests on: the
MGET of the data version and the entry, and decoding the stored answer."""

from __future__ import annotations

import orjson
from redis.asyncio import Redis

from bench.gateway import BenchError, open_gateway
from bench.load import Budget, plural, run_clients
from bench.plan import Plan
from bench.queries import DASHBOARD, dashboard_variables, last_days
from bench.report import Figure, Target, percentile, ratio
from usage_gateway.datasources.answer_cache import KEY_PREFIX
from usage_gateway.datasources.daycache.days import DATA_VERSION_KEY


async def cache_figures(plan: Plan, database_url: str, redis_url: str) -> list[Figure]:
    first, last = last_days(plan.last_day, plan.dashboard_days)
    variables = dashboard_variables(first, last)
    redis = Redis.from_url(redis_url)
    await redis.flushall()
    figures = []
    try:
        async with open_gateway(database_url, redis_url, last, answer_cache=True) as gateway:
            computed = await gateway.ask(DASHBOARD, variables)  # the warm-up: computes and stores
            keys = [key async for key in redis.scan_iter(match=f"{KEY_PREFIX}*")]
            if computed.cache != "miss" or len(keys) != 1:
                raise BenchError(
                    f"answer cache: first request {computed.cache!r}, {len(keys)} entries stored"
                )

            async def from_cache() -> None:
                answer = await gateway.ask(DASHBOARD, variables)
                if answer.cache != "hit":
                    raise BenchError(f"answer cache: {answer.cache!r} where a hit was expected")

            async def bare_redis() -> None:
                version, stored = await redis.mget([DATA_VERSION_KEY, keys[0]])
                assert isinstance(version, bytes)
                assert isinstance(stored, bytes)
                orjson.loads(memoryview(stored)[len(version) + 1 :])

            for clients in (1, plan.clients[-1]):
                budget = Budget(max(plan.cache_requests, 10 * clients), plan.load_seconds)
                hits = await run_clients(clients, from_cache, warm_up=True, budget=budget)
                bare = await run_clients(clients, bare_redis, warm_up=True, budget=budget)
                for p in (50, 95):
                    value, baseline = percentile(hits.ms, p), percentile(bare.ms, p)
                    figures.append(
                        Figure(
                            group="cache",
                            name=f"answer cache hit, {plural(clients)}, p{p}",
                            unit="ms",
                            value=value,
                            baseline=baseline,
                            baseline_name="bare Redis MGET + decode",
                            ratio=ratio(value, baseline),
                            ratio_means="gateway ÷ bare Redis",
                            target=Target("value", "<", 10) if p == 95 else None,
                            repeats=len(hits.ms),
                            samples={"gateway_ms": hits.ms, "bare_ms": bare.ms},
                            details={
                                "clients": clients,
                                "errors": hits.errors,
                                "first_request_ms": computed.ms,  # a miss: computed, then stored
                                "answer_bytes": len(orjson.dumps(computed.data)),
                                "gateway_requests_per_second": hits.throughput,
                            },
                        )
                    )
    finally:
        await redis.aclose()
    return figures
