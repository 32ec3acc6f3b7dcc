"""``GET /metrics``: the Prometheus text format, and the metrics the app counts itself (``docs/metrics.md``).

The app counts GraphQL requests by operation and outcome with their latency, and the answer cache's
verdicts; the data layer's metrics (:mod:`datasources.metrics`) share prometheus-client's default
registry. The Postgres and Redis pools are read when scraped.

Label values are bounded. ``operation`` is the name of a document the gateway has prepared (parsed and
validated against the schema, :mod:`schema.prepared`): ``anonymous`` for a prepared document without a
name, ``unknown`` when the text is not prepared (it did not validate, or was refused before GraphQL
ran), ``other`` once :data:`MAX_OPERATION_NAMES` names have been seen by this process or for a name
longer than :data:`MAX_OPERATION_NAME_LENGTH`. ``outcome`` is ``ok``, ``refused`` (not a
GraphQL-over-HTTP request: 405, 406, 413, 415, 400), ``overloaded`` (shed by admission control), the
first error's ``extensions.code`` when it is one of the gateway's codes, else ``error``.

Several processes (``serve --workers N``) share their counts through prometheus-client's multiprocess
mode: with ``PROMETHEUS_MULTIPROC_DIR`` set (``serve`` sets a fresh temporary one when it starts several
workers), every worker writes its samples there and whichever answers a scrape sums them all. The pools
are then those of the worker that answered.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import structlog
from prometheus_client import REGISTRY, Counter, Histogram, multiprocess
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from usage_gateway.datasources.metrics import PREFIX
from usage_gateway.errors import GatewayError
from usage_gateway.server.config import Settings
from usage_gateway.server.resources import Resources
from usage_gateway.server.responses import error_response

log = structlog.get_logger("usage_gateway.metrics")

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
MAX_OPERATION_NAMES = 50
MAX_OPERATION_NAME_LENGTH = 64
ANONYMOUS, UNKNOWN, OTHER = "anonymous", "unknown", "other"
OK, REFUSED, OVERLOADED, ERROR = "ok", "refused", "overloaded", "error"

# From an answer-cache hit (about 1 ms) to the operation timeout (30 s by default).
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

GRAPHQL_REQUESTS = Counter(
    PREFIX + "graphql_requests",
    "POST /graphql requests answered, by operation name and outcome.",
    ["operation", "outcome"],
)
GRAPHQL_DURATION = Histogram(
    PREFIX + "graphql_request_duration_seconds",
    "Time from a /graphql request's arrival to its response being ready, by operation name and outcome.",
    ["operation", "outcome"],
    buckets=_LATENCY_BUCKETS,
)
ANSWER_CACHE = Counter(
    PREFIX + "answer_cache_requests",
    "GraphQL requests by what the answer cache did for them (X-Answer-Cache): hit, miss, or bypass (not"
    " consulted: mutations, export lookups, no answer cache).",
    ["result"],
)


def _codes(error: type[GatewayError]) -> set[str]:
    return {error.code}.union(*(_codes(sub) for sub in error.__subclasses__()))


KNOWN_CODES = frozenset(_codes(GatewayError))


def outcome_of(code: str | None) -> str:
    """The ``outcome`` label of a request that ended with the error ``code`` (None: no error)."""
    if code is None:
        return OK
    if code == "OVERLOADED":
        return OVERLOADED
    return code if code in KNOWN_CODES else ERROR


def outcome_of_errors(errors: list[object] | None) -> str:
    """The ``outcome`` label of GraphQL's answer with these ``errors``: the first one's code decides."""
    if not errors:
        return OK
    first = errors[0]
    extensions = first.get("extensions") if isinstance(first, dict) else None
    code = extensions.get("code") if isinstance(extensions, dict) else None
    return outcome_of(code) if isinstance(code, str) else ERROR


class RequestMetrics:
    """The GraphQL request metrics, with each label pair's children bound once (their number is bounded)."""

    def __init__(self) -> None:
        self._names: set[str] = set()
        self._children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        self._answers = {result: ANSWER_CACHE.labels(result) for result in ("hit", "miss", "bypass")}

    def operation(self, prepared: bool, name: str | None) -> str:
        """The ``operation`` label of a request for a document (``prepared``: validated) named ``name``."""
        if not prepared:
            return UNKNOWN
        if name is None:
            return ANONYMOUS
        if name in self._names:
            return name
        if len(name) > MAX_OPERATION_NAME_LENGTH or len(self._names) >= MAX_OPERATION_NAMES:
            return OTHER
        self._names.add(name)
        return name

    def observe(self, operation: str, outcome: str, seconds: float) -> None:
        children = self._children.get((operation, outcome))
        if children is None:
            children = (
                GRAPHQL_REQUESTS.labels(operation, outcome),
                GRAPHQL_DURATION.labels(operation, outcome),
            )
            self._children[(operation, outcome)] = children
        children[0].inc()
        children[1].observe(seconds)

    def answer_cache(self, result: str) -> None:
        self._answers[result].inc()


class PoolCollector(Collector):
    """The Postgres pool's and the Redis connection pool's usage, read when scraped."""

    def __init__(self, resources: Callable[[], Resources | None]) -> None:
        self._resources = resources

    def collect(self) -> Iterable[Metric]:
        resources = self._resources()
        if resources is None:
            return
        yield from _postgres_pool(resources.db.pool.get_stats())
        if resources.redis is not None:
            yield from _redis_pool(resources.redis.connection_pool)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, documentation, value=value)


def _postgres_pool(stats: dict[str, int]) -> Iterator[Metric]:
    size, available = stats.get("pool_size", 0), stats.get("pool_available", 0)
    connections = GaugeMetricFamily(
        PREFIX + "db_pool_connections",
        "Postgres connections of this process's pool, by state (in_use: lent to a request; idle).",
        labels=["state"],
    )
    connections.add_metric(["in_use"], size - available)
    connections.add_metric(["idle"], available)
    yield connections
    yield _gauge(
        "db_pool_max_connections", "The most connections the Postgres pool opens.", stats["pool_max"]
    )
    yield _gauge(
        "db_pool_waiting_requests",
        "Requests waiting for a Postgres connection right now.",
        stats.get("requests_waiting", 0),
    )
    yield CounterMetricFamily(
        PREFIX + "db_pool_requests",
        "Connections asked of the Postgres pool.",
        value=stats.get("requests_num", 0),
    )
    yield CounterMetricFamily(
        PREFIX + "db_pool_wait_seconds",
        "Time requests spent waiting for a Postgres connection, in total.",
        value=stats.get("requests_wait_ms", 0) / 1000,
    )


def _redis_pool(pool: Any) -> Iterator[Metric]:
    counts = {
        attributes.get("db.client.connection.state"): n for n, attributes in pool.get_connection_count()
    }
    connections = GaugeMetricFamily(
        PREFIX + "redis_pool_connections",
        "Redis connections of this process's pool, by state (in_use: lent to a command; idle).",
        labels=["state"],
    )
    connections.add_metric(["in_use"], counts.get("used", 0))
    connections.add_metric(["idle"], counts.get("idle", 0))
    yield connections
    yield _gauge(
        "redis_pool_max_connections", "The most connections the Redis pool opens.", pool.max_connections
    )


class _Scrape(Collector):
    """Everything one scrape shows: the counts (this process's, or every worker's) and the pools."""

    def __init__(self, pools: PoolCollector) -> None:
        self._pools = pools

    def collect(self) -> Iterable[Metric]:
        if MULTIPROC_DIR in os.environ:
            # prometheus-client's multiprocess module has no type hints.
            yield from multiprocess.MultiProcessCollector(None).collect()  # type: ignore[no-untyped-call]
        else:
            yield from REGISTRY.collect()
        yield from self._pools.collect()


def metrics_route(settings: Settings, resources: Callable[[], Resources | None]) -> Route:
    """``GET /metrics``; with ``METRICS_TOKEN`` set, only for ``Authorization: Bearer <that token>``."""
    scrape = _Scrape(PoolCollector(resources))
    token = settings.metrics_token.get_secret_value().encode() if settings.metrics_token else None

    async def endpoint(request: Request) -> Response:
        if token is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, b"Bearer " + token):
                headers = {"WWW-Authenticate": 'Bearer realm="metrics"'}
                return error_response(401, "UNAUTHENTICATED", "/metrics needs METRICS_TOKEN", headers)
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(scrape), media_type=content_type)

    return Route("/metrics", endpoint, methods=["GET"])


@contextlib.contextmanager
def shared_across_workers(workers: int) -> Iterator[None]:
    """With several workers and no ``PROMETHEUS_MULTIPROC_DIR``, a fresh temporary one for them to share
    (their counts sum up in every scrape), removed at the end. Call it before the workers start."""
    if workers <= 1 or MULTIPROC_DIR in os.environ:
        yield
        return
    path = tempfile.mkdtemp(prefix="usage-gateway-metrics-")
    os.environ[MULTIPROC_DIR] = path
    try:
        yield
    finally:
        del os.environ[MULTIPROC_DIR]
        shutil.rmtree(path, ignore_errors=True)
