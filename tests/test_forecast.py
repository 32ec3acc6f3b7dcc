"""``Usage.forecast`` (issue 17, item 2): a weekday-aware mean of the last 28 closed, verified days.

- A synthetic series with a known weekly pattern (weekdays 100, weekends 20, small noise), stored as facts
  in Postgres: the forecast recovers the pattern inside each day's band, and the realised month (and the
  next 30 days) fall inside the total's band.
- For random facts and random day states: the inputs are the SQL sums of the matching facts per day, and
  open, unverified or missing days never change the forecast, however wild their facts.
- Through the GraphQL API, reading the LiteLLM-compatible server: the admin's and a ``user``'s forecasts
  equal the method applied to the rows (the user's to their own rows only); few inputs carry a warning;
  a bad argument is BAD_USER_INPUT before anything is fetched.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from statistics import fmean
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from bench.forecast_backtest import CUTS, months, summary_table
from bench.forecast_backtest import run as backtest
from bench.reference_data import ReferenceData, fill_gateway
from bench.reference_data import Scale as BenchScale
from tests.api_client import DirectoryKey, DirectoryUser, open_gateway, seed_directory
from tests.facts_data import KEYS, Fact, facts_lists, filters, make_fact, replace_facts
from tests.gateway_harness import clock_at
from tests.litellm_rows import make_row
from tests.usage_from_rows import litellm_gateway
from usage_gateway.datasources.db import Database, count_statements
from usage_gateway.datasources.facts.aggregates import FactFilter
from usage_gateway.datasources.insights.forecast import (
    LOOKBACK_DAYS,
    WINDOW_DAYS,
    DaySum,
    ForecastResult,
    Horizon,
    day_sums,
    forecast,
    project,
    window,
)
from usage_gateway.devtools.litellm_compat import LiteLLMStore, running_litellm
from usage_gateway.resolvers.viewer import Role

# --- Storing days ---------------------------------------------------------------------------------------

State = str  # "closed" (closed and verified), "open", "unverified" (closed, not verified), "missing"
STATES = ("closed", "open", "unverified", "missing")


async def store(db: Database, facts: Sequence[Fact], states: dict[date, State]) -> None:
    """The facts, and a usage_days row per day in the state given (none for a missing day)."""
    await replace_facts(db, facts)
    now = datetime.now(UTC)
    await db.execute("DELETE FROM usage_days")
    rows = [
        (day, "open" if state == "open" else "closed", state != "unverified")
        for day, state in states.items()
        if state != "missing"
    ]
    if rows:
        await db.execute(
            "INSERT INTO usage_days (date, status, fetched_at, verified, fact_count, spend, api_requests,"
            " total_tokens) SELECT d, s, %s, v, 0, 0, 0, 0 FROM unnest(%s::date[], %s::text[], %s::bool[])"
            " AS r (d, s, v)",
            (now, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]),
        )


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await Database.open(database_url, max_size=2)
    try:
        yield database
    finally:
        await database.close()


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


# --- A known weekly pattern -----------------------------------------------------------------------------

PATTERN_END = date(2026, 11, 12)  # a Thursday: the month has 18 days left to forecast
NOISE = 2.0  # spend's standard deviation a day (requests: 10×)


def pattern(day: date) -> float:
    return 20.0 if day.weekday() >= 5 else 100.0


def synthetic(
    first: date, last: date, seed: int = 17, growth: float = 1.0
) -> dict[date, tuple[Decimal, int]]:
    """Each day's spend and requests: the pattern (times ``growth`` every 28 days from ``first``) plus
    small Gaussian noise."""
    rng = random.Random(seed)
    series = {}
    for day in days(first, last):
        level = pattern(day) * growth ** ((day - first).days / 28)
        spend = Decimal(str(round(level + rng.gauss(0, NOISE), 6)))
        requests = round(10 * level + rng.gauss(0, 10 * NOISE))
        series[day] = (spend, requests)
    return series


def as_facts(series: dict[date, tuple[Decimal, int]]) -> list[Fact]:
    """Each day's numbers split over two users (70 % / 30 %), so a day's sum is a sum of facts."""
    facts = []
    for day, (spend, requests) in series.items():
        alice_spend = (spend * Decimal("0.7")).quantize(Decimal("0.000001"))
        alice_requests = requests * 7 // 10
        facts.append(make_fact(day, spend=alice_spend, requests=alice_requests))
        facts.append(
            make_fact(
                day,
                user_id="bob",
                api_key=KEYS[1],
                spend=spend - alice_spend,
                requests=requests - alice_requests,
            )
        )
    return facts


def inside(value: float, low: float, high: float) -> bool:
    return low <= value <= high


async def test_a_weekly_pattern_is_recovered_within_the_band(db: Database) -> None:
    first, month_last = PATTERN_END - timedelta(days=60), date(2026, 12, 12)
    series = synthetic(first, month_last)
    known = {day: value for day, value in series.items() if day <= PATTERN_END}
    await store(db, as_facts(known), dict.fromkeys(known, "closed"))
    f = FactFilter(date(2026, 11, 1), PATTERN_END)

    month = await forecast(db, f, Horizon.MONTH_END, today=PATTERN_END + timedelta(days=1))
    assert (month.input_days, month.input_from, month.input_to) == (
        WINDOW_DAYS,
        PATTERN_END - timedelta(days=WINDOW_DAYS - 1),
        PATTERN_END,
    )
    assert (month.date_from, month.date_to) == (PATTERN_END + timedelta(days=1), date(2026, 11, 30))
    assert [p.date for p in month.points] == days(month.date_from, month.date_to)
    for point in month.points:  # the known pattern, inside each day's band, and the band is narrow
        assert inside(pattern(point.date), point.spend.low, point.spend.high), point
        assert inside(10 * pattern(point.date), point.requests.low, point.requests.high), point
        assert point.spend.high - point.spend.low < 8 * NOISE
    in_month = [day for day in series if day.month == 11]
    assert month.actual_spend == sum((series[day][0] for day in in_month if day <= PATTERN_END), Decimal(0))
    realised = float(sum((series[day][0] for day in in_month), Decimal(0)))
    assert inside(realised, month.spend.low, month.spend.high), (realised, month.spend)
    assert abs(month.spend.value - realised) / realised < 0.02
    realised_requests = sum(series[day][1] for day in in_month)
    assert inside(realised_requests, month.requests.low, month.requests.high)

    ahead = await forecast(db, f, Horizon.DAYS_30, today=PATTERN_END + timedelta(days=1))
    next_30 = days(PATTERN_END + timedelta(days=1), PATTERN_END + timedelta(days=30))
    assert (ahead.date_from, ahead.date_to, ahead.actual_spend) == (next_30[0], next_30[-1], Decimal(0))
    realised_30 = float(sum((series[day][0] for day in next_30), Decimal(0)))
    assert inside(realised_30, ahead.spend.low, ahead.spend.high), (realised_30, ahead.spend)
    expected = sum(pattern(day) for day in next_30)
    assert abs(ahead.spend.value - expected) / expected < 0.02


async def test_growth_is_measured_and_carried_forward(db: Database) -> None:
    """A series growing 10 % every 28 days: q is about 1.1, and the month's realised total falls inside the
    band; without the 28 days before the inputs there is no growth, and the forecast falls short."""
    first = PATTERN_END - timedelta(days=70)
    series = synthetic(first, date(2026, 11, 30), growth=1.1)
    known = {day: value for day, value in series.items() if day <= PATTERN_END}
    f = FactFilter(date(2026, 11, 1), PATTERN_END)
    realised = float(sum((spend for day, (spend, _) in series.items() if day.month == 11), Decimal(0)))

    await store(db, as_facts(known), dict.fromkeys(known, "closed"))
    grown = await forecast(db, f, Horizon.MONTH_END, today=PATTERN_END + timedelta(days=1))
    assert grown.growth == pytest.approx(1.1, abs=0.03)
    assert f"growth ×{grown.growth:.3f}" in grown.method
    assert inside(realised, grown.spend.low, grown.spend.high), (realised, grown.spend)
    assert abs(grown.spend.value - realised) / realised < 0.02

    states: dict[date, State] = dict.fromkeys(known, "closed")
    states[PATTERN_END - timedelta(days=40)] = "unverified"  # a day of the 28 before the inputs
    await store(db, as_facts(known), states)
    flat = await forecast(db, f, Horizon.MONTH_END, today=PATTERN_END + timedelta(days=1))
    assert flat.growth is None
    assert "no growth" in flat.method
    assert flat.input_days == WINDOW_DAYS
    assert flat.spend.value < grown.spend.value


async def test_a_month_that_is_over_has_nothing_left_to_forecast(db: Database) -> None:
    series = synthetic(date(2026, 9, 1), date(2026, 10, 31))
    await store(db, as_facts(series), dict.fromkeys(series, "closed"))
    result = await forecast(
        db, FactFilter(date(2026, 10, 1), date(2026, 10, 31)), Horizon.MONTH_END, date(2026, 12, 1)
    )
    assert result.points == ()
    assert result.date_from > result.date_to
    october = sum((spend for day, (spend, _) in series.items() if day.month == 10), Decimal(0))
    assert result.actual_spend == october
    assert result.spend.value == result.spend.low == result.spend.high == pytest.approx(float(october))


# --- Inputs are SQL sums; unusable days never count -----------------------------------------------------


@dataclass(frozen=True)
class Case:
    facts: list[Fact]
    states: dict[date, State]
    f: FactFilter
    today: date
    wild: list[Fact]  # facts on days that are not inputs, to be added

    def __repr__(self) -> str:
        states = {d.isoformat(): s for d, s in sorted(self.states.items()) if s != "closed"}
        return f"Case(f={self.f}, today={self.today}, not closed={states}, facts={len(self.facts)})"


@st.composite
def cases(draw: st.DrawFn) -> Case:
    facts = draw(facts_lists)
    f = draw(filters())
    span = {fact.date for fact in facts} | {f.date_from, f.date_to}
    first, last = min(span) - timedelta(days=3), max(span) + timedelta(days=3)
    states = {day: draw(st.sampled_from(STATES)) for day in days(first, last)}
    today = draw(st.sampled_from(days(first, last)))
    unusable = [day for day, state in states.items() if state != "closed"]
    wild = (
        [
            replace(fact, date=day, spend=Decimal(10**6), api_requests=10**7)
            for day, fact in zip(
                unusable, draw(st.lists(st.sampled_from(facts), max_size=len(unusable))), strict=False
            )
            if (fact.api_key, fact.litellm_user_id, fact.model, fact.provider, day)
            not in {(g.api_key, g.litellm_user_id, g.model, g.provider, g.date) for g in facts}
        ]
        if facts
        else []
    )
    return Case(facts, states, f, today, wild)


def py_day_sums(facts: Sequence[Fact], f: FactFilter, states: dict[date, State]) -> list[DaySum]:
    """What the window's days must hold, computed here from the facts."""
    first, last = window(f, f.date_to)
    result = []
    for day in days(first, last):
        matching = [
            fact
            for fact in facts
            if fact.date == day and fact.matches(replace(f, date_from=day, date_to=day))
        ]
        result.append(
            DaySum(
                day,
                sum((fact.spend for fact in matching), Decimal(0)),
                sum(fact.api_requests for fact in matching),
                states.get(day) == "closed",
            )
        )
    return result


def same_projection(a: ForecastResult, b: ForecastResult) -> bool:
    return (a.input_from, a.input_to, a.input_days, a.date_from, a.date_to, a.points) == (
        b.input_from,
        b.input_to,
        b.input_days,
        b.date_from,
        b.date_to,
        b.points,
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases())
async def test_inputs_are_sql_sums_and_unusable_days_never_count(db: Database, case: Case) -> None:
    note(repr(case))
    await store(db, case.facts, case.states)
    f = replace(case.f, date_to=min(case.f.date_to, case.today))
    first, last = window(f, case.today)
    assert await day_sums(db, f, first, last) == py_day_sums(case.facts, f, case.states)

    before = {h: await forecast(db, case.f, h, case.today) for h in Horizon}
    inputs = [day for day in days(first, last) if case.states.get(day) == "closed"][-WINDOW_DAYS:]
    assert before[Horizon.DAYS_30].input_days == len(inputs)
    if inputs:
        assert (before[Horizon.DAYS_30].input_from, before[Horizon.DAYS_30].input_to) == (
            inputs[0],
            inputs[-1],
        )
    await store(db, [*case.facts, *case.wild], case.states)
    after = {h: await forecast(db, case.f, h, case.today) for h in Horizon}
    assert before[Horizon.DAYS_30] == after[Horizon.DAYS_30]
    assert same_projection(before[Horizon.MONTH_END], after[Horizon.MONTH_END])
    # The month so far counts open days as they stand: only the wild facts of its days add to it.
    month = after[Horizon.MONTH_END]
    end = min(case.f.date_to, case.today)
    added = sum(
        (
            w.spend
            for w in case.wild
            if end.replace(day=1) <= w.date <= end
            and w.matches(replace(case.f, date_from=w.date, date_to=w.date))
        ),
        Decimal(0),
    )
    assert month.actual_spend == before[Horizon.MONTH_END].actual_spend + added


def test_a_weekday_without_inputs_takes_the_mean_of_all() -> None:
    end = date(2026, 11, 12)
    sums = [
        DaySum(day, Decimal(day.day), 1, day.weekday() != 0) for day in days(end - timedelta(days=55), end)
    ]
    result = project(sums, Horizon.DAYS_30, end)
    inputs = [s for s in sums if s.usable][-WINDOW_DAYS:]
    assert result.input_days == WINDOW_DAYS
    assert all(s.date.weekday() != 0 for s in inputs)
    monday = next(p for p in result.points if p.date.weekday() == 0)
    assert monday.spend.value == pytest.approx(fmean(float(s.spend) for s in inputs))


# --- Through the API ------------------------------------------------------------------------------------

API_END = date(2026, 11, 12)
API_DAYS = tuple(days(API_END - timedelta(days=34), API_END))
ALICE_KEY, BOB_KEY = "a" * 64, "b" * 64
QUERY = """
query ($filter: UsageFilter!, $horizon: ForecastHorizon!) {
  usage(filter: $filter) {
    forecast(horizon: $horizon) {
      horizon method inputFrom inputTo inputDays from to actualSpend actualSpendExact
      spend spendLow spendHigh requests requestsLow requestsHigh
      points { date spend spendLow spendHigh requests requestsLow requestsHigh }
    }
  }
}"""


def api_rows() -> list[dict[str, Any]]:
    """Alice spends on the weekly pattern, Bob ten times as much on weekends only."""
    rows = []
    for day in API_DAYS:
        weekend = day.weekday() >= 5
        text = day.isoformat()
        rows.append(
            make_row(text, "alice", ALICE_KEY, "gpt-4o", "openai", spend=pattern(day), successful_requests=3)
        )
        rows.append(
            make_row(
                text,
                "bob",
                BOB_KEY,
                "gpt-4o",
                "openai",
                spend=200.0 if weekend else 1.0,
                successful_requests=1,
            )
        )
    return rows


def method_on(rows: Sequence[dict[str, Any]], horizon: Horizon, today: date) -> ForecastResult:
    """The forecast the method gives on these rows' daily sums: the days a forecast makes present are its
    whole lookback up to today, all but today closed (days LiteLLM has no rows for are closed zeros)."""
    end = today
    sums = []
    for day in days(end - timedelta(days=LOOKBACK_DAYS - 1), end):
        own = [row for row in rows if row["date"] == day.isoformat()]
        sums.append(
            DaySum(
                day,
                sum((Decimal(repr(float(row["spend"]))) for row in own), Decimal(0)),
                sum(int(row["api_requests"]) for row in own),
                day < end,
            )
        )
    return project(sums, horizon, end)


def approx(result: ForecastResult) -> dict[str, Any]:
    return {
        "inputFrom": result.input_from.isoformat(),
        "inputTo": result.input_to.isoformat(),
        "inputDays": result.input_days,
        "from": result.date_from.isoformat(),
        "to": result.date_to.isoformat(),
        "spend": pytest.approx(result.spend.value),
        "spendLow": pytest.approx(result.spend.low),
        "spendHigh": pytest.approx(result.spend.high),
        "requests": pytest.approx(result.requests.value),
        "points": [
            {
                "date": p.date.isoformat(),
                "spend": pytest.approx(p.spend.value),
                "spendHigh": pytest.approx(p.spend.high),
            }
            for p in result.points
        ],
    }


def shown(answer: dict[str, Any]) -> dict[str, Any]:
    keys = ("inputFrom", "inputTo", "inputDays", "from", "to", "spend", "spendLow", "spendHigh", "requests")
    return {
        **{key: answer[key] for key in keys},
        "points": [{k: p[k] for k in ("date", "spend", "spendHigh")} for p in answer["points"]],
    }


@pytest.fixture(scope="module")
def litellm() -> Iterator[tuple[LiteLLMStore, str]]:
    store = LiteLLMStore(keys=[], users=[], rows=api_rows())
    with running_litellm(store) as url:
        yield store, url


async def test_the_api_forecasts_each_viewer_s_own_usage(
    litellm: tuple[LiteLLMStore, str], database_url: str, redis_url: str
) -> None:
    _store, url = litellm
    today = API_END + timedelta(days=1)
    clock = clock_at(datetime.combine(today, time(12), UTC))  # every day but today closed
    async with litellm_gateway(database_url, redis_url, url, clock=clock) as gw:
        await seed_directory(
            gw.db,
            [DirectoryUser("alice"), DirectoryUser("bob")],
            [DirectoryKey("key-a", ALICE_KEY, "alice"), DirectoryKey("key-b", BOB_KEY, "bob")],
        )
        month: dict[str, Any] = {"filter": {"from": "2026-11-01", "to": "2026-11-30"}, "horizon": "MONTH_END"}
        # The input window starts before `from`: the forecast makes its days present itself.
        body = await gw.query(QUERY, month)
        assert "errors" not in body, body
        answer = body["data"]["usage"]["forecast"]
        rows = api_rows()
        expected = method_on(rows, Horizon.MONTH_END, today)
        assert shown(answer) == approx(expected)
        assert answer["horizon"] == "MONTH_END"
        assert "weekday-aware mean" in answer["method"]
        assert answer["inputTo"] == API_END.isoformat()
        assert answer["inputDays"] == WINDOW_DAYS
        november = sum(
            (Decimal(repr(float(r["spend"]))) for r in rows if r["date"].startswith("2026-11")), Decimal(0)
        )
        assert Decimal(answer["actualSpendExact"]) == november
        assert "warnings" not in body.get("extensions", {})

        alice = gw.token("alice", Role.USER)
        ahead = {**month, "horizon": "DAYS_30"}
        own = (await gw.data(QUERY, ahead, token=alice))["usage"]["forecast"]
        mine = [row for row in rows if row["user_id"] == "alice"]
        assert shown(own) == approx(method_on(mine, Horizon.DAYS_30, today))
        assert own["actualSpend"] == 0
        everyone = (await gw.data(QUERY, ahead))["usage"]["forecast"]
        assert own["spend"] < everyone["spend"]  # Bob's weekends are not Alice's
        refused = await gw.query(
            QUERY, {**ahead, "filter": {**month["filter"], "userIds": ["bob"]}}, token=alice
        )
        assert refused["data"] is None
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_few_inputs_are_said(database_url: str) -> None:
    """Ten closed days, the others missing: the forecast rests on those ten and says so."""
    end = date(2026, 11, 12)
    stored = days(end - timedelta(days=9), end)
    series = synthetic(stored[0], end)
    moment = datetime.combine(end + timedelta(days=1), time(12), UTC)
    async with open_gateway(database_url, clock=lambda: moment) as gw:
        await store(gw.db, as_facts(series), dict.fromkeys(stored, "closed"))
        variables = {"filter": {"from": "2026-11-01", "to": "2026-11-30"}, "horizon": "DAYS_30"}
        body = await gw.query(QUERY, variables)
    answer = body["data"]["usage"]["forecast"]
    assert (answer["inputDays"], answer["inputFrom"], answer["inputTo"]) == (
        10,
        stored[0].isoformat(),
        end.isoformat(),
    )
    assert [w["code"] for w in body["extensions"]["warnings"]] == ["FEW_FORECAST_DAYS"]
    # The missing days it looked at are reported as such, not taken for zeros.
    assert {e["extensions"]["code"] for e in body["errors"]} == {"UPSTREAM_UNAVAILABLE"}


@pytest.mark.parametrize(
    ("argument", "filter_extra"),
    [("horizon: WEEK", {}), ("horizon: MONTH_END", {"tag": ""}), ("horizon: DAYS_30", {"to": "2026-10-01"})],
)
async def test_bad_input_is_refused_before_anything_runs(
    database_url: str, argument: str, filter_extra: dict[str, Any]
) -> None:
    store = LiteLLMStore(keys=[], users=[], rows=api_rows())
    with running_litellm(store) as url:
        async with open_gateway(database_url, litellm_url=url) as gw:
            query = (
                "query ($filter: UsageFilter!) { usage(filter: $filter) {"
                f" forecast({argument}) {{ spend }} }} }}"
            )
            variables = {"filter": {"from": "2026-11-01", "to": "2026-11-30", **filter_extra}}
            with count_statements() as counter:
                body = await gw.query(query, variables)
            assert body["data"] is None
            assert {e["extensions"]["code"] for e in body["errors"]} == {"BAD_USER_INPUT"}, body
            assert store.requests_for("/user/daily/activity") == []
            assert counter.count == 0


async def test_a_tag_filter_reads_the_tag_s_facts_and_days(db: Database) -> None:
    """Under a tag filter the daily sums are the tag's facts, and the days' states are the tag days'."""
    end = date(2026, 11, 12)
    window_days = days(end - timedelta(days=9), end)
    now = datetime.now(UTC)
    for n, day in enumerate(window_days):
        for tag, spend in (("team:red", 10 + n), ("team:blue", 1000)):
            await db.execute(
                "INSERT INTO tag_facts (date, tag, api_key, model, provider, spend, prompt_tokens,"
                " completion_tokens, cache_read_input_tokens, cache_creation_input_tokens, total_tokens,"
                " api_requests, successful_requests, failed_requests, total_response_time_ms, timed_requests)"
                " VALUES (%s, %s, %s, 'gpt-4o', 'openai', %s, 0, 0, 0, 0, 0, 2, 2, 0, 0, 0)",
                (day, tag, KEYS[0], spend),
            )
        verified = n != 3  # one tag day did not verify: not an input
        await db.execute(
            "INSERT INTO tag_days (date, status, fetched_at, verified, fact_count, spend, api_requests,"
            " total_tokens) VALUES (%s, 'closed', %s, %s, 2, 0, 0, 0)",
            (day, now, verified),
        )
    await store(db, [], {})  # no usage days at all: they do not matter under a tag
    f = FactFilter(window_days[0], end, tags=("team:red",))
    first, last = window(f, end)
    sums = await day_sums(db, f, first, last)
    held = {s.date: s for s in sums if s.date in window_days}
    assert [held[day].spend for day in window_days] == [Decimal(10 + n) for n in range(len(window_days))]
    assert [held[day].usable for day in window_days] == [n != 3 for n in range(len(window_days))]
    result = await forecast(db, f, Horizon.DAYS_30, end + timedelta(days=1))
    assert result.input_days == len(window_days) - 1


async def test_the_backtest_runs_end_to_end(database_url: str, redis_url: str) -> None:
    """bench/forecast_backtest.py on a tiny reference data set: a trial per month and cut-off, each on a
    full window, its actual the month's facts."""
    scale = BenchScale(users=30, keys=60, models=10, days=92)
    fill_gateway(database_url, ReferenceData(scale))
    found, times = await backtest(scale, database_url, redis_url)
    assert len(times) == 7
    expected = months(scale.first_day, scale.last_day)
    assert [m.isoformat() for m in expected] == ["2026-09-01", "2026-10-01"]
    assert [(t.month, t.cut) for t in found] == [(m, c) for m in expected for c in CUTS]
    db = await Database.open(database_url, max_size=1)
    try:
        for trial in found:
            last = (trial.month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
            row = await db.fetch_one(
                "SELECT sum(spend) FROM usage_facts WHERE date BETWEEN %s AND %s", (trial.month, last)
            )
            assert row is not None
            assert trial.actual == pytest.approx(float(row[0]))
            assert trial.input_days == WINDOW_DAYS
            assert trial.low <= trial.forecast <= trial.high
    finally:
        await db.close()
    assert summary_table(found, "smoke").row_count == len(CUTS)
