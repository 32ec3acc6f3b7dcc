"""``Usage.forecast``: ``Forecast``, ``ForecastPoint`` and ``ForecastHorizon`` (issue 17's contract)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import strawberry

from usage_gateway.datasources.insights.forecast import (
    LOOKBACK_DAYS,
    MIN_DAYS,
    WINDOW_DAYS,
    ForecastDay,
    ForecastResult,
    Horizon,
)
from usage_gateway.resolvers.context import Context
from usage_gateway.resolvers.insights import forecast as resolve
from usage_gateway.resolvers.usage import UsageRequest

# The data layer's enum is the contract's: a field or argument typed with it takes and gives its members.
strawberry.enum(
    Horizon,
    name="ForecastHorizon",
    description="What a forecast covers: the rest of the month (MONTH_END) or the next 30 days (DAYS_30).",
)

METHOD = (
    f"Weekday-aware mean: for each weekday, the mean of its daily sums over the last {WINDOW_DAYS} closed,"
    f" verified days (looked for in the {LOOKBACK_DAYS} days up to the filter's `to`, or today if earlier;"
    " open, unverified and missing days are never inputs; a weekday without any takes the mean of all"
    " inputs), times growth q^(Δ/28): q is the inputs' total over that of the 28 days before them (held"
    " within 0.5..2; 1 unless the inputs are 28 days in a row and those 28 days are closed and verified"
    " too), Δ the days from the middle of the weekday's inputs. Band: ±1.28 × sd, a central 80 % interval"
    " under a normal approximation, from σ, the spread of the inputs about their weekday means (sum of"
    " squares over n − weekdays fitted): a day's variance σ²(1 + 1/n_w), a total's σ²(days + Σ c_w²/n_w)"
    " (c_w forecast days and n_w inputs of each weekday), each plus the error of q (delta method) times"
    " the forecast's squared derivative in q. Lows stop at 0. Computed in floating point from the exact"
    f" daily sums. Under the whole filter and the viewer's scope. Fewer than {MIN_DAYS} inputs: a"
    " FEW_FORECAST_DAYS warning in `extensions.warnings`."
)


@strawberry.type(description="One forecast day, for a chart's band: the weekday mean and its 80 % band.")
class ForecastPoint:
    date: dt.date
    spend: float
    spend_low: float
    spend_high: float
    requests: float
    requests_low: float
    requests_high: float

    @classmethod
    def of(cls, day: ForecastDay) -> ForecastPoint:
        return cls(
            date=day.date,
            spend=day.spend.value,
            spend_low=day.spend.low,
            spend_high=day.spend.high,
            requests=day.requests.value,
            requests_low=day.requests.low,
            requests_high=day.requests.high,
        )


@strawberry.type(
    description="Projected spend and requests with an 80 % band; `method` says how, and from which days"
    " (`Usage.forecast` gives the method in full)."
)
class Forecast:
    horizon: Horizon
    method: str = strawberry.field(description="The method and its inputs, in plain words.")
    input_from: dt.date = strawberry.field(
        description="The first input day (without any input: the first day looked at)."
    )
    input_to: dt.date = strawberry.field(
        description="The last input day: the last closed, verified day (without any input: the day the"
        " forecast looks from)."
    )
    input_days: int = strawberry.field(description="Closed, verified days used as inputs.")
    from_: dt.date = strawberry.field(
        name="from",
        description="The first forecast day: the day after `inputTo` (MONTH_END: not before the 1st of the"
        " month). After `to` when the month is over: nothing left to forecast.",
    )
    to: dt.date = strawberry.field(
        description="The last forecast day: the month's last day (MONTH_END) or `inputTo` + 30 days."
    )
    actual_spend: float = strawberry.field(
        description="MONTH_END: the month's spend so far (its 1st up to `to` of the filter or today), open"
        " and unverified days included as they stand. DAYS_30: 0."
    )
    actual_spend_exact: Decimal = strawberry.field(description="`actualSpend`, exact.")
    spend: float = strawberry.field(
        description="MONTH_END: the month's projected total: the spend of the days before `from`, plus for"
        " the days `from`..`to` the larger of their forecast and what the open ones among them spent so"
        " far. DAYS_30: the forecast of the 30 days."
    )
    spend_low: float = strawberry.field(description="`spend` at the band's low end.")
    spend_high: float = strawberry.field(description="`spend` at the band's high end.")
    requests: float = strawberry.field(description="Requests, as `spend` (MONTH_END: the month's total).")
    requests_low: float
    requests_high: float
    points: list[ForecastPoint] = strawberry.field(description="One per forecast day, `from` to `to`.")

    @classmethod
    def of(cls, result: ForecastResult) -> Forecast:
        return cls(
            horizon=result.horizon,
            method=result.method,
            input_from=result.input_from,
            input_to=result.input_to,
            input_days=result.input_days,
            from_=result.date_from,
            to=result.date_to,
            actual_spend=float(result.actual_spend),
            actual_spend_exact=result.actual_spend,
            spend=result.spend.value,
            spend_low=result.spend.low,
            spend_high=result.spend.high,
            requests=result.requests.value,
            requests_low=result.requests.low,
            requests_high=result.requests.high,
            points=[ForecastPoint.of(day) for day in result.points],
        )


async def forecast(ctx: Context, request: UsageRequest, horizon: Horizon) -> Forecast:
    return Forecast.of(await resolve.forecast(ctx, request, Horizon(horizon)))
