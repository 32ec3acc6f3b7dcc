"""Anomalies: days on which an entity's spend or failure rate left its own rolling baseline.

The rule, for an entity of the dimension (an attributed user, a key bucket, a model, a team on the day),
over the facts matching the filter, with :data:`RULE`'s numbers:

- Only **closed, verified** days (``usage_days``: status ``closed`` and ``verified``) are ever inputs or
  reported: open days (today, recent days), unverified days and days not stored are skipped.
- A day D of the range is checked against its **baseline days**: the closed, verified days among the
  ``window_days`` (28) days before it, D-28 … D-1 (so a baseline may look back before ``from``).
- **SPEND**: the value is the entity's spend on D; on each baseline day its spend, 0 when it had none.
- **FAILURE_RATE**: the value is failed / requests on D, checked only when the entity made at least
  ``min_requests`` (20) requests on D; its baseline days are those of the baseline days on which it made
  at least as many.
- ``baseline`` = the median of the baseline values; ``mad`` = the median of their absolute deviations from
  it; ``spread`` = the largest of ``mad``, the mean of those absolute deviations (an entity idle on most
  days has a median and a MAD of 0: without it, every active day would be flagged), ``relative_floor``
  (1 %) of the baseline, and an absolute floor ($1 of spend, or 1 percentage point of failure rate, so
  that a flat history does not flag every cent); ``threshold`` = baseline + ``k`` (5) × spread.
- D is an anomaly when there are at least ``min_baseline_days`` (14) baseline values and the value is
  above the threshold; its ``size`` is (value − baseline) / spread (the spread is never 0).

Sums are exact (``numeric``); the median, deviations and comparisons are in double precision, on the
doubles nearest to the exact sums; spends are never negative. One SQL statement reads the day statuses,
one the daily sums per entity, only of the entities with a day in the range that could pass the
threshold at all (the value over ``k`` × the absolute floor); Python computes the medians over those
series.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from psycopg import sql

from usage_gateway.datasources.db import Database
from usage_gateway.datasources.facts.aggregates import source_for
from usage_gateway.datasources.facts.grain import filter_clause
from usage_gateway.datasources.facts.vocabulary import Dimension, FactFilter

# The dimensions anomalies are found for (a provider is not an entity anyone budgets or owns).
ANOMALY_DIMENSIONS = (Dimension.USER, Dimension.API_KEY, Dimension.MODEL, Dimension.TEAM)
# The day rollups holding one row per day and entity of a dimension (migrations 0004, 0013): read
# as they are, without grouping again.
_TRUE = sql.SQL("true")
_DAY_ROLLUPS = {
    Dimension.USER: sql.Identifier("usage_user_days"),
    Dimension.TEAM: sql.Identifier("usage_team_days"),
}


class AnomalyMetric(StrEnum):
    SPEND = "spend"
    FAILURE_RATE = "failure_rate"


@dataclass(frozen=True)
class Rule:
    """The numbers of the rule in the module docstring."""

    window_days: int = 28
    k: float = 5.0
    min_baseline_days: int = 14
    min_requests: int = 20  # a failure rate counts only on days with at least this many requests
    spend_floor: float = 1.0  # the least spread of spend, in the facts' currency
    rate_floor: float = 0.01  # the least spread of a failure rate (1 percentage point)
    relative_floor: float = 0.01  # the least spread, as a share of the baseline
    # The least spread, as a share of the mean absolute deviation from the baseline: an entity idle on
    # most days has a median and a MAD of 0, and would otherwise be flagged on every day it is active.
    mean_deviation_floor: float = 1.0

    def floor(self, metric: AnomalyMetric) -> float:
        return self.spend_floor if metric is AnomalyMetric.SPEND else self.rate_floor

    def describe(self) -> str:
        """The rule in one sentence, for field descriptions and alert texts."""
        return (
            f"a closed, verified day whose value is above median + {self.k:g} × spread of the entity's"
            f" closed, verified days among the {self.window_days} days before it (at least"
            f" {self.min_baseline_days} of them; spend counts 0 on a day without usage, a failure rate"
            f" only on days with at least {self.min_requests} requests); spread = the median absolute"
            " deviation from the median, at least the mean absolute deviation from it, at least"
            f" {self.relative_floor:.0%} of the median and at least {self.spend_floor:g} of spend or"
            f" {self.rate_floor:.0%} of failure rate"
        )


RULE = Rule()


@dataclass(frozen=True)
class Anomaly:
    """One entity-day above its baseline. ``key`` is the facts' value of the dimension (for API_KEY the
    key bucket: a token hash, ``unattributed`` or ``raw:…``)."""

    dimension: Dimension
    key: str
    date: date
    metric: AnomalyMetric
    value: float  # the day's spend or failure rate
    baseline: float
    mad: float
    spread: float
    threshold: float
    size: float
    baseline_days: int
    spend: Decimal  # the entity's spend that day (exact), whatever the metric
    requests: int
    failed_requests: int


@dataclass(frozen=True)
class _Day:
    spend: float  # the double nearest to the exact sum
    spend_text: str  # the exact sum, made a Decimal only for the anomalies found
    requests: int
    failed: int


async def usable_days(db: Database, start: date, end: date) -> list[date]:
    """The closed, verified days from ``start`` to ``end``, sorted: the only days anomalies read."""
    rows = await db.fetch_all(
        "SELECT date FROM usage_days WHERE date BETWEEN %s AND %s AND status = 'closed' AND verified"
        " ORDER BY date",
        (start, end),
    )
    return [row[0] for row in rows]


async def find_anomalies(
    db: Database,
    dimension: Dimension,
    f: FactFilter,
    *,
    metrics: Collection[AnomalyMetric] = tuple(AnomalyMetric),
    min_spend: Decimal | None = None,
    rule: Rule = RULE,
) -> list[Anomaly]:
    """The anomalies of ``dimension``'s entities on the days of ``f``'s range, under ``f``'s conditions
    (its dates are the days reported; baselines look back ``rule.window_days`` before them).

    ``min_spend`` leaves out anomalies whose day's spend is below it. Ordered by size descending, then
    date, key and metric. ``f`` must not filter by tag (tag facts count a request once per tag).
    """
    dimension = Dimension(dimension)
    if dimension not in ANOMALY_DIMENSIONS:
        raise ValueError(f"no anomalies by {dimension.name}")
    if f.tags is not None:
        raise ValueError("anomalies are not found under a tag filter")
    wanted = tuple(AnomalyMetric(m) for m in metrics)
    start = f.date_from - timedelta(days=rule.window_days)
    days = await usable_days(db, start, f.date_to)
    first_checked = bisect.bisect_left(days, f.date_from)
    if first_checked == len(days) or not wanted:
        return []
    series = await _daily_series(db, dimension, f, days, days[first_checked:], wanted, min_spend, rule)
    # Each checked day (by its position in `days`) with the positions its baseline days start from.
    checked = [
        (i, days[i], bisect.bisect_left(days, days[i] - timedelta(days=rule.window_days)))
        for i in range(first_checked, len(days))
    ]
    position = {day: i for i, day in enumerate(days)}
    found: list[Anomaly] = []
    for key, by_day in series.items():
        spends = [0.0] * len(days)  # a usable day without usage spends 0
        rates: list[float | None] = [None] * len(days)  # a failure rate only with enough requests
        for day, sums in by_day.items():
            i = position[day]
            spends[i] = sums.spend
            if sums.requests >= rule.min_requests:
                rates[i] = sums.failed / sums.requests
        for i, day, first in checked:
            today = by_day.get(day)
            if today is None:
                continue
            for metric in wanted:
                spend_metric = metric is AnomalyMetric.SPEND
                value = spends[i] if spend_metric else rates[i]
                # Under any threshold (values are never negative): spare building the baseline.
                if value is None or value <= rule.k * rule.floor(metric):
                    continue
                inputs = spends[first:i] if spend_metric else [r for r in rates[first:i] if r is not None]
                anomaly = _check(value, inputs, metric, rule)
                if anomaly is None:
                    continue
                spend = Decimal(today.spend_text)
                if min_spend is None or spend >= min_spend:
                    found.append(anomaly.of(dimension, key, day, metric, spend, today))
    found.sort(key=lambda a: (-a.size, a.date, a.key, a.metric.value))
    return found


@dataclass(frozen=True)
class _Flagged:
    value: float
    baseline: float
    mad: float
    spread: float
    threshold: float
    baseline_days: int

    def of(
        self, dimension: Dimension, key: str, day: date, metric: AnomalyMetric, spend: Decimal, sums: _Day
    ) -> Anomaly:
        return Anomaly(
            dimension=dimension,
            key=key,
            date=day,
            metric=metric,
            value=self.value,
            baseline=self.baseline,
            mad=self.mad,
            spread=self.spread,
            threshold=self.threshold,
            size=(self.value - self.baseline) / self.spread,
            baseline_days=self.baseline_days,
            spend=spend,
            requests=sums.requests,
            failed_requests=sums.failed,
        )


def _median(values: Sequence[float]) -> float:
    """The median, as :func:`statistics.median` computes it."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _check(value: float, inputs: Sequence[float], metric: AnomalyMetric, rule: Rule) -> _Flagged | None:
    """The figures of ``value`` against the baseline ``inputs``, if the rule flags it."""
    floor = rule.floor(metric)
    if value <= rule.k * floor or len(inputs) < rule.min_baseline_days:
        return None  # under any threshold, or too little history
    baseline = _median(inputs)
    # A cheap bound first: the spread is at least its floors, so most days stop here.
    if value <= baseline + rule.k * max(rule.relative_floor * baseline, floor):
        return None
    deviations = [abs(x - baseline) for x in inputs]
    mad = _median(deviations)
    spread = max(mad, rule.mean_deviation_floor * math.fsum(deviations) / len(deviations),
                 rule.relative_floor * baseline, floor)  # fmt: skip
    threshold = baseline + rule.k * spread
    if value <= threshold:
        return None
    return _Flagged(value, baseline, mad, spread, threshold, len(inputs))


async def _daily_series(
    db: Database,
    dimension: Dimension,
    f: FactFilter,
    days: list[date],
    checked: list[date],
    metrics: tuple[AnomalyMetric, ...],
    min_spend: Decimal | None,
    rule: Rule,
) -> dict[str, dict[date, _Day]]:
    """Each entity's daily sums on ``days``, for the entities with a ``checked`` day whose value could
    pass a threshold (every threshold is at least ``k`` × the absolute floor)."""
    params: dict[str, Any] = {
        "start": days[0],
        "end": days[-1],
        "days": days,
        "checked": checked,
        # Looser than the rule (4 for 5 × $1, 4 % for 5 × 1 %, minSpend less a billionth), so neither
        # rounding nor the candidates' sums in double precision ever leave a day out.
        "least_spend": rule.k * rule.spend_floor * 0.8,
        "least_rate_percent": rule.k * rule.rate_floor * 80,
        "min_requests": rule.min_requests,
        "min_spend": None if min_spend is None else float(min_spend) * (1 - 1e-9) - 1e-9,
    }
    could: list[sql.Composable] = []
    if AnomalyMetric.SPEND in metrics:
        could.append(sql.SQL("spend > %(least_spend)s"))
    if AnomalyMetric.FAILURE_RATE in metrics:
        could.append(
            sql.SQL("(requests >= %(min_requests)s AND failed * 100 > requests * %(least_rate_percent)s)")
        )
    enough = sql.SQL("true") if min_spend is None else sql.SQL("spend >= %(min_spend)s")
    key = sql.Identifier(dimension.value)
    source = source_for(f, (dimension,), active_counts=False)
    conditions = filter_clause(f, params)

    def daily(dates: sql.Composable, only: sql.Composable = _TRUE, *, exact: bool = True) -> sql.Composable:
        """The filter's daily sums per entity on ``dates`` (of the entities ``only`` keeps) as ``(key, date,
        spend, requests, failed)``; not ``exact``: summed in double precision (a smaller hash table)."""
        if source == _DAY_ROLLUPS.get(dimension):  # a row per day and entity already
            return sql.SQL(
                "(SELECT {key} AS key, date, spend, api_requests AS requests, failed_requests AS failed"
                " FROM {source} WHERE {dates} AND {conditions} AND {only})"
            ).format(key=key, source=source, dates=dates, conditions=conditions, only=only)
        return sql.SQL(
            "(SELECT {key} AS key, date, sum(spend{cast}) AS spend, sum(api_requests{cast}) AS requests,"
            " sum(failed_requests{cast}) AS failed FROM {source} WHERE {dates} AND {conditions} AND {only}"
            " GROUP BY date, {key})"
        ).format(
            key=key,
            cast=sql.SQL("" if exact else "::float8"),
            source=source,
            dates=dates,
            conditions=conditions,
            only=only,
        )

    # Two passes: the entities with a day that could pass (the checked days alone), then their series
    # (through the (entity, date) indexes). Grouping by date first lets Postgres walk the facts' key.
    query = sql.SQL(
        "WITH candidates AS MATERIALIZED ("
        " SELECT DISTINCT key FROM {checked} AS day WHERE {enough} AND ({could}))"
        " SELECT key, date, spend::float8, spend::text, requests, failed FROM {every} AS day"
    ).format(
        checked=daily(sql.SQL("date = ANY(%(checked)s::date[])"), exact=False),
        every=daily(
            sql.SQL("date BETWEEN %(start)s AND %(end)s AND date = ANY(%(days)s::date[])"),
            sql.SQL("{} IN (SELECT key FROM candidates)").format(key),
        ),
        enough=enough,
        could=sql.SQL(" OR ").join(could),
    )
    series: dict[str, dict[date, _Day]] = {}
    for key, day, spend, text, requests, failed in await db.fetch_all(query, params):
        series.setdefault(key, {})[day] = _Day(spend, text, int(requests), int(failed))
    return series
