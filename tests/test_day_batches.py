"""Batches of days: read model by model over the batch's span, split exactly, verified per date, retried
and failed per date, and as cheap in requests as the algorithm promises (1 + Σ pages per model)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Collection, Iterable, Mapping
from datetime import date, timedelta
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.expected import assert_same_cells, expected_cells
from tests.gateway_harness import clock_at, gateway, long_after, stored_cells
from tests.litellm_rows import COUNTER_COLUMNS, make_row
from tests.test_day_cache import AGGREGATED, DAILY, day_fetches, spread_rows
from usage_gateway.datasources.daycache.days import DayCache, days_between, plan_batches
from usage_gateway.datasources.db import Database
from usage_gateway.devtools.litellm_compat import Faults, LiteLLMStore, running_litellm

D = date(2026, 11, 10)


# -- what the algorithm must cost, computed from the rows ------------------------------------------


def _model_bucket(row: Mapping[str, Any]) -> str:
    return str(row["model"] or "unknown-model")


def _pages(rows: int, page_size: int) -> int:
    return max(1, math.ceil(rows / page_size))


def expected_requests(rows: Iterable[Mapping[str, Any]], days: Collection[date], page_size: int) -> int:
    """1 ``/aggregated`` + every page of one ``model=`` query per model over the batch dates that list it
    + every page of one ``model=&user_id=`` query per (model, named user) a key still needs, over the dates
    that need it (a key with several users and several providers within one model on one date). The
    owner-less user (``''`` or NULL) is never asked for: it is what the named users leave, except where
    that rest cannot be exact (:func:`_read_row_by_row`): then the key's rows of that model and date are
    read a request each."""
    batch = [r for r in rows if date.fromisoformat(r["date"]) in days]
    by_model: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in batch:
        by_model[_model_bucket(row)].append(row)
    requests = 1
    for model_rows in by_model.values():
        dates = [r["date"] for r in model_rows]
        span = [r for r in model_rows if min(dates) <= r["date"] <= max(dates)]
        requests += _pages(len(span), page_size)
        cells: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
        for row in model_rows:
            cells[row["date"], row["api_key"]].append(row)
        need: dict[str, list[str]] = defaultdict(list)
        for (when, _), key_rows in cells.items():
            users = {r["user_id"] or "" for r in key_rows}
            if len(users) > 1 and len({r["custom_llm_provider"] or "unknown" for r in key_rows}) > 1:
                for user in users - {""}:
                    need[user].append(when)
                if _read_row_by_row(key_rows):
                    requests += len(key_rows)
        for user, user_dates in need.items():
            first, last = min(user_dates), max(user_dates)
            requests += _pages(
                sum(1 for r in model_rows if r["user_id"] == user and first <= r["date"] <= last), page_size
            )
    return requests


def _read_row_by_row(key_rows: list[Mapping[str, Any]]) -> bool:
    """Whether an undetermined key's owner-less cells must be read row by row: they sit on several
    providers and one's spend is below a millionth of its provider's (a difference of the provider's
    and the named users' double sums would not be exact to 1e-9), or they hold a tiny spend and no
    counter at all (no difference can tell it from rounding)."""
    owner_less = [r for r in key_rows if not r["user_id"]]
    if not owner_less:
        return False
    providers: dict[str, tuple[float, float, bool]] = {}
    for row in key_rows:
        provider = row["custom_llm_provider"] or "unknown"
        whole, rest, counted = providers.get(provider, (0.0, 0.0, False))
        if not row["user_id"]:
            rest += row["spend"]
            counted |= any(row[column] for column in COUNTER_COLUMNS)
        providers[provider] = (whole + row["spend"], rest, counted)
    holding = {p: v for p, v in providers.items() if v[2] or v[1] > 1e-9 * v[0]}
    if not holding:
        return any(r["spend"] for r in owner_less)
    return len(holding) > 1 and any(rest < 1e-6 * whole for whole, rest, _ in holding.values())


def activity_requests(store: LiteLLMStore) -> int:
    return len(store.requests_for(DAILY)) + len(store.requests_for(AGGREGATED))


# -- a batch split exactly, whatever the tangle ----------------------------------------------------


@st.composite
def tangled_days(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A few days where keys use several users, models and providers, differently from day to day, in
    every shape LiteLLM's table allows: NULL or '' users, models and providers beside real ones, one cell
    split over endpoints and MCP tools, a model on three providers for one key."""
    cells = draw(
        st.lists(
            st.tuples(
                st.integers(0, 4),
                st.sampled_from(["k1", "k2", "k3"]),
                st.sampled_from(["alice", "bob", "", None]),
                st.sampled_from(["gpt-4o", "claude", None, ""]),
                st.sampled_from(["openai", "azure", "bedrock", "", None]),
                st.sampled_from(["/chat/completions", "/embeddings", "/mcp", None]),
                st.sampled_from(["", "", None, "jira-create_issue"]),
            ),
            min_size=1,
            max_size=40,
            unique=True,
        )
    )
    return [
        make_row(
            (D + timedelta(days=offset)).isoformat(),
            user,
            f"{key:0>64}".replace("k", "a"),
            model,
            provider,
            endpoint=endpoint,
            mcp_namespaced_tool_name=tool,
            spend=draw(st.floats(0, 5, allow_nan=False)),
            prompt_tokens=draw(st.integers(0, 10**7)),
            completion_tokens=draw(st.integers(0, 10**6)),
            api_requests=draw(st.integers(0, 1000)),
        )
        for offset, key, user, model, provider, endpoint, tool in cells
    ]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=tangled_days(), page_size=st.sampled_from([1, 3, 1000]))
def test_a_batch_of_tangled_days_is_split_exactly_at_the_promised_cost(
    rows: list[dict[str, Any]], page_size: int, database_url: str
) -> None:
    days = days_between(D, D + timedelta(days=4))
    store = LiteLLMStore(keys=[], users=[], rows=rows)

    async def check() -> None:
        with running_litellm(store) as url:
            async with gateway(
                database_url, url, clock=clock_at(long_after(days[-1])), page_size=page_size
            ) as gw:
                await gw.db.execute("DELETE FROM usage_facts; DELETE FROM usage_days")
                report = await gw.days.ensure(days[0], days[-1])
                assert report.complete
                assert report.closed == days
                assert_same_cells(await stored_cells(gw.db), expected_cells(rows))
        assert activity_requests(store) == expected_requests(rows, days, page_size)
        assert day_fetches(store) == Counter(days)

    asyncio.run(check())


async def test_a_cold_batch_costs_one_request_plus_the_pages_of_each_model(database_url: str) -> None:
    days = days_between(D, D + timedelta(days=5))
    rows = [
        make_row(
            day.isoformat(),
            f"user-{n % 3}",
            f"{n % 4:064x}",
            f"model-{(n + index) % 5}",
            ("openai", "azure")[n % 2],
            spend=0.25 * n,
            prompt_tokens=10 * n,
            api_requests=n,
        )
        for index, day in enumerate(days)
        for n in range(7)
    ]
    store = LiteLLMStore(keys=[], users=[], rows=rows)
    with running_litellm(store) as url:
        async with gateway(database_url, url, clock=clock_at(long_after(days[-1])), page_size=4) as gw:
            report = await gw.days.ensure(days[0], days[-1])
            assert report.closed == days
            assert_same_cells(await stored_cells(gw.db), expected_cells(rows))
    per_model = Counter(_model_bucket(r) for r in rows)
    assert activity_requests(store) == 1 + sum(_pages(n, 4) for n in per_model.values())
    assert len(store.requests_for(AGGREGATED)) == 1
    assert all("user_id" not in r.params for r in store.requests_for(DAILY))


async def test_a_key_with_two_users_and_two_providers_within_a_model_is_narrowed_by_user(
    database_url: str,
) -> None:
    key = "e" * 64
    days = [D, D + timedelta(days=1), D + timedelta(days=2)]
    rows = [
        make_row(day.isoformat(), user, key, "gpt-4o", provider, spend=spend, api_requests=requests)
        for day in (days[0], days[2])
        for user, provider, spend, requests in (
            ("alice", "openai", 1.5, 3),
            ("bob", "azure", 0.25, 5),
            ("", "openai", 0.125, 7),
        )
    ] + [make_row(days[1].isoformat(), "alice", key, "claude", "anthropic", spend=2.0, api_requests=1)]
    store = LiteLLMStore(keys=[], users=[], rows=rows)
    with running_litellm(store) as url:
        async with gateway(database_url, url, clock=clock_at(long_after(days[-1]))) as gw:
            report = await gw.days.ensure(days[0], days[-1])
            assert report.closed == days
            assert_same_cells(await stored_cells(gw.db), expected_cells(rows))
    narrowed = sorted(
        (r.params["user_id"], r.params["start_date"], r.params["end_date"])
        for r in store.requests_for(DAILY)
        if "user_id" in r.params
    )
    # One query per named user, over the first to the last date that needs it; the owner-less user's
    # cells are what the named users leave of each provider.
    first, last = days[0].isoformat(), days[2].isoformat()
    assert narrowed == [("alice", first, last), ("bob", first, last)]
    assert activity_requests(store) == expected_requests(rows, days, 1000) == 1 + 2 + 2


async def test_a_tiny_owner_less_cell_beside_a_large_one_is_exact_without_a_row_by_row_read(
    database_url: str,
) -> None:
    """The owner-less rows sit on one provider: their cell is LiteLLM's own sum of them, not the tiny
    difference of two large sums (which would be off by the large sums' rounding)."""
    key = "e" * 64
    rows = [
        make_row(D.isoformat(), "alice", key, "gpt-4o", "openai", spend=4.0000001, api_requests=9),
        make_row(D.isoformat(), "alice", key, "gpt-4o", "azure", spend=1.5, api_requests=2),
        make_row(D.isoformat(), None, key, "gpt-4o", "openai", spend=5.960464477539063e-08),
        make_row(D.isoformat(), "", key, "gpt-4o", "openai", spend=3e-9, api_requests=1),
    ]
    store = LiteLLMStore(keys=[], users=[], rows=rows)
    with running_litellm(store) as url:
        async with gateway(database_url, url, clock=clock_at(long_after(D))) as gw:
            report = await gw.days.ensure(D, D)
            assert report.closed == [D]
            assert_same_cells(await stored_cells(gw.db), expected_cells(rows))
    assert not [r for r in store.requests_for(DAILY) if r.params.get("page_size") == "1"]
    assert activity_requests(store) == expected_requests(rows, [D], 1000) == 1 + 1 + 1


async def test_owner_less_cells_on_two_providers_that_no_difference_pins_are_read_row_by_row(
    database_url: str,
) -> None:
    """NULL-user rows on two providers, one of them a millionth of its provider's spend: no subtraction
    is exact to 1e-9 there, so that key's rows of the model and day are read one page of one row each."""
    key = "e" * 64
    rows = [
        make_row(D.isoformat(), "alice", key, "gpt-4o", "openai", spend=3.25, api_requests=4),
        make_row(D.isoformat(), "alice", key, "gpt-4o", "azure", spend=0.5, api_requests=1),
        make_row(D.isoformat(), None, key, "gpt-4o", "openai", spend=1.1e-7, api_requests=1),
        make_row(D.isoformat(), None, key, "gpt-4o", "azure", spend=0.75, api_requests=2),
        make_row(D.isoformat(), "bob", "f" * 64, "gpt-4o", "openai", spend=2.0, api_requests=1),
    ]
    store = LiteLLMStore(keys=[], users=[], rows=rows)
    with running_litellm(store) as url:
        async with gateway(database_url, url, clock=clock_at(long_after(D))) as gw:
            report = await gw.days.ensure(D, D)
            assert report.closed == [D]
            assert_same_cells(await stored_cells(gw.db), expected_cells(rows))
    one_by_one = [r.params for r in store.requests_for(DAILY) if r.params.get("page_size") == "1"]
    assert sorted(p["page"] for p in one_by_one) == ["1", "2", "3", "4"]  # the key's four rows
    assert {(p["api_key"], p["model"], p["start_date"]) for p in one_by_one} == {
        (key, "gpt-4o", D.isoformat())
    }
    assert activity_requests(store) == expected_requests(rows, [D], 1000) == 1 + 1 + 1 + 4


# -- per-date verification and failures ------------------------------------------------------------


async def test_a_day_that_changes_during_the_batch_is_the_only_one_fetched_again(database_url: str) -> None:
    days = days_between(D, D + timedelta(days=4))
    live = days[2]
    store = LiteLLMStore(keys=[], users=[], rows=spread_rows(days, per_day=4))
    # The live day grows after the batch's /aggregated answer and after the first page that covers it.
    faults = Faults(mutate_day=live.isoformat(), mutate_limit=2)
    with running_litellm(store, faults) as url:
        async with gateway(database_url, url, clock=clock_at(long_after(days[-1]))) as gw:
            report = await gw.days.ensure(days[0], days[-1])
            assert report.closed == days
            assert faults.mutations == 2
            assert_same_cells(await stored_cells(gw.db), expected_cells(store.rows()))
    assert day_fetches(store) == Counter({**dict.fromkeys(days, 1), live: 2})
    spans = [(r.params["start_date"], r.params["end_date"]) for r in store.requests_for(AGGREGATED)]
    assert spans == [(days[0].isoformat(), days[-1].isoformat()), (live.isoformat(), live.isoformat())]


class FailingDays(httpx.AsyncBaseTransport):
    """A LiteLLM that answers 500 to every activity request whose range covers one of ``days`` (a day it
    cannot serve), and normally to everything else."""

    def __init__(self, days: Collection[date]) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._days = {d.isoformat() for d in days}
        self.failed: list[tuple[str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        start = request.url.params.get("start_date", "")
        end = request.url.params.get("end_date", "")
        if request.url.path.startswith(DAILY) and any(start <= d <= end for d in self._days):
            self.failed.append((start, end))
            return httpx.Response(500, json={"detail": {"error": "Failed to fetch analytics: injected"}})
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@contextlib.asynccontextmanager
async def cache_over(
    database_url: str,
    transport: httpx.AsyncBaseTransport,
    url: str,
    last_day: date,
    concurrency: int = 8,
    redis_url: str | None = None,
) -> AsyncIterator[tuple[Database, DayCache]]:
    async with gateway(
        database_url,
        url,
        redis_url=redis_url,
        clock=clock_at(long_after(last_day)),
        retries=1,
        timeout_seconds=30.0,
        concurrency=concurrency,
        transport=transport,
    ) as gw:
        yield gw.db, gw.days


async def test_a_day_litellm_cannot_serve_is_reported_and_the_rest_of_its_batch_is_stored(
    database_url: str,
) -> None:
    days = days_between(D, D + timedelta(days=4))
    broken = days[2]
    store = LiteLLMStore(keys=[], users=[], rows=spread_rows(days))
    transport = FailingDays([broken])
    with running_litellm(store) as url:
        async with cache_over(database_url, transport, url, days[-1]) as (db, cache):
            report = await cache.ensure(days[0], days[-1])
            assert report.missing == [broken]
            assert set(report.failures) == {broken}
            assert "failed after 2 attempts" in report.failures[broken]
            assert report.closed == [d for d in days if d != broken]
            healthy_rows = [r for r in store.rows() if r["date"] != broken.isoformat()]
            assert_same_cells(await stored_cells(db), expected_cells(healthy_rows))
            assert await db.fetch_all("SELECT 1 FROM usage_days WHERE date = %s", (broken,)) == []
    # Halved until the failure was pinned: the whole batch, then the half with the bad day, then the day.
    first_tries = sorted(set(transport.failed))
    assert (days[0].isoformat(), days[-1].isoformat()) in first_tries
    assert (broken.isoformat(), broken.isoformat()) in first_tries
    assert day_fetches(store) == Counter(d for d in days if d != broken)


async def test_requests_in_flight_are_bounded_by_the_client_and_the_models_go_at_once(
    database_url: str,
) -> None:
    days = days_between(D, D + timedelta(days=2))
    rows = [
        make_row(day.isoformat(), "alice", "a" * 64, f"model-{m}", "openai", spend=0.5, api_requests=1)
        for day in days
        for m in range(12)
    ]
    store = LiteLLMStore(keys=[], users=[], rows=rows)

    class Watching(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self._inner = httpx.AsyncHTTPTransport()
            self.now = self.peak = 0

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            self.now += 1
            self.peak = max(self.peak, self.now)
            try:
                return await self._inner.handle_async_request(request)
            finally:
                self.now -= 1

        async def aclose(self) -> None:
            await self._inner.aclose()

    transport = Watching()
    with running_litellm(store, Faults(latency_seconds=0.05)) as url:
        async with cache_over(database_url, transport, url, days[-1], concurrency=4) as (db, cache):
            report = await cache.ensure(days[0], days[-1])
            assert report.closed == days
            assert_same_cells(await stored_cells(db), expected_cells(rows))
    assert transport.peak == 4
    assert activity_requests(store) == 1 + 12


# -- batching ----------------------------------------------------------------------------------------


def test_stale_days_are_batched_in_runs_of_nearby_days_of_bounded_span() -> None:
    assert plan_batches([]) == []
    month = days_between(date(2026, 1, 1), date(2026, 1, 31))
    assert plan_batches(reversed(month)) == [month]
    year = days_between(date(2026, 1, 1), date(2026, 12, 31))
    batches = plan_batches(year)
    assert [len(b) for b in batches] == [31] * 11 + [24]
    assert [d for b in batches for d in b] == year
    far = [date(2025, 3, 1), date(2026, 3, 1)]
    assert plan_batches(far) == [[far[0]], [far[1]]]
    # A gap of up to three days is cheaper to page through than a second batch; four is not.
    near = [D, D + timedelta(days=4), D + timedelta(days=9)]
    assert plan_batches(near) == [near[:2], near[2:]]
    assert plan_batches(month, max_span=10) == [month[:10], month[10:20], month[20:30], month[30:]]


async def test_far_apart_days_are_fetched_as_separate_batches(database_url: str) -> None:
    days = [D, D + timedelta(days=200)]
    store = LiteLLMStore(keys=[], users=[], rows=spread_rows(days))
    with running_litellm(store) as url:
        async with gateway(database_url, url, clock=clock_at(long_after(days[-1]))) as gw:
            report = await gw.days.refresh(days)
            assert sorted(report.fetched) == days
            assert_same_cells(await stored_cells(gw.db), expected_cells(store.rows()))
    spans = sorted((r.params["start_date"], r.params["end_date"]) for r in store.requests_for(AGGREGATED))
    assert spans == [(d.isoformat(), d.isoformat()) for d in days]
    assert all(r.params["start_date"] == r.params["end_date"] for r in store.requests_for(DAILY))


async def test_overlapping_ranges_in_one_process_fetch_each_day_once(
    database_url: str, redis_url: str
) -> None:
    days = days_between(date(2026, 10, 1), date(2026, 10, 30))
    store = LiteLLMStore(keys=[], users=[], rows=spread_rows(days))
    with running_litellm(store, Faults(latency_seconds=0.02)) as url:
        async with gateway(
            database_url, url, redis_url=redis_url, clock=clock_at(long_after(days[-1]))
        ) as gw:
            reports = await asyncio.gather(
                gw.days.ensure(days[0], days[19]),
                gw.days.ensure(days[10], days[-1]),
                gw.days.ensure(days[5], days[25]),
            )
            assert all(r.complete for r in reports)
            assert_same_cells(await stored_cells(gw.db), expected_cells(store.rows()))
    assert day_fetches(store) == Counter(days)


async def test_a_long_backfill_goes_in_bounded_batches(database_url: str) -> None:
    days = days_between(date(2026, 6, 1), date(2026, 8, 9))  # 70 days
    store = LiteLLMStore(keys=[], users=[], rows=spread_rows(days, per_day=2))
    with running_litellm(store) as url:
        async with gateway(database_url, url, clock=clock_at(long_after(days[-1]))) as gw:
            report = await gw.days.ensure(days[0], days[-1])
            assert report.closed == days
            assert_same_cells(await stored_cells(gw.db), expected_cells(store.rows()))
    spans = sorted((r.params["start_date"], r.params["end_date"]) for r in store.requests_for(AGGREGATED))
    assert spans == [
        (days[0].isoformat(), days[30].isoformat()),
        (days[31].isoformat(), days[61].isoformat()),
        (days[62].isoformat(), days[-1].isoformat()),
    ]


class SkewedTotals(httpx.AsyncBaseTransport):
    """A LiteLLM whose ``/aggregated`` claims one more request on ``days`` than its pages hold (while
    ``skewed`` is true): those days can never verify."""

    def __init__(self, days: Collection[date]) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._days = {d.isoformat() for d in days}
        self.skewed = True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if not self.skewed or request.url.path != AGGREGATED:
            return response
        body = json.loads(await response.aread())
        for day in body["results"]:
            if day["date"] in self._days:
                day["metrics"]["api_requests"] += 1
        return httpx.Response(response.status_code, json=body)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_a_day_that_never_verifies_is_reported_retried_within_a_budget_then_healed(
    database_url: str, redis_url: str
) -> None:
    days = days_between(D, D + timedelta(days=2))
    bad = days[1]
    store = LiteLLMStore(keys=[], users=[], rows=spread_rows(days))
    transport = SkewedTotals([bad])
    with running_litellm(store) as url:
        async with cache_over(database_url, transport, url, days[-1], redis_url=redis_url) as (db, cache):
            first = await cache.ensure(days[0], days[-1])
            # Stored (its numbers are served), but neither closed nor complete, and said so.
            assert first.unverified == [bad]
            assert not first.complete
            assert first.closed == [days[0], days[2]]
            assert first.open == [bad]
            assert_same_cells(await stored_cells(db), expected_cells(store.rows()))
            assert day_fetches(store, bad) == 3  # read three times in the first fetch

            # The next requests read it again, three more fetches, then it waits like any open day.
            for _ in range(5):
                again = await cache.ensure(days[0], days[-1])
                assert again.unverified == [bad]
                assert not again.complete
            assert day_fetches(store, bad) == 3 + 3 * 3
            assert day_fetches(store, days[0]) == day_fetches(store, days[2]) == 1

            transport.skewed = False
            healed = await cache.refresh([bad])
            assert healed.unverified == []
            assert healed.complete
            after = await cache.ensure(days[0], days[-1])
            assert after.complete
            assert after.closed == days
            assert_same_cells(await stored_cells(db), expected_cells(store.rows()))
            assert await db.fetch_all(
                "SELECT verified, unverified_fetches FROM usage_days WHERE date = %s", (bad,)
            ) == [(True, 0)]
