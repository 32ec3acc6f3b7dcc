"""``Usage.forecast``: the days it reads made present, then the forecast of the request's scoped filter."""

from __future__ import annotations

from usage_gateway.datasources.insights import forecast as data
from usage_gateway.datasources.insights.forecast import ForecastResult, Horizon
from usage_gateway.resolvers.context import AnswerWarning, Context
from usage_gateway.resolvers.usage import UsageRequest, ensure_days

FEW_FORECAST_DAYS = "FEW_FORECAST_DAYS"


async def forecast(ctx: Context, request: UsageRequest, horizon: Horizon) -> ForecastResult:
    """The forecast under the request's filter, already clipped to the viewer's scope. Its last
    :data:`~data.WINDOW_DAYS` days and its month so far are made present first (as ``previousPeriod``
    does for its days); a forecast from fewer than :data:`~data.MIN_DAYS` inputs carries a warning."""
    f = request.filter
    today = ctx.days.today()
    start, end = data.needed_days(f, today)
    await ensure_days(ctx, f, start, end)
    result = await data.forecast(ctx.db, f, horizon, today)
    if result.input_days < data.MIN_DAYS:
        ctx.warnings.append(
            AnswerWarning(
                FEW_FORECAST_DAYS,
                f"the forecast rests on {result.input_days} closed, verified day(s) (of the"
                f" {data.WINDOW_DAYS} it reads, looked for in the {data.LOOKBACK_DAYS} days up to"
                f" {end.isoformat()}): open, unverified and missing days are never inputs, so its band is"
                " wide or, without any input, it is zero",
                (),
            )
        )
    return result
