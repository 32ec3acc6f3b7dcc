"""Spend and request forecasts (issue 17, item 2): a weekday-aware mean over the last closed days.

The method, in full (the GraphQL descriptions say the same in fewer words):

- **Inputs.** The last :data:`WINDOW_DAYS` days that are closed and verified, ending at the last such day
  on or before ``end`` (the filter's ``to``, or today if earlier), looked for within the
  :data:`LOOKBACK_DAYS` days ending at ``end``. Open, unverified and missing days are never inputs.
- **Level.** For each weekday, the mean of that weekday's daily sums among the inputs (4 each over 28
  days in a row), standing for the middle of its input days. The mean, not the median: what is forecast
  is a total, and spend is skewed to the right (a few heavy days), so a median would forecast totals too
  low on average. A weekday without any input takes the mean of all inputs.
- **Growth.** When the inputs are 28 days in a row and the 28 days before them are closed and verified
  too, ``q`` = the inputs' total over those 28 days' total (held within ½..2), and a day ``Δ`` days after
  its weekday mean's middle is forecast as that mean × ``q^(Δ/28)``; else ``q`` = 1 (and the method says
  why). A flat mean of a growing series lags it by half its window plus the horizon: on the reference data
  set (about 9 % more a month) that was a forecast 6 % low from day 7 (bench/forecast_backtest.py).
- **Band.** ``±`` :data:`Z` ``× sd`` (a central 80 % interval under a normal approximation). ``σ`` is the
  residual spread of the inputs about their weekday means, ``sqrt(Σ residual² / (n − k))`` (``k`` weekday
  means fitted). A day's variance is ``σ²·(1 + 1/n_w)`` (its own noise and that of its weekday's mean over
  ``n_w`` inputs); a total's over the forecast days ``σ²·(H + Σ_w c_w² / n_w)`` (``H`` independent days,
  and the error of each weekday's mean, shared by its ``c_w`` days). With growth, both add the error of
  ``q`` (``Var q ≈ 28σ²·(1 + q²) / S_before²``) times the squared derivative of the forecast in ``q``.
  Lows stop at 0.
- **Arithmetic.** The daily sums are exact (``numeric``, as Decimals); the projection is computed in
  floating point (it is an estimate). ``actual_spend`` stays exact.

MONTH_END forecasts the days after the last input day to the end of the month of ``end``; the month's
projected total is what the days before them spent, plus for those days the larger of their forecast and
what the open ones among them spent so far (so an open day's spend is neither lost nor counted twice).
DAYS_30 forecasts the 30 days after the last input day, and nothing is actual.

One SQL statement reads the daily sums of the filter's facts with each day's status.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from psycopg import sql

from usage_gateway.datasources.db import Database
from usage_gateway.datasources.facts.aggregates import FactFilter, source_for, where_clause

WINDOW_DAYS = 28  # closed, verified days a forecast reads
OPEN_DAYS = 2  # days at the end that may be open: today, and yesterday until CLOSE_AFTER past midnight
# How far back inputs are looked for, ending at the forecast's end day: the inputs, the 28 days before
# them (growth), and the days that may still be open.
LOOKBACK_DAYS = 2 * WINDOW_DAYS + OPEN_DAYS
GROWTH_LIMITS = (0.5, 2.0)  # q, the growth over 28 days, is held within these
MIN_DAYS = 14  # fewer inputs than this: the answer says so
Z = 1.2815515655446004  # the normal 90th percentile: a central 80 % band
DAYS_30 = 30


class Horizon(StrEnum):
    MONTH_END = "MONTH_END"
    DAYS_30 = "DAYS_30"


@dataclass(frozen=True)
class DaySum:
    """One day of the window: the filter's sums on it, and whether it may be an input."""

    date: date
    spend: Decimal
    requests: int
    usable: bool  # stored, closed and verified


@dataclass(frozen=True)
class Projection:
    """A forecast value with its band."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class ForecastDay:
    date: date
    spend: Projection
    requests: Projection


@dataclass(frozen=True)
class ForecastResult:
    horizon: Horizon
    input_from: date
    input_to: date
    input_days: int
    date_from: date  # first forecast day
    date_to: date  # last forecast day (before date_from when there is none: the month is over)
    actual_spend: Decimal
    spend: Projection
    requests: Projection
    points: tuple[ForecastDay, ...]
    growth: float | None = None  # spend's q over 28 days; None when it could not be measured

    @property
    def method(self) -> str:
        if not self.input_days:
            return (
                f"no closed, verified day in the {LOOKBACK_DAYS} days up to {self.input_to.isoformat()}:"
                " nothing to forecast from, every projection is 0"
            )
        growth = (
            "no growth (it needs the 28 days before the inputs closed and verified too, and the inputs"
            " in a row)"
            if self.growth is None
            else f"growth ×{self.growth:.3f} per 28 days (the inputs' total over the 28 days before them)"
        )
        return (
            f"weekday-aware mean of the last {self.input_days} closed, verified days"
            f" ({self.input_from.isoformat()}..{self.input_to.isoformat()}); {growth}; band = ±{Z:.2f} × sd"
            " (80 %, normal) from the residual spread σ about the weekday means, the means' own error and"
            " the growth's"
        )


def _back(day: date, days: int) -> date:
    """``days`` before ``day``, or the first representable day."""
    return date.fromordinal(max(1, day.toordinal() - days))


def _forward(day: date, days: int) -> date:
    return date.fromordinal(min(date.max.toordinal(), day.toordinal() + days))


def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def end_day(f: FactFilter, today: date) -> date:
    """The day a forecast looks from: the filter's ``to``, or today if earlier."""
    return min(f.date_to, today)


def window(f: FactFilter, today: date) -> tuple[date, date]:
    """The days whose sums a forecast reads: the lookback and the month of :func:`end_day`."""
    end = end_day(f, today)
    return _back(end, LOOKBACK_DAYS - 1), end


def needed_days(f: FactFilter, today: date) -> tuple[date, date]:
    """The days to make present before forecasting: the whole lookback (the inputs, the 28 days before
    them for the growth, and the days that may still be open), and the month so far."""
    first, end = window(f, today)
    return min(first, end.replace(day=1)), end


async def day_sums(db: Database, f: FactFilter, first: date, last: date) -> list[DaySum]:
    """Every day from ``first`` to ``last`` with the sums of the facts matching ``f`` on it (zero without
    any) and whether it is closed and verified, in one statement. Under a tag filter the facts and the
    days are the tag's (``tag_facts``, ``tag_days``)."""
    params: dict[str, Any] = {}
    scoped = replace(f, date_from=first, date_to=last)
    days_table = "usage_days" if f.tags is None else "tag_days"
    query = sql.SQL(
        "SELECT d.day::date, coalesce(s.spend, 0), coalesce(s.requests, 0)::bigint,"
        " coalesce(k.status = 'closed' AND k.verified, false)"
        " FROM generate_series(%(date_from)s::date, %(date_to)s::date, interval '1 day') AS d (day)"
        " LEFT JOIN (SELECT date, sum(spend) AS spend, sum(api_requests) AS requests FROM {source}"
        " WHERE {where} GROUP BY date) s ON s.date = d.day"
        " LEFT JOIN {days} k ON k.date = d.day ORDER BY 1"
    ).format(
        source=source_for(f, (), active_counts=False),
        where=where_clause(scoped, params),
        days=sql.Identifier(days_table),
    )
    return [DaySum(*row) for row in await db.fetch_all(query, params)]


async def forecast(db: Database, f: FactFilter, horizon: Horizon, today: date) -> ForecastResult:
    first, last = window(f, today)
    return project(await day_sums(db, f, first, last), Horizon(horizon), last)


# --- The arithmetic ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Model:
    """Weekday means of one metric, the growth applied to them, and the spread of the inputs about them."""

    means: dict[int, float]  # weekday -> mean (every weekday: see ``fit``)
    middles: dict[int, float]  # weekday -> the middle of its inputs (an ordinal day)
    counts: dict[int, int]  # weekday -> inputs behind its mean
    sigma: float
    growth: float = 1.0  # q: over 28 days
    growth_variance: float = 0.0

    @classmethod
    def fit(cls, inputs: Sequence[tuple[date, float]], before: Sequence[float] | None) -> _Model:
        """``before``: the 28 days before the inputs, when growth applies."""
        if not inputs:
            return cls({}, {}, {}, 0.0)
        by_weekday: dict[int, list[tuple[date, float]]] = {}
        for day, value in inputs:
            by_weekday.setdefault(day.weekday(), []).append((day, value))
        means = {w: math.fsum(v for _, v in days) / len(days) for w, days in by_weekday.items()}
        middles = {w: math.fsum(d.toordinal() for d, _ in days) / len(days) for w, days in by_weekday.items()}
        counts = {w: len(days) for w, days in by_weekday.items()}
        squares = math.fsum((value - means[day.weekday()]) ** 2 for day, value in inputs)
        freedom = len(inputs) - len(means)
        overall = math.fsum(value for _, value in inputs) / len(inputs)
        if freedom < 1:
            # One input per weekday: no spread about the weekday means can be told; the spread about the
            # overall mean stands in for it (wider, so the band errs wide).
            squares = math.fsum((value - overall) ** 2 for _, value in inputs)
            freedom = len(inputs) - 1
        sigma = math.sqrt(squares / freedom) if freedom >= 1 else 0.0
        middle = math.fsum(day.toordinal() for day, _ in inputs) / len(inputs)
        for weekday in range(7):  # a weekday without inputs: the mean of them all, at their middle
            means.setdefault(weekday, overall)
            middles.setdefault(weekday, middle)
        growth, variance = 1.0, 0.0
        earlier = math.fsum(before) if before is not None else 0.0
        if before is not None and earlier > 0:
            ratio = math.fsum(value for _, value in inputs) / earlier
            growth = min(max(ratio, GROWTH_LIMITS[0]), GROWTH_LIMITS[1])
            # The delta method on (sum of inputs) / (sum before), each a sum of 28 days of variance σ².
            variance = WINDOW_DAYS * sigma**2 * (1 + growth**2) / earlier**2
        return cls(means, middles, counts, sigma, growth, variance)

    def _weight(self, weekday: int) -> int:
        """The inputs behind a weekday's mean (all of them for a weekday that had none)."""
        return self.counts.get(weekday) or sum(self.counts.values())

    def _value(self, day: date) -> tuple[float, float]:
        """The forecast of ``day`` and its derivative in the growth ``q``."""
        weekday = day.weekday()
        steps = (day.toordinal() - self.middles.get(weekday, day.toordinal())) / WINDOW_DAYS
        mean = self.means.get(weekday, 0.0)
        return mean * self.growth**steps, mean * steps * self.growth ** (steps - 1)

    def day(self, day: date) -> Projection:
        value, slope = self._value(day)
        weight = self._weight(day.weekday())
        if not weight:
            return Projection(value, value, value)
        variance = self.sigma**2 * (1 + 1 / weight) + slope**2 * self.growth_variance
        half = Z * math.sqrt(variance)
        return Projection(value, max(value - half, 0.0), value + half)

    def total(self, days: Sequence[date]) -> Projection:
        values = [self._value(day) for day in days]
        value = math.fsum(v for v, _ in values)
        if not self.counts:
            return Projection(value, value, value)
        per_weekday: dict[int, int] = {}
        for day in days:
            per_weekday[day.weekday()] = per_weekday.get(day.weekday(), 0) + 1
        shared = math.fsum(count**2 / self._weight(weekday) for weekday, count in per_weekday.items())
        slope = math.fsum(s for _, s in values)
        variance = self.sigma**2 * (len(days) + shared) + slope**2 * self.growth_variance
        half = Z * math.sqrt(variance)
        return Projection(value, max(value - half, 0.0), value + half)


def _on_top(before: float, projected: Projection, so_far: float) -> Projection:
    """A month's total: ``before`` (the days before the forecast days) plus, for the forecast days, the
    larger of each bound and what the open ones among them spent so far."""
    return Projection(
        before + max(projected.value, so_far),
        before + max(projected.low, so_far),
        before + max(projected.high, so_far),
    )


def _days_before(days: Sequence[DaySum], inputs: Sequence[DaySum]) -> list[DaySum] | None:
    """The 28 days before the inputs, if the inputs are 28 days in a row and those are all closed and
    verified: what growth is measured against. Else None."""
    if len(inputs) < WINDOW_DAYS or (inputs[-1].date - inputs[0].date).days != WINDOW_DAYS - 1:
        return None
    first = inputs[0].date - timedelta(days=WINDOW_DAYS)
    before = [d for d in days if first <= d.date < inputs[0].date]
    return before if len(before) == WINDOW_DAYS and all(d.usable for d in before) else None


def project(days: Sequence[DaySum], horizon: Horizon, end: date) -> ForecastResult:
    """The forecast from the day sums of :func:`window` (``days`` sorted, ending at ``end``)."""
    inputs = [d for d in days if d.usable and d.date <= end][-WINDOW_DAYS:]
    before = _days_before(days, inputs)
    spend_model = _Model.fit(
        [(d.date, float(d.spend)) for d in inputs],
        None if before is None else [float(d.spend) for d in before],
    )
    requests_model = _Model.fit(
        [(d.date, float(d.requests)) for d in inputs],
        None if before is None else [float(d.requests) for d in before],
    )
    input_from = inputs[0].date if inputs else _back(end, LOOKBACK_DAYS - 1)
    input_to = inputs[-1].date if inputs else end
    if horizon is Horizon.DAYS_30:
        start, stop = _forward(input_to, 1), _forward(input_to, DAYS_30)
    else:
        start, stop = max(_forward(input_to, 1), end.replace(day=1)), month_end(end)
    forecast_days = [start + timedelta(days=n) for n in range((stop - start).days + 1)]
    spend, requests = spend_model.total(forecast_days), requests_model.total(forecast_days)
    actual = Decimal(0)
    if horizon is Horizon.MONTH_END:
        month = [d for d in days if end.replace(day=1) <= d.date <= end]
        actual = sum((d.spend for d in month), Decimal(0))
        spent_since = [d for d in month if d.date >= start]  # open days among the forecast days
        spend_so_far = float(sum((d.spend for d in spent_since), Decimal(0)))
        requests_so_far = float(sum(d.requests for d in spent_since))
        spend = _on_top(float(actual) - spend_so_far, spend, spend_so_far)
        requests_before = float(sum(d.requests for d in month)) - requests_so_far
        requests = _on_top(requests_before, requests, requests_so_far)
    points = tuple(ForecastDay(day, spend_model.day(day), requests_model.day(day)) for day in forecast_days)
    return ForecastResult(
        horizon=horizon,
        input_from=input_from,
        input_to=input_to,
        input_days=len(inputs),
        date_from=start,
        date_to=stop,
        actual_spend=actual,
        spend=spend,
        requests=requests,
        points=points,
        growth=None if before is None else spend_model.growth,
    )
