from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.facts_data import (
    BASE,
    DAYS,
    MODELS,
    VALUES,
    Fact,
    additive_only,
    additive_sum,
    facts,
    facts_lists,
    filters,
    make_fact,
    py_groups,
    py_order,
    py_series,
    py_totals,
    replace_facts,
    without_active,
)
from usage_gateway.datasources.db import Database, count_statements
from usage_gateway.datasources.facts.aggregates import (
    Dimension,
    Direction,
    FactFilter,
    Granularity,
    GroupRow,
    InvalidCursor,
    Order,
    OrderMetric,
    UsageTotals,
    breakdown,
    distinct_values,
    series_by_group,
    time_series,
    top_within,
    totals,
)
from usage_gateway.datasources.facts.vocabulary import USAGE_DIMENSIONS

examples = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
orders = st.builds(Order, st.sampled_from(OrderMetric), st.sampled_from(Direction))
spend_bounds = st.one_of(st.none(), st.sampled_from(["0", "0.5", "1.5", "100"]).map(Decimal))
EVERYTHING = FactFilter(BASE - timedelta(days=5), BASE + timedelta(days=DAYS + 5))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await Database.open(database_url, max_size=2)
    yield database
    await database.close()


async def page_through(
    db: Database,
    f: FactFilter,
    dimension: Dimension,
    order: Order,
    page_size: int,
    expected_count: int,
    min_spend: Decimal | None = None,
    max_spend: Decimal | None = None,
    *,
    active_counts: bool = True,
) -> list[GroupRow]:
    """Every row of a breakdown, page by page, checking each page's count, cursor and next flag."""
    rows: list[GroupRow] = []
    after: str | None = None
    for _ in range(expected_count + 1):
        page = await breakdown(
            db,
            f,
            dimension,
            order=order,
            first=page_size,
            after=after,
            min_spend=min_spend,
            max_spend=max_spend,
            active_counts=active_counts,
        )
        assert page.total_count == expected_count
        assert len(page.rows) == min(page_size, expected_count - len(rows))
        assert (page.end_cursor is None) == (not page.rows)
        rows += page.rows
        assert page.has_next_page == (len(rows) < expected_count)
        if not page.has_next_page:
            return rows
        after = page.end_cursor
    raise AssertionError("paging did not end")


# --- Agreement with the Python model on random data -----------------------------------------------------


@examples
@given(facts=facts_lists, f=filters())
async def test_totals_series_and_values_equal_python(db: Database, facts: list[Fact], f: FactFilter) -> None:
    await replace_facts(db, facts)
    expected = py_totals(fact for fact in facts if fact.matches(f))
    assert await totals(db, f) == expected
    for granularity in Granularity:
        series = await time_series(db, f, granularity)
        assert series == py_series(facts, f, granularity)
        assert additive_sum(point for _, point in series) == additive_only(expected)
    assert await totals(db, f, active_counts=False) == additive_only(expected)
    assert await time_series(db, f, Granularity.WEEK, active_counts=False) == [
        (start, additive_only(point)) for start, point in py_series(facts, f, Granularity.WEEK)
    ]
    for dimension in USAGE_DIMENSIONS:
        assert await distinct_values(db, f, dimension) == [row.key for row in py_groups(facts, f, dimension)]


# Facts clustered around February, and ranges starting and ending anywhere: ranges that cover more than
# half of a month read its month rows and subtract the days outside them, the others add day rows.
february_facts = st.lists(
    st.builds(replace, facts, date=st.integers(5, 45).map(lambda n: BASE + timedelta(days=n))),
    max_size=40,
    unique_by=lambda fact: (fact.date, fact.api_key, fact.litellm_user_id, fact.model, fact.provider),
)


@examples
@given(facts=february_facts, start=st.integers(0, DAYS), length=st.integers(0, DAYS), f=filters())
async def test_ranges_read_from_month_rollups_equal_python(
    db: Database, facts: list[Fact], start: int, length: int, f: FactFilter
) -> None:
    """Breakdowns without active counts and the totals' active counts read the month rollups."""
    f = replace(f, date_from=BASE + timedelta(days=start), date_to=BASE + timedelta(days=start + length))
    await replace_facts(db, facts)
    assert await totals(db, f) == py_totals(fact for fact in facts if fact.matches(f))
    for dimension in USAGE_DIMENSIONS:
        page = await breakdown(db, f, dimension, order=Order(), first=500, after=None, active_counts=False)
        expected = [without_active(row) for row in py_order(py_groups(facts, f, dimension), Order())]
        assert (page.total_count, page.rows) == (len(expected), expected)


async def test_month_edges_are_subtracted_and_added(db: Database) -> None:
    """2 Feb – 7 Mar reads February's month rows minus 1 February, and 1–7 March's day rows."""
    facts = [
        make_fact(date(2024, 2, 1), spend="100", requests=100),  # subtracted
        make_fact(date(2024, 2, 1), user_id="bob", model=MODELS[1], spend="1000"),  # bob: gone in range
        make_fact(date(2024, 2, 10), spend="2.5", requests=2),
        make_fact(date(2024, 3, 1), spend="0.25", requests=3),  # added
        make_fact(date(2024, 3, 8), spend="7", requests=7),  # outside
    ]
    await replace_facts(db, facts)
    f = FactFilter(date(2024, 2, 2), date(2024, 3, 7))
    expected = py_totals(fact for fact in facts if fact.matches(f))
    assert (expected.spend, expected.requests, expected.active_users) == (Decimal("2.75"), 5, 1)
    assert await totals(db, f) == expected
    for dimension in USAGE_DIMENSIONS:
        page = await breakdown(db, f, dimension, order=Order(), first=10, after=None, active_counts=False)
        assert page.rows == [without_active(row) for row in py_groups(facts, f, dimension)]
        assert page.rows[0].last_active == date(2024, 3, 1)


@examples
@given(
    facts=facts_lists,
    f=filters(),
    page_size=st.integers(1, 7),
    low=spend_bounds,
    high=spend_bounds,
    active=st.booleans(),
)
async def test_breakdown_pages_return_every_group_once_in_order(
    db: Database,
    facts: list[Fact],
    f: FactFilter,
    page_size: int,
    low: Decimal | None,
    high: Decimal | None,
    active: bool,
) -> None:
    await replace_facts(db, facts)
    grand_total = await totals(db, f)
    for dimension in USAGE_DIMENSIONS:
        groups = [
            row if active else without_active(row)
            for row in py_groups(facts, f, dimension)
            if (low is None or row.totals.spend >= low) and (high is None or row.totals.spend <= high)
        ]
        for metric in OrderMetric:
            for direction in Direction:
                order = Order(metric, direction)
                rows = await page_through(
                    db, f, dimension, order, page_size, len(groups), low, high, active_counts=active
                )
                assert rows == py_order(groups, order)
        if low is None and high is None:
            assert additive_sum(row.totals for row in rows) == additive_only(grand_total)


@examples
@given(
    facts=facts_lists,
    f=filters(),
    outer=st.sampled_from(USAGE_DIMENSIONS),
    inner=st.sampled_from(USAGE_DIMENSIONS),
    granularity=st.sampled_from(Granularity),
    first=st.integers(0, 4),
    order=orders,
    active=st.booleans(),
    data=st.data(),
)
async def test_series_by_group_and_top_within_equal_python(
    db: Database,
    facts: list[Fact],
    f: FactFilter,
    outer: Dimension,
    inner: Dimension,
    granularity: Granularity,
    first: int,
    order: Order,
    active: bool,
    data: st.DataObject,
) -> None:
    await replace_facts(db, facts)
    keys = data.draw(st.lists(st.sampled_from([*VALUES[outer], "absent"]), min_size=1, unique=True))
    series = await series_by_group(db, f, outer, keys, granularity, active_counts=active)
    tops = await top_within(db, f, outer, keys, inner, first=first, order=order, active_counts=active)
    assert list(series) == keys
    assert list(tops) == keys
    for key in keys:
        own = [fact for fact in facts if fact.value(outer) == key]
        expected_series = py_series(own, f, granularity)
        expected_tops = py_order(py_groups(own, f, inner), order)[:first]
        if not active:
            expected_series = [(start, additive_only(point)) for start, point in expected_series]
            expected_tops = [without_active(row) for row in expected_tops]
        assert series[key] == expected_series
        assert tops[key] == expected_tops


# --- Exact numbers, buckets, filters --------------------------------------------------------------------


async def test_no_facts_give_zero_totals_and_zero_buckets(db: Database) -> None:
    f = FactFilter(date(2024, 1, 30), date(2024, 2, 2))
    assert await totals(db, f) == UsageTotals.ZERO
    assert await time_series(db, f, Granularity.DAY) == [
        (date(2024, 1, 30) + timedelta(days=n), UsageTotals.ZERO) for n in range(4)
    ]
    page = await breakdown(db, f, Dimension.USER, order=Order(), first=10, after=None)
    assert (page.total_count, page.rows, page.has_next_page, page.end_cursor) == (0, [], False, None)
    assert UsageTotals.ZERO.success_rate is None
    assert UsageTotals.ZERO.average_latency_ms is None


async def test_spend_sums_are_exact_decimals(db: Database) -> None:
    facts = [make_fact(BASE + timedelta(days=n), spend="0.1") for n in range(10)]
    facts.append(make_fact(BASE, model="big", spend="12345678901234.1234567890123"))
    await replace_facts(db, facts)
    result = await totals(db, EVERYTHING)
    assert result.spend == Decimal("12345678901235.1234567890123")
    assert isinstance(result.spend, Decimal)
    assert result.success_rate == 1.0
    assert result.average_latency_ms == 100.0


async def test_active_counts_leave_out_unattributed(db: Database) -> None:
    await replace_facts(
        db,
        [
            make_fact(user_id="unattributed", api_key="unattributed"),
            make_fact(user_id="litellm:x", api_key="raw:abc", model="m2"),
            make_fact(user_id="alice", model="m3"),
        ],
    )
    result = await totals(db, EVERYTHING)
    assert (result.active_users, result.active_api_keys, result.active_models) == (2, 2, 3)


async def test_buckets_start_on_monday_and_on_the_first(db: Database) -> None:
    await replace_facts(db, [make_fact(date(2024, 2, 14), spend="2.5")])
    f = FactFilter(date(2024, 1, 31), date(2024, 3, 1))  # a Wednesday to a Friday
    weeks = await time_series(db, f, Granularity.WEEK)
    assert [start for start, _ in weeks] == [date(2024, 1, 29) + timedelta(weeks=n) for n in range(5)]
    assert [point.spend for _, point in weeks] == [0, 0, Decimal("2.5"), 0, 0]
    months = await time_series(db, f, Granularity.MONTH)
    assert [start for start, _ in months] == [date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)]
    assert len(await time_series(db, f, Granularity.DAY)) == 31


async def test_an_empty_filter_tuple_matches_nothing(db: Database) -> None:
    await replace_facts(db, [make_fact()])
    assert await totals(db, replace(EVERYTHING, models=())) == UsageTotals.ZERO
    assert (await totals(db, replace(EVERYTHING, models=None))).requests == 1


# --- Breakdown paging -----------------------------------------------------------------------------------


async def test_many_tied_groups_page_by_key(db: Database) -> None:
    models = [f"model-{n:02}" for n in range(12)]
    await replace_facts(db, [make_fact(model=model) for model in reversed(models)])
    for direction in Direction:
        order = Order(OrderMetric.SPEND, direction)
        rows = await page_through(db, EVERYTHING, Dimension.MODEL, order, 5, 12)
        assert [row.key for row in rows] == models


async def test_spend_bounds_are_inclusive(db: Database) -> None:
    await replace_facts(db, [make_fact(model=f"m{n}", spend=str(n)) for n in (1, 2, 3, 4)])
    page = await breakdown(
        db, EVERYTHING, Dimension.MODEL, order=Order(), first=10, after=None,
        min_spend=Decimal(2), max_spend=Decimal(3),
    )  # fmt: skip
    assert page.total_count == 2
    assert [row.key for row in page.rows] == ["m3", "m2"]


async def test_first_zero_counts_without_rows(db: Database) -> None:
    await replace_facts(db, [make_fact(model=model) for model in MODELS])
    page = await breakdown(db, EVERYTHING, Dimension.MODEL, order=Order(), first=0, after=None)
    assert (page.total_count, page.rows, page.has_next_page, page.end_cursor) == (4, [], True, None)


async def test_group_rows_carry_related_values_and_last_activity(db: Database) -> None:
    await replace_facts(
        db,
        [
            make_fact(BASE, model="gpt", provider="openai"),
            make_fact(BASE + timedelta(days=3), model="gpt", provider="azure"),
            make_fact(BASE + timedelta(days=1), model="claude", provider="bedrock"),
        ],
    )
    page = await breakdown(db, EVERYTHING, Dimension.MODEL, order=Order(), first=5, after=None)
    assert [(row.key, row.related, row.last_active) for row in page.rows] == [
        ("gpt", ("azure", "openai"), BASE + timedelta(days=3)),
        ("claude", ("bedrock",), BASE + timedelta(days=1)),
    ]


def _encoded(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


async def test_bad_or_foreign_cursors_are_rejected(db: Database) -> None:
    await replace_facts(db, [make_fact(model=model) for model in MODELS])
    order = Order(OrderMetric.REQUESTS, Direction.DESC)
    first = await breakdown(db, EVERYTHING, Dimension.MODEL, order=order, first=1, after=None)
    cursor = first.end_cursor
    assert cursor is not None
    valid = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    second = await breakdown(db, EVERYTHING, Dimension.MODEL, order=order, first=1, after=cursor)
    assert second.rows[0].key != first.rows[0].key

    foreign = [
        (Dimension.PROVIDER, order),
        (Dimension.MODEL, Order(OrderMetric.SPEND, Direction.DESC)),
        (Dimension.MODEL, Order(OrderMetric.REQUESTS, Direction.ASC)),
    ]
    for dimension, other in foreign:
        with pytest.raises(InvalidCursor):
            await breakdown(db, EVERYTHING, dimension, order=other, first=1, after=cursor)
    malformed = [
        "",
        "not a cursor!",
        "x" * 5000,
        _encoded([1, 2]),
        _encoded({**valid, "extra": 1}),
        _encoded({key: value for key, value in valid.items() if key != "k"}),
        _encoded({**valid, "v": "1.5"}),
        _encoded({**valid, "v": "1e5"}),
        _encoded({**valid, "v": 1}),
        _encoded({**valid, "k": 3}),
        _encoded({**valid, "k": "a\x00b"}),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ]
    for bad in malformed:
        with pytest.raises(InvalidCursor):
            await breakdown(db, EVERYTHING, Dimension.MODEL, order=order, first=1, after=bad)
    assert issubclass(InvalidCursor, ValueError)


async def test_cursors_page_through_any_spend_a_double_can_sum_to(db: Database) -> None:
    """The smallest double's shortest decimal has 324 decimal places, the largest 309 integer digits:
    a cursor made after such a spend must be accepted back."""
    spends = ["5E-324", "1E-300", "0.1", "1.7976931348623157E+308"]
    await replace_facts(db, [make_fact(model=m, spend=s) for m, s in zip(MODELS, spends, strict=True)])
    for direction in Direction:
        order, after, seen = Order(OrderMetric.SPEND, direction), None, []
        while True:
            page = await breakdown(db, EVERYTHING, Dimension.MODEL, order=order, first=1, after=after)
            seen += [row.key for row in page.rows]
            if not page.has_next_page:
                break
            after = page.end_cursor
        assert sorted(seen) == sorted(MODELS)


# --- Statement counts -----------------------------------------------------------------------------------


async def test_each_function_costs_one_statement_whatever_the_number_of_keys(db: Database) -> None:
    users = [f"user-{n}" for n in range(60)]
    await replace_facts(
        db,
        [make_fact(user_id=user, api_key=f"key-{user}", model=model) for user in users for model in MODELS],
    )
    f, order = EVERYTHING, Order()
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: totals(db, f),
        lambda: time_series(db, f, Granularity.WEEK),
        lambda: breakdown(db, f, Dimension.USER, order=order, first=50, after=None),
        lambda: series_by_group(db, f, Dimension.USER, users[:1], Granularity.DAY),
        lambda: series_by_group(db, f, Dimension.USER, users, Granularity.DAY),
        lambda: top_within(db, f, Dimension.USER, users[:1], Dimension.MODEL, first=10),
        lambda: top_within(db, f, Dimension.USER, users, Dimension.MODEL, first=10),
        lambda: distinct_values(db, f, Dimension.MODEL),
    ]
    for call in calls:
        with count_statements() as counter:
            await call()
        assert counter.count == 1
    with count_statements() as counter:
        assert await series_by_group(db, f, Dimension.USER, [], Granularity.DAY) == {}
        assert await top_within(db, f, Dimension.USER, [], Dimension.MODEL, first=10) == {}
    assert counter.count == 0
