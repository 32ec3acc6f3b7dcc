"""Tag days through the day cache: the compatible server's /tag/daily/activity over real HTTP into real
Postgres (tag_facts, tag_days), exact to the tag rows, fetched once when closed, with their own locks."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.gateway_harness import Gateway, clock_at, gateway, long_after
from usage_gateway.datasources.daycache.days import days_between
from usage_gateway.datasources.litellm.day_metrics import DayMetrics
from usage_gateway.devtools.litellm_compat import LiteLLMStore, running_litellm

TAG_AGGREGATED = "/tag/daily/activity/aggregated"
Cell = tuple[date, str, str, str, str]


def expected_tag_cells(rows: list[dict[str, Any]]) -> dict[Cell, DayMetrics]:
    """The tag rows summed per (date, tag, key, model, provider) in LiteLLM's bucket names; rows with
    no tag are left out (no ``tags=`` selects them), cells with no usage at all are not facts."""
    cells: dict[Cell, DayMetrics] = defaultdict(DayMetrics)
    for row in rows:
        if not row.get("tag"):
            continue
        key = row.get("api_key") or "unattributed"
        cell = (
            date.fromisoformat(row["date"]),
            row["tag"],
            key,
            row.get("model") or "unknown-model",
            row.get("custom_llm_provider") or "unknown",
        )
        prompt, completion = row.get("prompt_tokens", 0), row.get("completion_tokens", 0)
        cells[cell] += DayMetrics(
            Decimal(repr(float(row.get("spend", 0.0)))),
            prompt,
            completion,
            0,
            0,
            prompt + completion,
            row.get("api_requests", 0),
            row.get("successful_requests", 0),
            0,
            0,
            0,
        )
    return {cell: metrics for cell, metrics in cells.items() if not metrics.is_zero()}


async def stored_tag_cells(gw: Gateway) -> dict[Cell, DayMetrics]:
    rows = await gw.db.fetch_all(
        "SELECT date, tag, api_key, model, provider, spend, prompt_tokens, completion_tokens,"
        " cache_read_input_tokens, cache_creation_input_tokens, total_tokens, api_requests,"
        " successful_requests, failed_requests, total_response_time_ms, timed_requests FROM tag_facts"
    )
    return {(r[0], r[1], r[2], r[3], r[4]): DayMetrics(*r[5:]) for r in rows}


def assert_same(stored: dict[Cell, DayMetrics], expected: dict[Cell, DayMetrics]) -> None:
    assert stored.keys() == expected.keys()
    for cell, metrics in expected.items():
        assert stored[cell][1:] == metrics[1:], cell
        assert abs(stored[cell].spend - metrics.spend) <= Decimal("1e-12"), cell


_ROW = st.fixed_dictionaries(
    {
        "tag": st.sampled_from(["User-Agent:claude-code", "User-Agent:curl", "app:x", None]),
        "date": st.sampled_from(["2026-11-14", "2026-11-15"]),
        "api_key": st.sampled_from([f"{n:064x}" for n in range(3)] + [""]),
        "model": st.sampled_from(["m1", "m2", None]),
        "custom_llm_provider": st.sampled_from(["openai", "azure", None]),
        "endpoint": st.sampled_from(["/chat/completions", "/embeddings"]),
        "spend": st.integers(0, 10_000).map(lambda n: n / 10_000),
        "prompt_tokens": st.integers(0, 900),
        "completion_tokens": st.integers(0, 90),
        "api_requests": st.integers(0, 5),
    }
)


def _unique(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen, kept = set(), []
    for row in rows:
        cell = tuple(row[c] for c in ("tag", "date", "api_key", "model", "custom_llm_provider", "endpoint"))
        if cell not in seen:
            seen.add(cell)
            kept.append({**row, "successful_requests": row["api_requests"]})
    return kept


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(_ROW, max_size=30).map(_unique))
def test_tag_days_are_stored_exactly(rows: list[dict[str, Any]], database_url: str) -> None:
    """Keys spread over several models and providers within a tag are narrowed; every stored cell is the
    sum of its tag rows, and every day verifies."""
    store = LiteLLMStore(keys=[], users=[], rows=[], tag_rows=rows)

    async def check() -> None:
        with running_litellm(store) as url:
            async with gateway(database_url, url, clock=clock_at(long_after(date(2026, 11, 15)))) as gw:
                await gw.db.execute("DELETE FROM tag_facts; DELETE FROM tag_days")
                assert gw.resources.tag_days is not None
                report = await gw.resources.tag_days.ensure(date(2026, 11, 14), date(2026, 11, 15))
                assert report.complete, report
                assert report.closed == [date(2026, 11, 14), date(2026, 11, 15)]
                assert_same(await stored_tag_cells(gw), expected_tag_cells(rows))

    asyncio.run(check())


async def test_closed_tag_days_are_fetched_once_and_do_not_touch_user_days(
    database_url: str, redis_url: str
) -> None:
    days = days_between(date(2026, 11, 1), date(2026, 11, 3))
    rows = [
        {
            "tag": tag,
            "date": day.isoformat(),
            "api_key": "a" * 64,
            "model": "m",
            "spend": 0.5,
            "api_requests": 1,
        }
        for day in days
        for tag in ("User-Agent:claude-code", "app:x")
    ]
    store = LiteLLMStore(keys=[], users=[], rows=[], tag_rows=rows)
    with running_litellm(store) as url:
        async with gateway(
            database_url, url, redis_url=redis_url, clock=clock_at(long_after(days[-1]))
        ) as gw:
            await gw.db.execute("DELETE FROM tag_facts; DELETE FROM tag_days; DELETE FROM usage_days")
            assert gw.resources.tag_days is not None
            await asyncio.gather(*(gw.resources.tag_days.ensure(days[0], days[-1]) for _ in range(3)))
            await gw.resources.tag_days.ensure(days[0], days[-1])
            fetched = Counter(
                when
                for record in store.requests_for(TAG_AGGREGATED)
                for when in days_between(
                    date.fromisoformat(record.params["start_date"]),
                    date.fromisoformat(record.params["end_date"]),
                )
            )
            assert fetched == Counter(days)
            assert await gw.db.fetch_all("SELECT date FROM usage_days") == []
            assert store.requests_for("/user/daily/activity/aggregated") == []
            assert_same(await stored_tag_cells(gw), expected_tag_cells(rows))
