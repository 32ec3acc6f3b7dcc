"""Anomalies (issue 17 item 3): an entity-day is reported exactly when the stated rule holds on the facts.

The rule is computed here again from the generated rows alone, in plain Python: the closed, verified
days among the window before each day, zeros for spend on days without usage, failure rates only on
days with enough requests, the median, the median and mean absolute deviations, the floors. Days that
are open, unverified or not stored carry facts too, so that using them as inputs would show.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from statistics import median

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.facts_data import KEYS, MODELS, PROVIDERS, TEAMS, USERS, Fact, replace_facts
from usage_gateway.datasources.db import Database
from usage_gateway.datasources.facts.vocabulary import Dimension, FactFilter
from usage_gateway.datasources.insights.anomalies import (
    ANOMALY_DIMENSIONS,
    Anomaly,
    AnomalyMetric,
    Rule,
    find_anomalies,
)

BASE = date(2025, 3, 3)
DAYS = 30
STALE = "unverified"
STATES = ("usable", "usable", "usable", "usable", "open", STALE, "missing")

examples = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await Database.open(database_url, max_size=2)
    yield database
    await database.close()


# Spends mostly small with some spikes; request counts around the rule's minimum, failures up to all.
spends = st.sampled_from(["0", "0.25", "1", "1", "2", "3", "3.5", "12", "60", "250.125"]).map(Decimal)


@st.composite
def facts(draw: st.DrawFn) -> Fact:
    requests = draw(st.integers(0, 12))
    failed = draw(st.integers(0, requests))
    return Fact(
        date=BASE + timedelta(days=draw(st.integers(0, DAYS - 1))),
        api_key=draw(st.sampled_from(KEYS[:3])),
        litellm_user_id="u1",
        model=draw(st.sampled_from(MODELS[:2])),
        provider=draw(st.sampled_from(PROVIDERS[:2])),
        user_id=draw(st.sampled_from(USERS[:3])),
        spend=draw(spends),
        prompt_tokens=0,
        completion_tokens=0,
        cache_read_input_tokens=0,
        cache_creation_input_tokens=0,
        total_tokens=0,
        api_requests=requests,
        successful_requests=requests - failed,
        failed_requests=failed,
        total_response_time_ms=0,
        timed_requests=0,
        team_id=draw(st.sampled_from(TEAMS)),
    )


# Hypothesis favours short lists; an explicit size gives the days enough usage to have a baseline.
fact_lists = st.integers(0, 200).flatmap(
    lambda size: st.lists(
        facts(),
        min_size=size,
        max_size=size,
        unique_by=lambda f: (f.date, f.api_key, f.litellm_user_id, f.model, f.provider),
    )
)
rules = st.builds(
    Rule,
    window_days=st.integers(3, 8),
    k=st.sampled_from([1.0, 2.0, 5.0]),
    min_baseline_days=st.integers(1, 5),
    min_requests=st.integers(1, 10),
    spend_floor=st.sampled_from([0.1, 0.5, 1.0]),
    rate_floor=st.sampled_from([0.01, 0.05]),
    relative_floor=st.sampled_from([0.0, 0.01, 0.5]),
    mean_deviation_floor=st.sampled_from([0.0, 0.5, 1.0]),
)


async def store(db: Database, rows: list[Fact], states: list[str]) -> None:
    await replace_facts(db, rows)
    now = datetime.now(UTC)
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM usage_days")
        for offset, state in enumerate(states):
            if state == "missing":
                continue
            await conn.execute(
                "INSERT INTO usage_days (date, status, fetched_at, verified, fact_count, spend, api_requests,"
                " total_tokens) VALUES (%s, %s, %s, %s, 0, 0, 0, 0)",
                (
                    BASE + timedelta(days=offset),
                    "open" if state == "open" else "closed",
                    now,
                    state != "unverified",
                ),
            )


def expected(
    rows: list[Fact],
    states: list[str],
    dimension: Dimension,
    f: FactFilter,
    metrics: tuple[AnomalyMetric, ...],
    min_spend: Decimal | None,
    rule: Rule,
) -> list[tuple[str, date, AnomalyMetric, float, float, float, int]]:
    """The rule of datasources/insights/anomalies.py, from the rows: (key, date, metric, value, baseline,
    spread, baseline days) of every anomaly."""
    usable = {BASE + timedelta(days=n) for n, state in enumerate(states) if state == "usable"}
    sums: dict[tuple[str, date], list[Decimal | int]] = {}
    for fact in rows:
        if fact.matches(replace(f, date_from=date.min, date_to=date.max)):
            total = sums.setdefault((fact.value(dimension), fact.date), [Decimal(0), 0, 0])
            total[0] += fact.spend
            total[1] += fact.api_requests
            total[2] += fact.failed_requests
    found = []
    for (key, day), (spend, requests, failed) in sums.items():
        if day not in usable or not f.date_from <= day <= f.date_to:
            continue
        if min_spend is not None and spend < min_spend:
            continue
        window = [day - timedelta(days=n) for n in range(rule.window_days, 0, -1)]
        window = [b for b in window if b in usable]
        for metric in metrics:
            floor = rule.spend_floor if metric is AnomalyMetric.SPEND else rule.rate_floor
            if metric is AnomalyMetric.SPEND:
                value = float(Decimal(spend))
                inputs = [float(sums[key, b][0]) if (key, b) in sums else 0.0 for b in window]
            else:
                if int(requests) < rule.min_requests:
                    continue
                value = int(failed) / int(requests)
                inputs = [
                    int(sums[key, b][2]) / int(sums[key, b][1])
                    for b in window
                    if (key, b) in sums and int(sums[key, b][1]) >= rule.min_requests
                ]
            if len(inputs) < rule.min_baseline_days:
                continue
            baseline = median(inputs)
            mad = median(abs(x - baseline) for x in inputs)
            mean_deviation = math.fsum(abs(x - baseline) for x in inputs) / len(inputs)
            spread = max(
                mad, rule.mean_deviation_floor * mean_deviation, rule.relative_floor * baseline, floor
            )
            if value > baseline + rule.k * spread:
                found.append((key, day, metric, value, baseline, spread, len(inputs)))
    return found


def observed(found: list[Anomaly]) -> list[tuple[str, date, AnomalyMetric, float, float, float, int]]:
    return [(a.key, a.date, a.metric, a.value, a.baseline, a.spread, a.baseline_days) for a in found]


@given(
    rows=fact_lists,
    states=st.lists(st.sampled_from(STATES), min_size=DAYS, max_size=DAYS),
    dimension=st.sampled_from(ANOMALY_DIMENSIONS),
    start=st.integers(0, DAYS - 1),
    length=st.integers(1, DAYS),
    metrics=st.sampled_from([tuple(AnomalyMetric), (AnomalyMetric.SPEND,), (AnomalyMetric.FAILURE_RATE,)]),
    min_spend=st.sampled_from([None, Decimal("3"), Decimal("100")]),
    models=st.sampled_from([None, (MODELS[0],)]),
    rule=rules,
)
@examples
async def test_an_anomaly_appears_exactly_when_the_rule_holds(
    db: Database,
    rows: list[Fact],
    states: list[str],
    dimension: Dimension,
    start: int,
    length: int,
    metrics: tuple[AnomalyMetric, ...],
    min_spend: Decimal | None,
    models: tuple[str, ...] | None,
    rule: Rule,
) -> None:
    await store(db, rows, states)
    first = BASE + timedelta(days=start)
    f = FactFilter(first, first + timedelta(days=length - 1), models=models)
    found = await find_anomalies(db, dimension, f, metrics=metrics, min_spend=min_spend, rule=rule)
    want = expected(rows, states, dimension, f, metrics, min_spend, rule)
    event(f"anomalies: {min(len(want), 3)}")
    assert sorted(observed(found)) == sorted(want)
    for anomaly in found:
        assert anomaly.threshold == anomaly.baseline + rule.k * anomaly.spread
        assert anomaly.value > anomaly.threshold
        assert anomaly.size == pytest.approx((anomaly.value - anomaly.baseline) / anomaly.spread)
    assert [a.size for a in found] == sorted((a.size for a in found), reverse=True)


async def test_a_spike_over_a_steady_history_is_found_with_its_baseline(db: Database) -> None:
    """The default rule on a user who spends 10 to 12 a day for four weeks, then 100: one anomaly, whose
    baseline and spread are the history's median and MAD; an open day's spike is never reported."""
    history = [Decimal(10 + n % 3) for n in range(28)]  # 10, 11, 12, …: median 11, MAD 1
    rows = [fact(BASE + timedelta(days=n), spend) for n, spend in enumerate(history)]
    spike, open_spike = BASE + timedelta(days=28), BASE + timedelta(days=29)
    rows += [fact(spike, Decimal(100)), fact(open_spike, Decimal(500))]
    await store(db, rows, ["usable"] * 29 + ["open"])
    found = await find_anomalies(db, Dimension.USER, FactFilter(spike, open_spike))
    assert [(a.key, a.date, a.metric) for a in found] == [("alice", spike, AnomalyMetric.SPEND)]
    (anomaly,) = found
    assert (anomaly.baseline, anomaly.mad, anomaly.baseline_days) == (11.0, 1.0, 28)
    assert (anomaly.spread, anomaly.threshold, anomaly.size) == (1.0, 16.0, 89.0)
    assert anomaly.spend == Decimal(100)
    # Under minSpend above the day's spend, it is left out.
    assert await find_anomalies(db, Dimension.USER, FactFilter(spike, spike), min_spend=Decimal(101)) == []


def fact(day: date, spend: Decimal) -> Fact:
    return Fact(
        date=day,
        api_key=KEYS[0],
        litellm_user_id="u1",
        model=MODELS[0],
        provider=PROVIDERS[0],
        user_id="alice",
        spend=spend,
        prompt_tokens=0,
        completion_tokens=0,
        cache_read_input_tokens=0,
        cache_creation_input_tokens=0,
        total_tokens=0,
        api_requests=100,
        successful_requests=100,
        failed_requests=0,
        total_response_time_ms=0,
        timed_requests=0,
    )
