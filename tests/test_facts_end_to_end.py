"""Random LiteLLM rows → the LiteLLM-compatible server → day cache → facts: totals and series are exact."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.expected import attributed_user, cell_of, expected_cells, row_metrics
from tests.gateway_harness import clock_at, gateway, long_after
from tests.litellm_rows import rows_strategy
from usage_gateway.datasources.facts import aggregates as facts
from usage_gateway.datasources.facts.vocabulary import FactFilter, Granularity
from usage_gateway.datasources.litellm.day_metrics import DayMetrics
from usage_gateway.devtools.litellm_compat import LiteLLMStore, running_litellm


def _bucket_start(day: date, granularity: Granularity) -> date:
    if granularity is Granularity.WEEK:
        return day - timedelta(days=day.weekday())
    if granularity is Granularity.MONTH:
        return day.replace(day=1)
    return day


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[dict[str, Any]], int, dict[str, Any]]:
    rows = draw(rows_strategy(min_size=1))
    page_size = draw(st.integers(1, 1000))
    cells = [cell_of(row) for row in rows]
    users = sorted({attributed_user(row) for row in rows} | {"litellm:nobody"})
    keys = sorted({c[1] for c in cells} | {"f" * 64})
    models = sorted({c[3] for c in cells})
    providers = sorted({c[4] for c in cells})

    def maybe(values: list[str]) -> tuple[str, ...] | None:
        chosen: list[str] | None = draw(st.one_of(st.none(), st.lists(st.sampled_from(values), max_size=3)))
        return None if chosen is None else tuple(chosen)

    chosen_filter = {
        "user_ids": maybe(users),
        "api_keys": maybe(keys),
        "models": maybe(models),
        "providers": maybe(providers),
    }
    return rows, page_size, chosen_filter


def _matches(row: dict[str, Any], f: FactFilter) -> bool:
    when, key, _, model, provider = cell_of(row)
    return (
        f.date_from <= when <= f.date_to
        and (f.user_ids is None or attributed_user(row) in f.user_ids)
        and (f.api_keys is None or key in f.api_keys)
        and (f.models is None or model in f.models)
        and (f.providers is None or provider in f.providers)
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=scenario())
def test_totals_and_series_equal_the_rows_for_any_page_size_and_filter(
    case: tuple[list[dict[str, Any]], int, dict[str, Any]], database_url: str, redis_url: str
) -> None:
    rows, page_size, chosen = case
    dates = sorted({cell_of(row)[0] for row in rows})
    start, end = dates[0], dates[-1]
    f = FactFilter(date_from=start, date_to=end, **chosen)
    selected = [row for row in rows if _matches(row, f)]
    store = LiteLLMStore(keys=[], users=[], rows=rows)

    async def check() -> None:
        with running_litellm(store) as url:
            async with gateway(
                database_url, url, redis_url=redis_url, clock=clock_at(long_after(end)), page_size=page_size
            ) as gw:
                await gw.db.execute("DELETE FROM usage_facts; DELETE FROM usage_days")
                await gw.redis.flushall() if gw.redis else None
                report = await gw.days.ensure(start, end)
                assert report.complete
                got = await facts.totals(gw.db, f)
                want = DayMetrics()
                for row in selected:
                    want += row_metrics(row)
                _assert_same(got, want, selected)
                for granularity in Granularity:
                    series = await facts.time_series(gw.db, f, granularity)
                    per_bucket: dict[date, DayMetrics] = defaultdict(DayMetrics)
                    for row in selected:
                        per_bucket[_bucket_start(cell_of(row)[0], granularity)] += row_metrics(row)
                    for bucket, point in series:
                        _assert_same(point, per_bucket.get(bucket, DayMetrics()), None)
                    assert set(per_bucket) <= {bucket for bucket, _ in series}

    asyncio.run(check())


def _assert_same(got: facts.UsageTotals, want: DayMetrics, rows: list[dict[str, Any]] | None) -> None:
    as_metrics = DayMetrics(
        got.spend,
        got.prompt_tokens,
        got.completion_tokens,
        got.cache_read_input_tokens,
        got.cache_creation_input_tokens,
        got.total_tokens,
        got.requests,
        got.successful_requests,
        got.failed_requests,
        got.total_response_time_ms,
        got.timed_requests,
    )
    assert isinstance(got.spend, Decimal)
    assert as_metrics.matches(want), (as_metrics, want)
    if rows is not None:
        live = expected_cells(rows)  # a cell with no usage at all makes nobody active
        rows = [r for r in rows if cell_of(r) in live]
        assert got.active_users == len({attributed_user(r) for r in rows} - {"unattributed"})
        assert got.active_api_keys == len({cell_of(r)[1] for r in rows} - {"unattributed"})
        assert got.active_models == len({cell_of(r)[3] for r in rows})
