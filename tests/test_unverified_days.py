"""A day LiteLLM's own totals cannot verify, through the GraphQL API.

``/user/daily/activity/aggregated`` is made to report other totals for one date than its (truthful) pages
add up to (``Faults.skew_aggregated_dates``). The answer must say so — ``freshness.complete`` false, the
day in ``freshness.unverifiedDays``, an ``UNVERIFIED_DAYS`` warning in ``extensions.warnings`` — while the
other days are served exactly; once LiteLLM agrees again, the next ``usage`` query, or an admin's
``refreshRange``, makes the answer complete and exact. The answer cache is on, as in production.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

from tests.api_client import Gateway
from tests.expected import total_of
from tests.gateway_harness import clock_at, long_after
from tests.litellm_rows import Row, assert_close, make_row
from tests.usage_from_rows import litellm_gateway
from usage_gateway.devtools.litellm_compat import Faults, LiteLLMStore, running_litellm

DAYS = [date(2026, 11, 4), date(2026, 11, 5), date(2026, 11, 6)]
SKEWED = DAYS[1]
RANGE = {"from": DAYS[0].isoformat(), "to": DAYS[-1].isoformat()}
ACTIVITY = "/user/daily/activity"
AGGREGATED = "/user/daily/activity/aggregated"

METRICS = "spend requests successfulRequests failedRequests promptTokens completionTokens totalTokens"
QUERY = f"""
query ($filter: UsageFilter!) {{
  usage(filter: $filter) {{
    totals {{ {METRICS} }}
    timeSeries {{ date metrics {{ {METRICS} }} }}
    freshness {{ complete days closedDays openDays missingDays unverifiedDays }}
  }}
}}
"""
REFRESH_RANGE = "mutation($from: Date!, $to: Date!) { refreshRange(from: $from, to: $to) { days } }"


def source_rows() -> list[Row]:
    """Three keys a day (an owned one, an owner-less one, the empty key), one of them on a NULL user."""
    rows = []
    for index, day in enumerate(DAYS):
        for user, key, model, provider in (
            ("alice", "a" * 64, "gpt-4o", "openai"),
            (None, "a" * 64, "gpt-4o", "openai"),
            ("", "b" * 64, "claude-3-5-haiku-20241022", "anthropic"),
            ("", "", "gpt-4o-mini", "azure"),
        ):
            rows.append(
                make_row(
                    day.isoformat(),
                    user,
                    key,
                    model,
                    provider,
                    spend=0.125 * (index + 1) + 0.001,
                    prompt_tokens=100 + index,
                    completion_tokens=40,
                    successful_requests=3,
                    failed_requests=index % 2,
                )
            )
    return rows


ROWS = source_rows()


def metrics_of(rows: Iterable[Row]) -> dict[str, Any]:
    total = total_of(rows)
    return {
        "spend": float(total.spend),
        "requests": total.api_requests,
        "successfulRequests": total.successful_requests,
        "failedRequests": total.failed_requests,
        "promptTokens": total.prompt_tokens,
        "completionTokens": total.completion_tokens,
        "totalTokens": total.total_tokens,
    }


def day_metrics(day: date) -> dict[str, Any]:
    return metrics_of(row for row in ROWS if row["date"] == day.isoformat())


def point(usage: dict[str, Any], day: date) -> dict[str, Any]:
    found: dict[str, Any] = next(p["metrics"] for p in usage["timeSeries"] if p["date"] == day.isoformat())
    return found


def warnings(body: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = body.get("extensions", {}).get("warnings") or []
    return found


def assert_reported_unverified(body: dict[str, Any]) -> None:
    """The skewed day is unverified and said so; the other days are whole and exact."""
    assert "errors" not in body, body["errors"]
    usage = body["data"]["usage"]
    freshness = usage["freshness"]
    assert freshness["complete"] is False
    assert freshness["unverifiedDays"] == [SKEWED.isoformat()]
    assert freshness["missingDays"] == []
    assert freshness["days"] == len(DAYS)
    assert set(freshness["openDays"]) <= {SKEWED.isoformat()}
    unverified = [warning for warning in warnings(body) if warning["code"] == "UNVERIFIED_DAYS"]
    assert len(unverified) == 1, warnings(body)
    assert unverified[0]["days"] == [SKEWED.isoformat()]
    assert SKEWED.isoformat() in unverified[0]["message"]
    for day in DAYS:
        if day != SKEWED:
            assert_close(point(usage, day), day_metrics(day), day.isoformat())


def assert_complete_and_exact(body: dict[str, Any]) -> None:
    assert "errors" not in body, body["errors"]
    assert warnings(body) == []
    usage = body["data"]["usage"]
    assert usage["freshness"] == {
        "complete": True,
        "days": len(DAYS),
        "closedDays": len(DAYS),
        "openDays": [],
        "missingDays": [],
        "unverifiedDays": [],
    }
    assert_close(usage["totals"], metrics_of(ROWS), "totals")
    for day in DAYS:
        assert_close(point(usage, day), day_metrics(day), day.isoformat())


def reads_of(store: LiteLLMStore, path: str, day: date) -> int:
    """Requests to ``path`` whose range covers ``day``."""
    return sum(
        1
        for record in store.requests_for(path)
        if record.params.get("start_date", "9999") <= day.isoformat() <= record.params.get("end_date", "")
    )


@dataclass
class Setup:
    store: LiteLLMStore
    faults: Faults
    url: str


@pytest.fixture
def litellm() -> Iterator[Setup]:
    store = LiteLLMStore(keys=[], users=[], rows=ROWS)
    faults = Faults(skew_aggregated_dates={SKEWED.isoformat()})
    with running_litellm(store, faults) as url:
        yield Setup(store, faults, url)


def gateway(setup: Setup, database_url: str, redis_url: str) -> AbstractAsyncContextManager[Gateway]:
    return litellm_gateway(
        database_url,
        redis_url,
        setup.url,
        clock=clock_at(long_after(DAYS[-1])),
        answer_cache_ttl_seconds=300,
    )


async def test_an_unverified_day_is_reported_and_the_next_query_heals_it(
    litellm: Setup, database_url: str, redis_url: str
) -> None:
    async with gateway(litellm, database_url, redis_url) as gw:
        assert_reported_unverified(await gw.query(QUERY, {"filter": RANGE}))

        litellm.faults.reset()  # LiteLLM's totals agree with its pages again
        tried = reads_of(litellm.store, AGGREGATED, SKEWED)
        assert_complete_and_exact(await gw.query(QUERY, {"filter": RANGE}))
        assert reads_of(litellm.store, AGGREGATED, SKEWED) > tried

        # Verified now: served from the gateway's own store, LiteLLM is not asked again.
        litellm.store.clear_log()
        assert_complete_and_exact(await gw.query(QUERY, {"filter": RANGE}))
        assert litellm.store.request_log == []


async def test_refresh_range_heals_an_unverified_day(
    litellm: Setup, database_url: str, redis_url: str
) -> None:
    async with gateway(litellm, database_url, redis_url) as gw:
        assert_reported_unverified(await gw.query(QUERY, {"filter": RANGE}))
        # However often it is asked, a day LiteLLM still contradicts is never passed off as complete.
        assert_reported_unverified(await gw.query(QUERY, {"filter": RANGE}))

        litellm.faults.reset()
        litellm.store.clear_log()
        refreshed = await gw.data(REFRESH_RANGE, {"from": RANGE["from"], "to": RANGE["to"]})
        assert refreshed["refreshRange"]["days"] == [day.isoformat() for day in DAYS]
        assert reads_of(litellm.store, AGGREGATED, SKEWED) >= 1
        assert reads_of(litellm.store, ACTIVITY, SKEWED) >= 1

        # The refresh did the work: the query finds every day verified and asks LiteLLM nothing.
        litellm.store.clear_log()
        assert_complete_and_exact(await gw.query(QUERY, {"filter": RANGE}))
        assert litellm.store.request_log == []
