"""The connection pools' usage as metrics: the Postgres pool (psycopg_pool's ``get_stats()``) and the Redis
connection pool (redis-py's ``get_connection_count()``).

One process: read when scraped (:class:`PoolCollector`). Several (prometheus-client's multiprocess mode):
whichever worker answers a scrape cannot read the others' pools, so each worker writes its readings to
the shared directory every :data:`PUBLISH_SECONDS` (:func:`pools_published`); the gauges are then sums
over the live workers, the counters sums over every worker that ever ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Literal

from prometheus_client import Counter, Gauge, multiprocess
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from usage_gateway.datasources.metrics import PREFIX
from usage_gateway.server.resources import Resources

PUBLISH_SECONDS = 5.0

Kind = Literal["gauge", "counter"]
# A reading: one value, or one per connection state.
Reading = float | dict[str, float]

POOL_METRICS: dict[str, tuple[Kind, str]] = {
    "db_pool_connections": (
        "gauge",
        "Postgres connections open in the pool, by state (in_use: lent to a request; idle).",
    ),
    "db_pool_max_connections": ("gauge", "The most connections the Postgres pool opens."),
    "db_pool_waiting_requests": ("gauge", "Requests waiting for a Postgres connection now."),
    "db_pool_requests": ("counter", "Connections asked of the Postgres pool."),
    "db_pool_wait_seconds": ("counter", "Time requests spent waiting for a Postgres connection."),
    "redis_pool_connections": (
        "gauge",
        "Redis connections open in the pool, by state (in_use: lent to a command; idle).",
    ),
    "redis_pool_max_connections": ("gauge", "The most connections the Redis pool opens."),
}


def readings(resources: Resources) -> dict[str, Reading]:
    """Every pool metric's value now, by name (without the prefix)."""
    stats = resources.db.pool.get_stats()
    size, available = stats.get("pool_size", 0), stats.get("pool_available", 0)
    found: dict[str, Reading] = {
        "db_pool_connections": {"in_use": size - available, "idle": available},
        "db_pool_max_connections": stats.get("pool_max", 0),
        "db_pool_waiting_requests": stats.get("requests_waiting", 0),
        "db_pool_requests": stats.get("requests_num", 0),
        "db_pool_wait_seconds": stats.get("requests_wait_ms", 0) / 1000,
    }
    if resources.redis is not None:
        pool = resources.redis.connection_pool
        counts = {
            attributes.get("db.client.connection.state"): n for n, attributes in pool.get_connection_count()
        }
        found["redis_pool_connections"] = {"in_use": counts.get("used", 0), "idle": counts.get("idle", 0)}
        found["redis_pool_max_connections"] = pool.max_connections
    return found


class PoolCollector(Collector):
    """The pools of this process, read when scraped."""

    def __init__(self, resources: Callable[[], Resources | None]) -> None:
        self._resources = resources

    def collect(self) -> Iterable[Metric]:
        resources = self._resources()
        if resources is None:
            return
        for name, reading in readings(resources).items():
            kind, documentation = POOL_METRICS[name]
            family = GaugeMetricFamily if kind == "gauge" else CounterMetricFamily
            if isinstance(reading, dict):
                labelled = family(PREFIX + name, documentation, labels=["state"])
                for state, value in reading.items():
                    labelled.add_metric([state], value)
                yield labelled
            else:
                yield family(PREFIX + name, documentation, value=reading)


# Multiprocess mode: one metric object per name in each process, written to the shared directory.
_gauges: dict[str, Gauge] = {}
_counters: dict[str, Counter] = {}


def _labels(reading: Reading) -> list[str]:
    return ["state"] if isinstance(reading, dict) else []


class _Publisher:
    """Writes one worker's readings: gauges as they are, counters by what they grew since last time."""

    def __init__(self, resources: Resources) -> None:
        self._resources = resources
        self._counted: dict[tuple[str, str | None], float] = {}

    def publish(self) -> None:
        for name, reading in readings(self._resources).items():
            values = reading.items() if isinstance(reading, dict) else [(None, reading)]
            kind, documentation = POOL_METRICS[name]
            for state, value in values:
                if kind == "gauge":
                    if name not in _gauges:
                        _gauges[name] = Gauge(
                            PREFIX + name,
                            documentation,
                            _labels(reading),
                            registry=None,
                            multiprocess_mode="livesum",
                        )
                    gauge = _gauges[name]
                    (gauge.labels(state) if state else gauge).set(value)
                    continue
                if name not in _counters:
                    _counters[name] = Counter(PREFIX + name, documentation, _labels(reading), registry=None)
                counter = _counters[name]
                grown = value - self._counted.get((name, state), 0.0)
                if grown > 0:
                    (counter.labels(state) if state else counter).inc(grown)
                    self._counted[(name, state)] = value

    async def run(self) -> None:
        while True:
            self.publish()
            await asyncio.sleep(PUBLISH_SECONDS)


@contextlib.asynccontextmanager
async def pools_published(resources: Resources, multiproc_dir: str | None) -> AsyncIterator[None]:
    """With ``multiproc_dir`` (multiprocess mode), this worker's pool readings are written there while the
    context lasts, and removed at its end; without it, nothing to do (scrapes read the pools)."""
    if multiproc_dir is None:
        yield
        return
    task = asyncio.create_task(_Publisher(resources).run(), name="pool-metrics")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # prometheus-client's multiprocess module has no type hints.
        multiprocess.mark_process_dead(os.getpid(), multiproc_dir)  # type: ignore[no-untyped-call]
