"""``GET /metrics``: the Prometheus text format, and the metrics the app counts itself (``docs/metrics.md``).

The app counts GraphQL requests by operation and outcome with their latency, and the answer cache's
verdicts; the data layer's metrics (:mod:`datasources.metrics`) share prometheus-client's default
registry. The Postgres and Redis pools' usage comes from :mod:`server.pool_metrics`.

Label values are bounded. ``operation`` is the name of a document the gateway has prepared (parsed and
validated against the schema, :mod:`schema.prepared`): ``anonymous`` for a prepared document without a
name, ``unknown`` when the text is not prepared (it did not validate, or was refused before GraphQL
ran), ``other`` once :data:`MAX_OPERATION_NAMES` names have been seen by this process or for a name
longer than :data:`MAX_OPERATION_NAME_LENGTH`. ``outcome`` is ``ok``, ``refused`` (not a
GraphQL-over-HTTP request: 405, 406, 413, 415, 400), ``overloaded`` (shed by admission control), the
first error's ``extensions.code`` when it is one of the gateway's codes, else ``error``.

Several processes (``serve --workers N``) share their counts through prometheus-client's multiprocess
mode: with ``PROMETHEUS_MULTIPROC_DIR`` set (``serve`` sets a fresh temporary one when it starts several
workers), every worker writes its samples there and whichever answers a scrape sums them all.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import REGISTRY, Counter, Histogram, multiprocess
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from usage_gateway.datasources.metrics import PREFIX
from usage_gateway.errors import GatewayError
from usage_gateway.server.config import Settings
from usage_gateway.server.pool_metrics import PoolCollector
from usage_gateway.server.resources import Resources
from usage_gateway.server.responses import error_response

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
MAX_OPERATION_NAMES = 50
MAX_OPERATION_NAME_LENGTH = 64
ANONYMOUS, UNKNOWN, OTHER = "anonymous", "unknown", "other"
OK, REFUSED, OVERLOADED, ERROR = "ok", "refused", "overloaded", "error"
INTERNAL = "INTERNAL"  # an unhandled exception: the client got HTTP 500

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


def multiproc_dir() -> str | None:
    """The directory the workers share their samples through (multiprocess mode), if set."""
    return os.environ.get(MULTIPROC_DIR) or None


class _Scrape(Collector):
    """Everything one scrape shows: this process's counts and pools, or every worker's (multiprocess)."""

    def __init__(self, pools: PoolCollector) -> None:
        self._pools = pools

    def collect(self) -> Iterable[Metric]:
        if multiproc_dir() is not None:
            # prometheus-client's multiprocess module has no type hints.
            yield from multiprocess.MultiProcessCollector(None).collect()  # type: ignore[no-untyped-call]
            return
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
