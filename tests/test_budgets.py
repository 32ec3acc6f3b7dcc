"""Budgets (issue 17 item 1): the period spend equals an independent SQL sum over the matching facts, and
the period, daily rate, run-out, status and completeness follow the stated rules (module docstring of
:mod:`usage_gateway.datasources.insights.budgets`), for random facts, day states, durations and anchors."""

from __future__ import annotations

import calendar
import math
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.facts_data import KEYS, MODELS, PROVIDERS, Fact, replace_facts
from usage_gateway.datasources.db import Database
from usage_gateway.datasources.directory.budgets import BudgetEntity
from usage_gateway.datasources.insights.budgets import (
    RATE_DAYS,
    RATE_LOOKBACK_DAYS,
    BudgetSetting,
    BudgetStatus,
    current_period,
    states,
)

BASE = date(2025, 1, 6)
DAYS = 70
STATES = ("closed", "closed", "closed", "open", "unverified", "missing")
ENTITIES = {
    BudgetEntity.API_KEY: ("api_key", KEYS[:2]),
    BudgetEntity.USER: ("user_id", ("alice", "bob")),
    BudgetEntity.TEAM: ("team_id", ("team-a", "Team-B")),
}
UNTOLD = (
    "12h",
    "45m",
    "bogus",
    "99999999d",
    "99999999999mo",
)  # finer than a day, unreadable, off the calendar
DURATIONS = ("1d", "7d", "14d", "30d", "1mo", "2mo", "2w", *UNTOLD, None)

examples = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await Database.open(database_url, max_size=2)
    yield database
    await database.close()


def spent_on(day: date, spend: str) -> Fact:
    """One fact of key 0, owned by alice, in team-a."""
    return Fact(
        date=day,
        api_key=KEYS[0],
        litellm_user_id="u1",
        model="gpt-4o",
        provider="openai",
        user_id="alice",
        spend=Decimal(spend),
        prompt_tokens=0,
        completion_tokens=0,
        cache_read_input_tokens=0,
        cache_creation_input_tokens=0,
        total_tokens=0,
        api_requests=1,
        successful_requests=1,
        failed_requests=0,
        total_response_time_ms=0,
        timed_requests=0,
        team_id="team-a",
    )


@st.composite
def facts(draw: st.DrawFn) -> Fact:
    return replace(
        spent_on(
            BASE + timedelta(days=draw(st.integers(0, DAYS - 1))),
            draw(st.sampled_from(["0", "0.5", "1.25", "3", "7.125", "40"])),
        ),
        api_key=draw(st.sampled_from(KEYS[:3])),
        model=draw(st.sampled_from(MODELS[:2])),
        provider=draw(st.sampled_from(PROVIDERS[:2])),
        user_id=draw(st.sampled_from(("alice", "bob", "unattributed"))),
        team_id=draw(st.sampled_from(("team-a", "Team-B", "no-team"))),
    )


@st.composite
def budgets(draw: st.DrawFn) -> BudgetSetting:
    entity = draw(st.sampled_from(list(ENTITIES)))
    entity_id = draw(st.sampled_from(ENTITIES[entity][1]))
    reset: datetime | None = None
    if draw(st.booleans()):
        day = BASE + timedelta(days=draw(st.integers(-40, DAYS + 40)))
        reset = datetime.combine(day, time(draw(st.sampled_from([0, 0, 0, 5]))), UTC)
    created = draw(
        st.none() | st.integers(-5, 20).map(lambda n: datetime.combine(BASE + timedelta(days=n), time(), UTC))
    )
    return BudgetSetting(
        entity=entity,
        entity_id=entity_id,
        public_id=entity_id,
        name=None,
        limit=draw(st.sampled_from(["0", "1", "5", "20", "60", "200"]).map(Decimal)),
        duration=draw(st.sampled_from(DURATIONS)),
        reset_at=reset,
        created_at=created,
        owner=None,
        team=None,
    )


async def write_days(db: Database, day_states: list[str]) -> None:
    stored = [(BASE + timedelta(days=n), state) for n, state in enumerate(day_states) if state != "missing"]
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM usage_days")
        await conn.execute(
            "INSERT INTO usage_days (date, status, fetched_at, verified, fact_count, spend, api_requests,"
            " total_tokens) SELECT d, s, now(), v, 0, 0, 0, 0 FROM unnest(%s::date[], %s::text[], %s::bool[])"
            " AS t(d, s, v)",
            (
                [day for day, _ in stored],
                ["open" if state == "open" else "closed" for _, state in stored],
                [state != "unverified" for _, state in stored],
            ),
        )


def check_period(budget: BudgetSetting, start: date, end: date, as_of: date) -> None:
    """The period's shape, from the duration alone (the rule, stated again)."""
    duration = budget.duration
    assert start <= as_of <= end
    if duration is None:
        assert end == date(as_of.year, as_of.month, calendar.monthrange(as_of.year, as_of.month)[1])
        return
    if duration in UNTOLD:
        assert start == end == as_of
        return
    reset_day = budget.reset_at.date() if budget.reset_at else None
    if duration == "1mo" or (duration == "30d" and (reset_day is None or reset_day.day == 1)):
        assert (start.day, end) == (
            1,
            date(start.year, start.month, calendar.monthrange(start.year, start.month)[1]),
        )
        assert (start.year, start.month) == (as_of.year, as_of.month)
        return
    if duration == "2mo":
        assert start.day == 1
        assert (end + timedelta(days=1)).day == 1
        months = (end.year - start.year) * 12 + end.month - start.month + 1
        assert months == 2
        if reset_day is not None:
            assert ((reset_day.year - start.year) * 12 + reset_day.month - start.month) % 2 == 0
        return
    length = {"1d": 1, "7d": 7, "14d": 14, "30d": 30, "2w": 14}[duration]
    assert (end - start).days + 1 == length
    anchor = reset_day or (date(1970, 1, 5) if length % 7 == 0 else date(1970, 1, 1))
    assert (anchor - start).days % length == 0


@examples
@given(
    rows=st.lists(facts(), max_size=120, unique_by=lambda f: (f.date, f.api_key, f.model, f.provider)),
    day_states=st.lists(st.sampled_from(STATES), min_size=DAYS, max_size=DAYS),
    chosen=st.lists(budgets(), min_size=1, max_size=4),
    as_of_offset=st.integers(0, DAYS - 1),
    today_after=st.integers(0, 3),
)
async def test_budget_spend_rate_and_status_follow_the_facts(
    db: Database,
    rows: list[Fact],
    day_states: list[str],
    chosen: list[BudgetSetting],
    as_of_offset: int,
    today_after: int,
) -> None:
    await replace_facts(db, rows)
    await write_days(db, day_states)
    as_of = BASE + timedelta(days=as_of_offset)
    today = as_of + timedelta(days=today_after)
    found = await states(db, chosen, as_of, today)
    state_of = {BASE + timedelta(days=n): state for n, state in enumerate(day_states)}
    first_stored = min((d for d, s in state_of.items() if s != "missing"), default=as_of)
    for budget, got in zip(chosen, found, strict=True):
        period = got.period
        assert period == current_period(budget.duration, budget.reset_at, as_of, first_stored)
        check_period(budget, period.start, period.end, as_of)
        column = ENTITIES[budget.entity][0]
        row = await db.fetch_one(
            f"SELECT coalesce(sum(spend), 0) FROM usage_facts WHERE {column} = %s AND date BETWEEN %s AND %s",
            (budget.entity_id, period.start, as_of),
        )
        assert row is not None
        assert got.spend == row[0]

        def spent(day: date, budget: BudgetSetting = budget, column: str = column) -> Decimal:
            return sum(
                (f.spend for f in rows if f.date == day and getattr(f, column) == budget.entity_id),
                Decimal(0),
            )

        window = [as_of - timedelta(days=n) for n in range(RATE_LOOKBACK_DAYS + 1)]
        rate_days = [d for d in window if state_of.get(d) == "closed" and d < today][:RATE_DAYS]
        rate = sum((spent(d) for d in rate_days), Decimal(0)) / len(rate_days) if rate_days else Decimal(0)
        assert (got.rate_days, got.daily_rate) == (len(rate_days), rate)

        limit = budget.limit
        running, crossed = Decimal(0), None
        for n in range((as_of - period.start).days + 1):
            running += spent(period.start + timedelta(days=n))
            if crossed is None and running >= limit:
                crossed = period.start + timedelta(days=n)
        if limit == 0:
            assert (got.status, got.run_out) == (BudgetStatus.EXCEEDED, period.start)
        elif crossed is not None:
            assert (got.status, got.run_out) == (BudgetStatus.EXCEEDED, crossed)
            assert got.spend >= limit
        else:
            projected = as_of + timedelta(days=math.ceil((limit - got.spend) / rate)) if rate > 0 else None
            if projected is not None and projected <= period.end:
                assert (got.status, got.run_out) == (BudgetStatus.AT_RISK, projected)
            else:
                assert (got.status, got.run_out) == (BudgetStatus.OK, None)

        start = period.start
        if period.lifetime and budget.created_at is not None:
            start = max(start, budget.created_at.date())
        usable = all(
            state_of.get(start + timedelta(days=n)) in ("closed", "open")
            for n in range((as_of - start).days + 1)
        )
        expected = period.exact and usable
        if period.lifetime:
            expected = expected and budget.created_at is not None and budget.created_at.date() >= period.start
        assert got.complete is expected
        subday = budget.duration in UNTOLD
        if subday or (budget.duration is not None and budget.reset_at and budget.reset_at.hour):
            assert not got.complete


@pytest.mark.parametrize(
    ("entity", "entity_id"),
    [(BudgetEntity.API_KEY, KEYS[0]), (BudgetEntity.USER, "alice"), (BudgetEntity.TEAM, "team-a")],
)
async def test_spend_before_the_period_does_not_reach_the_limit(
    db: Database, entity: BudgetEntity, entity_id: str
) -> None:
    """A weekly budget (from Monday) whose limit is passed on Tuesday, after a big spend the week before:
    the earlier spend is read for the rate, never toward the limit."""
    monday = BASE + timedelta(days=21)  # BASE is a Monday
    rows = [
        spent_on(monday - timedelta(days=3), "40"),
        spent_on(monday, "10"),
        spent_on(monday + timedelta(days=1), "15"),
    ]
    await replace_facts(db, rows)
    await write_days(db, ["closed"] * DAYS)
    budget = BudgetSetting(entity, entity_id, entity_id, None, Decimal(20), "7d", None, None, None, None)
    as_of = monday + timedelta(days=2)
    [state] = await states(db, [budget], as_of, as_of)
    assert (state.period.start, state.spend, state.status, state.run_out) == (
        monday,
        Decimal(25),
        BudgetStatus.EXCEEDED,
        monday + timedelta(days=1),
    )


async def test_reaching_the_limit_exactly_is_exceeded_on_that_day(db: Database) -> None:
    day = BASE + timedelta(days=3)
    rows = [spent_on(day + timedelta(days=n), spend) for n, spend in enumerate(["0.5", "0.25", "0.25", "3"])]
    await replace_facts(db, rows)
    await write_days(db, ["closed"] * DAYS)
    budget = BudgetSetting(
        BudgetEntity.USER, "alice", "alice", None, Decimal(1), "1mo", None, None, None, None
    )
    [state] = await states(db, [budget], day + timedelta(days=3), day + timedelta(days=4))
    assert (state.spend, state.status, state.run_out) == (
        Decimal(4),
        BudgetStatus.EXCEEDED,
        day + timedelta(days=2),
    )
