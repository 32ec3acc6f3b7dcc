"""``GET /metrics`` of a gateway served by uvicorn on real Postgres and Redis, reading the LiteLLM-compatible
server: after a known sequence of requests, each counter moved by exactly what that sequence does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import tests.test_unverified_days as UNVERIFIED
from tests.api_client import LITELLM_MASTER_KEY, SECRET
from tests.gateway_harness import clock_at, long_after
from tests.metrics_scrape import Samples, changes, key, labelled, parse, value
from tests.test_answer_cache import DAYS, RANGE, litellm, rows_for
from tests.usage_from_rows import litellm_gateway
from usage_gateway.datasources.litellm.client import DAILY_ACTIVITY, DAILY_AGGREGATED
from usage_gateway.devtools.litellm_compat import Faults, LiteLLMStore, running_litellm
from usage_gateway.devtools.local_services import serving
from usage_gateway.resolvers.viewer import Role
from usage_gateway.server.app import create_app
from usage_gateway.server.config import Settings
from usage_gateway.server.metrics import MAX_OPERATION_NAME_LENGTH, MAX_OPERATION_NAMES, RequestMetrics
from usage_gateway.server.resources import REDIS_CONNECTIONS
from usage_gateway.server.tokens import issue_token

P = "usage_gateway_"
TOTALS = """query Totals($from: Date!, $to: Date!) {
  usage(filter: {from: $from, to: $to}) { totals { requests spend } }
}"""
EXPORT = """mutation Export($f: UsageFilter!) {
  exportUsage(filter: $f, format: CSV) { id status byteSize rowCount }
}"""
ADMIN = issue_token(SECRET, "admin", [Role.ADMIN])


@dataclass
class Served:
    url: str
    store: LiteLLMStore
    export_dir: Path

    def post(self, query: str, variables: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {ADMIN}", **headers}
        body = {"query": query, "variables": variables or {}}
        return httpx.post(f"{self.url}/graphql", json=body, headers=headers, timeout=30)

    def scrape(self) -> Samples:
        response = httpx.get(f"{self.url}/metrics", timeout=10)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        return parse(response.text)


@contextmanager
def served(database_url: str, redis_url: str, tmp_path: Path, **overrides: Any) -> Iterator[Served]:
    """The app as ``serve`` runs it (its lifespan opens Postgres, Redis and the LiteLLM client)."""
    with litellm(rows_for(DAYS)) as (store, litellm_url):
        settings = Settings(
            database_url=database_url,
            redis_url=redis_url,
            litellm_url=litellm_url,
            litellm_master_key=LITELLM_MASTER_KEY,
            jwt_secret=SECRET,
            export_dir=tmp_path,
            **overrides,
        )
        with serving(create_app(settings), lifespan="on") as url:
            yield Served(url, store, tmp_path)


def test_counters_move_by_what_a_known_sequence_of_requests_does(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    with served(database_url, redis_url, tmp_path) as gw:
        before = gw.scrape()
        # The first answer fetches both days (and is voided by their write), the second is computed and
        # stored, the third is a hit.
        answers = [gw.post(TOTALS, RANGE) for _ in range(3)]
        assert [r.headers["x-answer-cache"] for r in answers] == ["miss", "miss", "hit"]
        assert all(r.status_code == 200 and "errors" not in r.json() for r in answers)
        assert gw.post("{ viewer { id } }").status_code == 200  # anonymous
        assert "errors" in gw.post("query Broken { nope }").json()  # does not validate: unknown
        assert gw.post(TOTALS, RANGE, Authorization="Bearer nope").status_code == 401
        assert httpx.get(f"{gw.url}/graphql", timeout=5).status_code == 405  # refused
        exported = gw.post(EXPORT, {"f": {"from": RANGE["from"], "to": RANGE["to"]}}).json()
        after = gw.scrape()

    export = exported["data"]["exportUsage"]
    assert export["status"] == "DONE", exported
    moved = changes(before, after, P)

    requests = labelled(moved, P + "graphql_requests_total")
    assert requests == {
        key(operation="Totals", outcome="ok"): 3,
        key(operation="anonymous", outcome="ok"): 1,
        key(operation="unknown", outcome="BAD_USER_INPUT"): 1,
        # The token is checked before GraphQL runs, yet the text was prepared by the requests before it.
        key(operation="Totals", outcome="UNAUTHENTICATED"): 1,
        key(operation="unknown", outcome="refused"): 1,
        key(operation="Export", outcome="ok"): 1,
    }
    latency = labelled(moved, P + "graphql_request_duration_seconds_count")
    assert latency == requests
    # Only requests that reached the answer cache's question: the anonymous viewer query is one too.
    cache = labelled(moved, P + "answer_cache_requests_total")
    assert cache[key(result="hit")] == 1
    assert cache[key(result="miss")] == 3  # two for Totals, one for the viewer query
    assert cache[key(result="bypass")] == 2  # the invalid document and the mutation

    litellm_requests = labelled(moved, P + "litellm_requests_total")
    sent = {path: len(gw.store.requests_for(path)) for path in (DAILY_ACTIVITY, DAILY_AGGREGATED)}
    assert sent[DAILY_ACTIVITY] > 0
    assert sent[DAILY_AGGREGATED] > 0
    assert litellm_requests == {key(endpoint=path): n for path, n in sent.items()}
    durations = labelled(moved, P + "litellm_request_duration_seconds_count")
    assert durations == litellm_requests
    assert labelled(moved, P + "litellm_errors_total") == {}

    assert labelled(moved, P + "days_fetched_total") == {key(verified="true"): len(DAYS)}
    # The two computed answers and the export each read both days, closed once fetched; the hit none.
    assert labelled(moved, P + "days_read_total") == {key(state="closed"): 3 * len(DAYS)}

    file = gw.export_dir / f"{export['id']}.csv"
    assert labelled(moved, P + "exports_total") == {key(format="csv", outcome="done"): 1}
    assert labelled(moved, P + "export_bytes_total") == {key(format="csv"): file.stat().st_size}
    assert file.stat().st_size == int(export["byteSize"])
    assert labelled(moved, P + "export_rows_total") == {key(format="csv"): int(export["rowCount"])}
    assert labelled(moved, P + "export_duration_seconds_count") == {key(format="csv"): 1}


def test_the_pools_are_read_when_scraped(database_url: str, redis_url: str, tmp_path: Path) -> None:
    with served(database_url, redis_url, tmp_path, db_pool_size=23) as gw:
        first = gw.scrape()
        gw.post(TOTALS, RANGE)
        second = gw.scrape()
    assert value(second, P + "db_pool_max_connections") == 23
    assert value(second, P + "redis_pool_max_connections") == REDIS_CONNECTIONS
    # Nothing is lent while the scrape runs; at least one connection has been opened by now.
    assert value(second, P + "db_pool_connections", state="in_use") == 0
    assert value(second, P + "db_pool_connections", state="idle") >= 1
    assert value(second, P + "redis_pool_connections", state="in_use") == 0
    assert value(second, P + "redis_pool_connections", state="idle") >= 1
    assert value(second, P + "db_pool_waiting_requests") == 0
    asked = value(second, P + "db_pool_requests_total") - value(first, P + "db_pool_requests_total")
    assert asked > 0


def test_operation_names_are_bounded() -> None:
    metrics = RequestMetrics()
    assert metrics.operation(False, "Totals") == "unknown"
    assert metrics.operation(True, None) == "anonymous"
    assert metrics.operation(True, "x" * (MAX_OPERATION_NAME_LENGTH + 1)) == "other"
    names = [f"Op{n}" for n in range(MAX_OPERATION_NAMES)]
    assert [metrics.operation(True, name) for name in names] == names
    assert metrics.operation(True, "OneMore") == "other"
    assert metrics.operation(True, "Op0") == "Op0"  # a name already seen keeps its label


async def scrape_in_process(settings: Settings, **headers: str) -> httpx.Response:
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://g") as client:
        return await client.get("/metrics", headers=headers)


@pytest.mark.parametrize("token", ["", "metrics-token-0123456789"])
async def test_metrics_token_guards_the_endpoint_when_set(token: str) -> None:
    settings = Settings(jwt_secret=SECRET, metrics_token=token)
    open_ = await scrape_in_process(settings)
    if not token:
        assert open_.status_code == 200
        return
    assert open_.status_code == 401
    assert open_.headers["www-authenticate"].startswith("Bearer")
    assert open_.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await scrape_in_process(settings, authorization="Bearer wrong")).status_code == 401
    allowed = await scrape_in_process(settings, authorization=f"Bearer {token}")
    assert allowed.status_code == 200
    assert "usage_gateway_graphql_requests_total" in allowed.text or "# HELP" in allowed.text


async def test_metrics_can_be_turned_off() -> None:
    response = await scrape_in_process(Settings(jwt_secret=SECRET, metrics_enabled=False))
    assert response.status_code == 404


async def test_unverified_days_and_litellm_errors_are_counted(database_url: str, redis_url: str) -> None:
    """One date whose /aggregated totals disagree with its pages (stored unverified after every read
    the day cache allows), and one answer of HTTP 500 (retried): each counted where it belongs."""
    days, skewed = UNVERIFIED.DAYS, UNVERIFIED.SKEWED
    faults = Faults(skew_aggregated_dates={skewed.isoformat()}, fail_next=1, fail_paths=[DAILY_AGGREGATED])
    store = LiteLLMStore(keys=[], users=[], rows=UNVERIFIED.ROWS)
    with running_litellm(store, faults) as url:
        clock = clock_at(long_after(days[-1]))
        async with litellm_gateway(database_url, redis_url, url, clock=clock) as gw:
            before = parse((await gw.client.get("/metrics")).text)
            body = await gw.data(UNVERIFIED.QUERY, {"filter": UNVERIFIED.RANGE})
            after = parse((await gw.client.get("/metrics")).text)
    assert body["usage"]["freshness"]["unverifiedDays"] == [skewed.isoformat()]
    moved = changes(before, after, P)
    assert labelled(moved, P + "days_fetched_total") == {
        key(verified="true"): len(days) - 1,
        key(verified="false"): 1,
    }
    assert labelled(moved, P + "days_read_total") == {
        key(state="closed"): len(days) - 1,
        key(state="unverified"): 1,
    }
    failed = [record for record in store.request_log if record.status == 500]
    assert len(failed) == 1
    assert labelled(moved, P + "litellm_errors_total") == {
        key(endpoint=DAILY_AGGREGATED, reason="http_5xx"): 1
    }
    sent = {path: len(store.requests_for(path)) for path in (DAILY_ACTIVITY, DAILY_AGGREGATED)}
    assert sent[DAILY_AGGREGATED] > 1
    assert labelled(moved, P + "litellm_requests_total") == {key(endpoint=p): n for p, n in sent.items()}
    assert labelled(moved, P + "day_fetch_failures_total") == {}


async def test_days_litellm_cannot_deliver_are_counted_missing(database_url: str, redis_url: str) -> None:
    days = UNVERIFIED.DAYS
    faults = Faults(failure_rate=1.0, fail_paths=[DAILY_ACTIVITY])
    store = LiteLLMStore(keys=[], users=[], rows=UNVERIFIED.ROWS)
    with running_litellm(store, faults) as url:
        clock = clock_at(long_after(days[-1]))
        async with litellm_gateway(database_url, redis_url, url, clock=clock) as gw:
            before = parse((await gw.client.get("/metrics")).text)
            body = await gw.query(UNVERIFIED.QUERY, {"filter": UNVERIFIED.RANGE})
            after = parse((await gw.client.get("/metrics")).text)
    assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    moved = changes(before, after, P)
    assert labelled(moved, P + "day_fetch_failures_total") == {key(): len(days)}
    assert labelled(moved, P + "days_read_total") == {key(state="missing"): len(days)}
    assert labelled(moved, P + "days_fetched_total") == {}
    # Every answered activity request was a 500. A failed request cancels the rest of its batch; one
    # cancelled before its answer is not counted, though LiteLLM may have logged it.
    answered = labelled(moved, P + "litellm_requests_total")[key(endpoint=DAILY_ACTIVITY)]
    errors = labelled(moved, P + "litellm_errors_total")
    assert errors == {key(endpoint=DAILY_ACTIVITY, reason="http_5xx"): answered}
    logged = [record.status for record in store.requests_for(DAILY_ACTIVITY)]
    assert set(logged) == {500}
    # Each single day failed twice (LITELLM_RETRIES=1) before it was given up, after the larger batches.
    assert 2 * len(days) < answered <= len(logged)
    durations = labelled(moved, P + "litellm_request_duration_seconds_count")
    assert durations == labelled(moved, P + "litellm_requests_total")
