"""The Prometheus metrics the data layer counts: LiteLLM requests, days fetched and read and exports
(``docs/metrics.md`` describes each one; the app's own are in :mod:`server.metrics`).

They live in prometheus-client's default registry, which ``/metrics`` exposes; a process that serves no
``/metrics`` (the CLI) counts into it for nothing. Every label takes values from a fixed set: LiteLLM
endpoints are the client's path constants, never URLs. Label children are bound once and kept, so
counting on a hot path costs a dictionary lookup and an increment.
"""

from __future__ import annotations

import time
from functools import cache

from prometheus_client import Counter, Histogram

PREFIX = "usage_gateway_"

# LiteLLM answers in tens of ms to tens of seconds (a 1000-row page is megabytes).
_LITELLM_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# An export takes from a few ms (a day of CSV) to minutes (a year of XLSX).
_EXPORT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

LITELLM_REQUESTS = Counter(
    PREFIX + "litellm_requests",
    "HTTP requests to LiteLLM that got an answer or failed (each attempt of a retried request counts),"
    " by endpoint path.",
    ["endpoint"],
)
LITELLM_ERRORS = Counter(
    PREFIX + "litellm_errors",
    "LiteLLM requests that failed, by endpoint path and reason (timeout, connection, http_5xx, http_4xx,"
    " malformed).",
    ["endpoint", "reason"],
)
LITELLM_DURATION = Histogram(
    PREFIX + "litellm_request_duration_seconds",
    "Time from sending a LiteLLM request to its answer (or its failure), by endpoint path.",
    ["endpoint"],
    buckets=_LITELLM_BUCKETS,
)

DAYS_FETCHED = Counter(
    PREFIX + "days_fetched",
    "Days read from LiteLLM and stored, by whether they equalled LiteLLM's own totals (verified) or not.",
    ["verified"],
)
DAY_FETCH_FAILURES = Counter(
    PREFIX + "day_fetch_failures",
    "Days whose fetch from LiteLLM failed after every retry (the query reports them missing or stale).",
)
DAYS_READ = Counter(
    PREFIX + "days_read",
    "Days the queries' ranges covered, by their state once the day cache did its work: closed, open"
    " (verified, may still change), unverified (stored, not equal to LiteLLM's totals) or missing.",
    ["state"],
)
DAY_STATES = ("closed", "open", "unverified", "missing")

EXPORTS = Counter(
    PREFIX + "exports", "Export files written, by format and outcome (done, failed).", ["format", "outcome"]
)
EXPORT_DURATION = Histogram(
    PREFIX + "export_duration_seconds",
    "Time to write an export file that was completed, by format.",
    ["format"],
    buckets=_EXPORT_BUCKETS,
)
EXPORT_BYTES = Counter(PREFIX + "export_bytes", "Bytes of the export files completed, by format.", ["format"])
EXPORT_ROWS = Counter(PREFIX + "export_rows", "Rows of the export files completed, by format.", ["format"])


# Series that exist from the start at 0, so that rate() and alerts see their first increase.
for _state in DAY_STATES:
    DAYS_READ.labels(_state)
for _verified in ("true", "false"):
    DAYS_FETCHED.labels(_verified)


@cache
def _litellm_children(endpoint: str) -> tuple[Counter, Histogram]:
    """The request counter and the latency histogram of one endpoint, bound once."""
    return LITELLM_REQUESTS.labels(endpoint), LITELLM_DURATION.labels(endpoint)


def litellm_done(endpoint: str, started: float, failure: str | None = None) -> None:
    """Count a LiteLLM request that got an answer, or failed for ``failure``, ``started`` at that
    ``perf_counter()``. One abandoned before either (its batch failed elsewhere) is not counted."""
    requests, duration = _litellm_children(endpoint)
    requests.inc()
    duration.observe(time.perf_counter() - started)
    if failure is not None:
        litellm_error(endpoint, failure)


def litellm_error(endpoint: str, reason: str) -> None:
    LITELLM_ERRORS.labels(endpoint, reason).inc()


def count_days_read(closed: int, open_: int, unverified: int, missing: int) -> None:
    for state, count in zip(DAY_STATES, (closed, open_, unverified, missing), strict=True):
        if count:
            DAYS_READ.labels(state).inc(count)
