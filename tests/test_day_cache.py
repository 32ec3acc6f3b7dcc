"""The day cache against the project's LiteLLM-compatible server over real HTTP, real Postgres and Redis."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, overload

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.expected import assert_same_cells, expected_cells, total_of
from tests.gateway_harness import clock_at, gateway, long_after, stored_cells
from tests.golden_files import GOLDEN_DIR
from tests.litellm_rows import make_row
from usage_gateway.datasources.daycache.days import days_between
from usage_gateway.devtools.litellm_compat import Faults, LiteLLMStore, running_litellm
from usage_gateway.errors import UpstreamRejected

GOLDEN = GOLDEN_DIR
DAILY = "/user/daily/activity"
AGGREGATED = "/user/daily/activity/aggregated"


@overload
def day_fetches(store: LiteLLMStore) -> Counter[date]: ...
@overload
def day_fetches(store: LiteLLMStore, day: date) -> int: ...
def day_fetches(store: LiteLLMStore, day: date | None = None) -> Counter[date] | int:
    """How many times each day (or ``day``) was read from LiteLLM: every read of a batch of days starts
    with one /aggregated request over the batch's span (the tests' batches have no gaps)."""
    counts = Counter(
        when
        for record in store.requests_for(AGGREGATED)
        for when in days_between(
            date.fromisoformat(record.params["start_date"]), date.fromisoformat(record.params["end_date"])
        )
    )
    return counts if day is None else counts[day]


def spread_rows(days: list[date], per_day: int = 3) -> list[dict[str, Any]]:
    rows = []
    for index, day in enumerate(days):
        for n in range(per_day):
            rows.append(
                make_row(
                    day.isoformat(),
                    f"user-{n}",
                    f"{(index * 7 + n) % 5:064x}",
                    f"model-{n % 2}",
                    "openai",
                    spend=0.01 * (n + 1),
                    prompt_tokens=100 * (n + 1),
                    completion_tokens=10,
                    api_requests=n + 1,
                    successful_requests=n + 1,
                )
            )
    return rows


async def test_golden_model_two_providers_is_split_exactly(database_url: str, redis_url: str) -> None:
    store = LiteLLMStore.from_golden(GOLDEN / "model_two_providers.json")
    rows = json.loads((GOLDEN / "model_two_providers.json").read_text())["rows"]
    with running_litellm(store) as url:
        async with gateway(
            database_url, url, redis_url=redis_url, clock=clock_at(long_after(date(2026, 11, 15)))
        ) as gw:
            report = await gw.days.ensure(date(2026, 11, 14), date(2026, 11, 15))
            assert report.complete
            assert report.closed == [date(2026, 11, 14), date(2026, 11, 15)]
            assert_same_cells(await stored_cells(gw.db), expected_cells(rows))
    # gpt-4o went to two providers through one key: the days are read model by model, one batch.
    narrowed = {r.params.get("model") for r in store.requests_for(DAILY) if "model" in r.params}
    assert "gpt-4o" in narrowed
    assert all("model" in r.params for r in store.requests_for(DAILY))
    assert day_fetches(store) == Counter([date(2026, 11, 14), date(2026, 11, 15)])


@pytest.mark.parametrize("page_size", [3, 1000])
async def test_golden_nullable_columns_are_split_exactly(database_url: str, page_size: int) -> None:
    """NULL and '' users, models and providers beside real ones; a key whose gpt-4o went to three
    providers for its owner and, through a legacy NULL-user row, to one of them: no ``user_id`` filter
    selects that row, so its cell is what the owner's narrowed cells leave of each provider."""
    path = GOLDEN / "nullable_columns.json"
    store = LiteLLMStore.from_golden(path)
    rows = json.loads(path.read_text())["rows"]
    assert any(r["user_id"] is None for r in rows)
    assert any(r["model"] is None for r in rows)
    days = [date(2026, 11, 24), date(2026, 11, 25)]
    with running_litellm(store) as url:
        async with gateway(
            database_url, url, clock=clock_at(long_after(days[-1])), page_size=page_size
        ) as gw:
            report = await gw.days.ensure(days[0], days[-1])
            assert report.complete
            assert report.closed == days
            assert_same_cells(await stored_cells(gw.db), expected_cells(rows))
    assert day_fetches(store) == Counter(days)
    # Only the owner is narrowed: user_id= (empty) would miss the NULL rows, so it is never asked.
    narrowed = {r.params["user_id"] for r in store.requests_for(DAILY) if "user_id" in r.params}
    assert narrowed == {"kim"}


@st.composite
def tangled_day(draw: st.DrawFn) -> list[dict[str, Any]]:
    """One day where keys use several users, models and providers at once."""
    cells = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["k1", "k2", "k3"]),
                st.sampled_from(["alice", "bob", ""]),
                st.sampled_from(["gpt-4o", "claude", None]),
                st.sampled_from(["openai", "azure", "bedrock", ""]),
                st.sampled_from(["/chat/completions", "/embeddings"]),
            ),
            min_size=1,
            max_size=25,
            unique=True,
        )
    )
    return [
        make_row(
            "2026-11-15",
            user,
            f"{key:0>64}".replace("k", "a"),
            model,
            provider,
            endpoint=endpoint,
            spend=draw(st.floats(0, 5, allow_nan=False)),
            prompt_tokens=draw(st.integers(0, 10**7)),
            completion_tokens=draw(st.integers(0, 10**6)),
            api_requests=draw(st.integers(0, 1000)),
        )
        for key, user, model, provider, endpoint in cells
    ]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=tangled_day())
def test_split_is_exact_when_keys_use_many_models_providers_and_users(
    rows: list[dict[str, Any]], database_url: str
) -> None:
    store = LiteLLMStore(keys=[], users=[], rows=rows)

    async def check() -> None:
        with running_litellm(store) as url:
            async with gateway(database_url, url, clock=clock_at(long_after(date(2026, 11, 15)))) as gw:
                await gw.db.execute("DELETE FROM usage_facts; DELETE FROM usage_days")
                report = await gw.days.ensure(date(2026, 11, 15), date(2026, 11, 15))
                assert report.complete
                assert_same_cells(await stored_cells(gw.db), expected_cells(rows))

    asyncio.run(check())


async def test_a_closed_day_is_fetched_once_ever(database_url: str, redis_url: str) -> None:
    days = days_between(date(2026, 11, 1), date(2026, 11, 3))
    store = LiteLLMStore(keys=[], users=[], rows=spread_rows(days))
    clock = clock_at(long_after(days[-1]))
    with running_litellm(store) as url:
        async with gateway(database_url, url, redis_url=redis_url, clock=clock) as gw:
            await gw.days.ensure(days[0], days[-1])
            await gw.days.ensure(days[0], days[-1])
            assert day_fetches(store) == Counter(days)
        # A new process with a cold Redis still finds the closed days in Postgres.
        async with gateway(database_url, url, clock=clock) as gw:
            report = await gw.days.ensure(days[0], days[-1])
            assert report.closed == days
    assert day_fetches(store) == Counter(days)


async def test_an_open_day_is_fetched_again_after_its_ttl_and_not_before(
    database_url: str, redis_url: str
) -> None:
    today = date(2026, 11, 23)
    store = LiteLLMStore(keys=[], users=[], rows=spread_rows([today]))
    clock = clock_at(datetime.combine(today, time(15), UTC))
    with running_litellm(store) as url:
        async with gateway(database_url, url, redis_url=redis_url, clock=clock, today_ttl_seconds=1) as gw:
            first = await gw.days.ensure(today, today)
            assert first.open == [today]
            await gw.days.ensure(today, today)
            assert day_fetches(store, today) == 1
            await asyncio.sleep(1.2)
            store.add_rows(spread_rows([today], per_day=1))
            await gw.days.ensure(today, today)
            assert day_fetches(store, today) == 2
            assert_same_cells(await stored_cells(gw.db), expected_cells(store.rows()))


async def test_refetching_a_day_replaces_it_and_never_double_counts(database_url: str) -> None:
    day = date(2026, 11, 2)
    rows = spread_rows([day])
    store = LiteLLMStore(keys=[], users=[], rows=rows)
    with running_litellm(store) as url:
        async with gateway(database_url, url, clock=clock_at(long_after(day))) as gw:
            await gw.days.ensure(day, day)
            corrected = [{**row, "spend": row["spend"] * 2} for row in rows]
            store.set_rows(corrected)
            report = await gw.days.refresh([day], reopen=True)
            assert report.changed
            assert report.fetched == [day]
            assert_same_cells(await stored_cells(gw.db), expected_cells(corrected))
            await gw.days.refresh([day], reopen=True)
            assert_same_cells(await stored_cells(gw.db), expected_cells(corrected))


@pytest.mark.parametrize("with_redis", [True, False], ids=["redis", "postgres-locks"])
async def test_fifty_concurrent_requests_for_thirty_missing_days_fetch_each_day_once(
    database_url: str, redis_url: str, with_redis: bool
) -> None:
    days = days_between(date(2026, 10, 1), date(2026, 10, 30))
    store = LiteLLMStore(keys=[], users=[], rows=spread_rows(days))
    with running_litellm(store, Faults(latency_seconds=0.02)) as url:
        async with gateway(
            database_url,
            url,
            redis_url=redis_url if with_redis else None,
            clock=clock_at(long_after(days[-1])),
        ) as gw:
            reports = await asyncio.gather(*(gw.days.ensure(days[0], days[-1]) for _ in range(50)))
            assert all(r.complete and len(r.closed) == 30 for r in reports)
            assert_same_cells(await stored_cells(gw.db), expected_cells(store.rows()))
    # Each day read exactly once, however many requests asked for it.
    assert day_fetches(store) == Counter(days)


async def test_the_day_verification_catches_a_day_that_changed_during_pagination(database_url: str) -> None:
    day = date(2026, 11, 4)
    store = LiteLLMStore(keys=[], users=[], rows=spread_rows([day], per_day=4))
    # The day grows after the first /aggregated answer and after the first page, then holds still:
    # the first read cannot match its verification, the second must.
    faults = Faults(mutate_day=day.isoformat(), mutate_limit=2)
    with running_litellm(store, faults) as url:
        async with gateway(database_url, url, clock=clock_at(long_after(day))) as gw:
            report = await gw.days.ensure(day, day)
            assert report.closed == [day]
            assert faults.mutations == 2
            assert day_fetches(store, day) == 2
            assert_same_cells(await stored_cells(gw.db), expected_cells(store.rows()))


async def test_a_day_that_never_holds_still_stays_open_and_unverified(database_url: str) -> None:
    day = date(2026, 11, 3)
    store = LiteLLMStore(keys=[], users=[], rows=spread_rows([day], per_day=4))
    with running_litellm(store, Faults(mutate_day=day.isoformat())) as url:
        async with gateway(database_url, url, clock=clock_at(long_after(day))) as gw:
            report = await gw.days.ensure(day, day)
            assert report.open == [day]
            assert day_fetches(store, day) == 3
            state = await gw.db.fetch_one("SELECT status, verified FROM usage_days WHERE date = %s", (day,))
            assert state == ("open", False)


@pytest.mark.parametrize(
    "faults",
    [Faults(fail_next=2), Faults(malformed_next=2), Faults(timeout_next=1, hang_seconds=2.0)],
    ids=["500s", "malformed-json", "timeout"],
)
async def test_transient_upstream_failures_are_retried(database_url: str, faults: Faults) -> None:
    day = date(2026, 11, 6)
    store = LiteLLMStore(keys=[], users=[], rows=spread_rows([day]))
    with running_litellm(store, faults) as url:
        async with gateway(
            database_url, url, clock=clock_at(long_after(day)), retries=3, timeout_seconds=0.5
        ) as gw:
            report = await gw.days.ensure(day, day)
            assert report.complete
            assert report.closed == [day]
            assert_same_cells(await stored_cells(gw.db), expected_cells(store.rows()))


async def test_upstream_failures_past_the_retries_write_nothing(database_url: str) -> None:
    day = date(2026, 11, 7)
    store = LiteLLMStore(keys=[], users=[], rows=spread_rows([day]))
    with running_litellm(store, Faults(fail_next=100)) as url:
        async with gateway(database_url, url, clock=clock_at(long_after(day)), retries=2) as gw:
            report = await gw.days.ensure(day, day)
            assert report.missing == [day]
            assert "failed after 3 attempts" in report.failures[day]
            assert await gw.db.fetch_all("SELECT * FROM usage_days") == []
            assert await stored_cells(gw.db) == {}


async def test_a_rejected_request_is_not_retried_and_names_no_secret(database_url: str) -> None:
    day = date(2026, 11, 8)
    store = LiteLLMStore(keys=[], users=[], rows=spread_rows([day]))
    with running_litellm(store) as url:
        async with gateway(
            database_url, url, clock=clock_at(long_after(day)), master_key="sk-wrong-secret-value"
        ) as gw:
            with pytest.raises(UpstreamRejected) as caught:
                await gw.client.daily_activity(day, day)
    assert len(store.requests_for(DAILY)) == 1
    assert caught.value.status == 401
    assert "sk-wrong-secret-value" not in str(caught.value)


def test_the_day_status_boundary(database_url: str) -> None:
    """Fetched within CLOSE_AFTER of the day's end the day stays open; after it, it closes."""
    day = date(2026, 11, 9)
    store = LiteLLMStore(keys=[], users=[], rows=spread_rows([day]))
    end = datetime.combine(day + timedelta(days=1), time(0), UTC)

    async def status_when_fetched_at(moment: datetime) -> list[date]:
        async with gateway(database_url, url, clock=clock_at(moment)) as gw:
            report = await gw.days.refresh([day], reopen=True)
            return report.closed

    with running_litellm(store) as url:
        assert asyncio.run(status_when_fetched_at(end + timedelta(hours=1))) == []
        assert asyncio.run(status_when_fetched_at(end + timedelta(hours=2, minutes=1))) == [day]
    assert total_of(store.rows()).api_requests > 0
