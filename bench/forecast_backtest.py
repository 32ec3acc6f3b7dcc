"""Backtest of ``Usage.forecast(horizon: MONTH_END)`` on the reference data set (issue 17, item 2).

For each month of the data set with 28 days before it, the month's total spend (and requests) is
forecast from day 7, 14 and 21 of the month: the filter ends the day before (``to`` = the 6th, 13th,
20th), so the inputs are the closed days before that point and the actual part is the month so far. Each
forecast is compared with the month's actual total (``totals`` over the whole month): MAPE (mean absolute
percentage error), bias (mean signed percentage error: negative forecasts low), the share of months whose
actual falls inside the 80 % band, and the band's mean width relative to the actual. Everything goes
through the GraphQL API of the gateway app in this process, on a clock with every day of the data closed.

    python -m bench.forecast_backtest                 # the reference data set (the first run fills it:
                                                      # about six minutes; kept under --keep-data)
    python -m bench.forecast_backtest --scale small   # a tenth of the users and keys (half a minute)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.cluster import running_cluster
from bench.gateway import BenchGateway, open_gateway
from bench.reference_data import Scale
from bench.warm import UPSTREAM
from usage_gateway.devtools.local_services import LocalRedis

CUTS = (7, 14, 21)  # the day of the month the forecast is made on (inputs: the days before it)
QUERY = """
query Backtest($forecastFilter: UsageFilter!, $monthFilter: UsageFilter!) {
  forecast: usage(filter: $forecastFilter) {
    forecast(horizon: MONTH_END) { inputDays spend spendLow spendHigh requests requestsLow requestsHigh }
  }
  month: usage(filter: $monthFilter) { totals { spend requests } }
}"""


@dataclass(frozen=True)
class Trial:
    month: date
    cut: int
    input_days: int
    actual: float
    forecast: float
    low: float
    high: float
    actual_requests: float
    forecast_requests: float
    requests_inside: bool

    @property
    def error(self) -> float:
        """Signed, relative to the actual: negative when the forecast is low."""
        return (self.forecast - self.actual) / self.actual

    @property
    def inside(self) -> bool:
        return self.low <= self.actual <= self.high

    @property
    def requests_error(self) -> float:
        return (self.forecast_requests - self.actual_requests) / self.actual_requests


def months(scale: Scale) -> list[date]:
    """Every whole month of the data set with at least 28 days of data before it."""
    found = []
    month = (scale.first_day + timedelta(days=28)).replace(day=1)
    if month < scale.first_day + timedelta(days=28):
        month = (month + timedelta(days=32)).replace(day=1)
    while _month_end(month) <= scale.last_day:
        found.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return found


def _month_end(month: date) -> date:
    return (month + timedelta(days=32)).replace(day=1) - timedelta(days=1)


async def trials(gateway: BenchGateway, scale: Scale) -> list[Trial]:
    found = []
    for month in months(scale):
        whole = {"from": month.isoformat(), "to": _month_end(month).isoformat()}
        for cut in CUTS:
            variables: dict[str, Any] = {
                "forecastFilter": {**whole, "to": month.replace(day=cut - 1).isoformat()},
                "monthFilter": whole,
            }
            answer = await gateway.ask(QUERY, variables, allowed_errors=UPSTREAM)
            f, totals = answer.data["forecast"]["forecast"], answer.data["month"]["totals"]
            found.append(
                Trial(
                    month=month,
                    cut=cut,
                    input_days=f["inputDays"],
                    actual=totals["spend"],
                    forecast=f["spend"],
                    low=f["spendLow"],
                    high=f["spendHigh"],
                    actual_requests=float(totals["requests"]),
                    forecast_requests=f["requests"],
                    requests_inside=f["requestsLow"] <= totals["requests"] <= f["requestsHigh"],
                )
            )
    return found


def _pct(value: float) -> str:
    return f"{100 * value:+.1f} %" if value < 0 or value > 0 else "0.0 %"


def summary_table(found: list[Trial], title: str) -> Table:
    grid = Table(title=title, title_justify="left")
    headings = ("cut-off", "months", "inputs", "spend MAPE", "spend bias", "inside 80 % band", "band width",
                "requests MAPE", "requests bias", "requests inside")  # fmt: skip
    for heading in headings:
        grid.add_column(heading, justify="left" if heading == "cut-off" else "right")
    for cut in CUTS:
        rows = [t for t in found if t.cut == cut]
        if not rows:
            continue
        grid.add_row(
            f"day {cut}",
            str(len(rows)),
            f"{statistics.fmean(t.input_days for t in rows):.0f}",
            f"{100 * statistics.fmean(abs(t.error) for t in rows):.2f} %",
            _pct(statistics.fmean(t.error for t in rows)),
            f"{sum(t.inside for t in rows)}/{len(rows)}",
            f"{100 * statistics.fmean((t.high - t.low) / t.actual for t in rows):.1f} %",
            f"{100 * statistics.fmean(abs(t.requests_error) for t in rows):.2f} %",
            _pct(statistics.fmean(t.requests_error for t in rows)),
            f"{sum(t.requests_inside for t in rows)}/{len(rows)}",
        )
    return grid


def months_table(found: list[Trial]) -> Table:
    grid = Table(title="Spend forecast error by month (forecast − actual, relative; * = outside the band)",
                 title_justify="left")  # fmt: skip
    grid.add_column("month", justify="left")
    grid.add_column("actual", justify="right")
    for cut in CUTS:
        grid.add_column(f"day {cut}", justify="right")
    for month in sorted({t.month for t in found}):
        rows = {t.cut: t for t in found if t.month == month}
        cells = [f"{_pct(rows[c].error)}{'' if rows[c].inside else '*'}" if c in rows else "—" for c in CUTS]
        actual = next(iter(rows.values())).actual
        grid.add_row(month.strftime("%Y-%m"), f"{actual:,.2f}", *cells)
    return grid


async def run(scale: Scale, database_url: str, redis_url: str) -> list[Trial]:
    async with open_gateway(database_url, redis_url, scale.last_day, answer_cache=False) as gateway:
        return await trials(gateway, scale)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", choices=("reference", "small"), default="reference")
    parser.add_argument("--keep-data", type=Path, default=Path("var/bench/clusters"),
                        help="keep the filled cluster here, reused by the next run")  # fmt: skip
    parser.add_argument(
        "--no-keep-data", action="store_true", help="fill a temporary cluster, then delete it"
    )
    args = parser.parse_args(argv)
    scale = Scale()
    if args.scale == "small":
        scale = replace(scale, users=scale.users // 10, keys=scale.keys // 10)
    keep = None if args.no_keep_data else args.keep_data.resolve()
    console = Console(width=max(Console().width, 120))  # the table's columns, unwrapped, in a log too
    # A plan name of its own: `bench.run` deletes only stale clusters of its own plans, and so does this.
    with running_cluster(f"forecast-{args.scale}", {"data": scale}, keep) as cluster:
        redis = LocalRedis().start()
        try:
            found = asyncio.run(run(scale, cluster.datasets["data"].url, redis.url))
        finally:
            redis.stop()
    title = (
        f"Forecast backtest: MONTH_END from day 7, 14 and 21, {args.scale} data set"
        f" ({scale.users:,} users, {scale.keys:,} keys, {scale.first_day}..{scale.last_day})"
    )
    console.print(summary_table(found, title))
    console.print(months_table(found))


if __name__ == "__main__":
    main()
