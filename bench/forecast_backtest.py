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
    python -m bench.forecast_backtest --data demo     # the demo data (seed 7: 120 days up to today),
                                                      # read from the LiteLLM-compatible server as
                                                      # `make demo` does; also this month's forecast
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.cluster import running_cluster
from bench.gateway import BenchGateway, open_gateway
from bench.reference_data import Scale
from bench.warm import UPSTREAM
from usage_gateway.devtools.demo import fill_directory
from usage_gateway.devtools.demo_data import DAYS as DEMO_DAYS
from usage_gateway.devtools.demo_data import generate
from usage_gateway.devtools.litellm_compat import MASTER_KEY, LiteLLMStore, running_litellm
from usage_gateway.devtools.local_services import LocalPostgres, LocalRedis
from usage_gateway.migrations import apply_migrations

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


def months(first_day: date, last_day: date) -> list[date]:
    """Every whole month from ``first_day`` to ``last_day`` with at least 28 days of data before it."""
    found = []
    month = (first_day + timedelta(days=28)).replace(day=1)
    if month < first_day + timedelta(days=28):
        month = (month + timedelta(days=32)).replace(day=1)
    while _month_end(month) <= last_day:
        found.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return found


def _month_end(month: date) -> date:
    return (month + timedelta(days=32)).replace(day=1) - timedelta(days=1)


async def trials(gateway: BenchGateway, first_day: date, last_day: date) -> list[Trial]:
    found = []
    for month in months(first_day, last_day):
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


FORECAST_ONLY = """
query Forecast($filter: UsageFilter!) {
  usage(filter: $filter) { forecast(horizon: MONTH_END) { spend spendLow spendHigh points { date spend } } }
}"""


async def timed(gateway: BenchGateway, last_day: date, repeat: int = 7) -> list[float]:
    """Server times of the forecast of the data's last month from day 14, warm, answer cache off (ms)."""
    month = (last_day - timedelta(days=13)).replace(day=1)
    variables = {"filter": {"from": month.isoformat(), "to": month.replace(day=13).isoformat()}}
    return [(await gateway.ask(FORECAST_ONLY, variables, allowed_errors=UPSTREAM)).ms for _ in range(repeat)]


async def run(scale: Scale, database_url: str, redis_url: str) -> tuple[list[Trial], list[float]]:
    async with open_gateway(database_url, redis_url, scale.last_day, answer_cache=False) as gateway:
        found = await trials(gateway, scale.first_day, scale.last_day)
        return found, await timed(gateway, scale.last_day)


NOW_QUERY = """
query Now($filter: UsageFilter!) {
  usage(filter: $filter) {
    monthEnd: forecast(horizon: MONTH_END) {
      method inputDays from to actualSpend spend spendLow spendHigh requests requestsLow requestsHigh
    }
    next30: forecast(horizon: DAYS_30) { from to spend spendLow spendHigh }
  }
}"""


async def run_demo(seed: int, database_url: str, redis_url: str) -> tuple[list[Trial], dict[str, Any]]:
    """The demo data read through its LiteLLM as `make demo` reads it, on the demo's clock (today, after
    midnight's days closed): the past months' trials, and this month's forecasts as of today."""
    data = generate(seed)
    today = datetime.now(UTC).date()
    fill_directory(database_url, data)
    store = LiteLLMStore(data.keys, data.users, data.rows, master_key=MASTER_KEY, tag_rows=data.tag_rows)
    store.set_teams(data.teams)
    with running_litellm(store) as litellm_url:
        # pinned_clock(d) reads d + 3 days at midnight: today at 00:00, every earlier day closed.
        async with open_gateway(
            database_url,
            redis_url,
            today - timedelta(days=3),
            answer_cache=False,
            litellm_url=litellm_url,
            litellm_master_key=MASTER_KEY,
        ) as gateway:
            first = today - timedelta(days=DEMO_DAYS - 1)
            found = await trials(gateway, first, today - timedelta(days=1))
            month = {"from": today.replace(day=1).isoformat(), "to": today.isoformat()}
            now = await gateway.ask(NOW_QUERY, {"filter": month}, allowed_errors=UPSTREAM)
    return found, now.data["usage"]


def now_lines(now: dict[str, Any]) -> list[str]:
    month, ahead = now["monthEnd"], now["next30"]
    return [
        f"This month as of today: actual {month['actualSpend']:,.2f}, projected total {month['spend']:,.2f}"
        f" (band {month['spendLow']:,.2f} – {month['spendHigh']:,.2f}); requests {month['requests']:,.0f}"
        f" ({month['requestsLow']:,.0f} – {month['requestsHigh']:,.0f}); forecast days {month['from']} to"
        f" {month['to']}",
        f"Next 30 days ({ahead['from']} to {ahead['to']}): {ahead['spend']:,.2f}"
        f" ({ahead['spendLow']:,.2f} – {ahead['spendHigh']:,.2f})",
        f"Method: {month['method']}",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", choices=("reference", "demo"), default="reference")
    parser.add_argument("--scale", choices=("reference", "small"), default="reference")
    parser.add_argument("--seed", type=int, default=7, help="the demo data's seed (--data demo)")
    parser.add_argument("--keep-data", type=Path, default=Path("var/bench/clusters"),
                        help="keep the filled cluster here, reused by the next run")  # fmt: skip
    parser.add_argument(
        "--no-keep-data", action="store_true", help="fill a temporary cluster, then delete it"
    )
    args = parser.parse_args(argv)
    console = Console(width=max(Console().width, 120))  # the table's columns, unwrapped, in a log too
    if args.data == "demo":
        postgres = LocalPostgres().start()
        redis = LocalRedis().start()
        try:
            apply_migrations(postgres.url)
            found, now = asyncio.run(run_demo(args.seed, postgres.url, redis.url))
        finally:
            redis.stop()
            postgres.stop()
        console.print(summary_table(found, f"Forecast backtest: MONTH_END from day 7, 14 and 21, demo data"
                                           f" (seed {args.seed}, {DEMO_DAYS} days up to today)"))  # fmt: skip
        console.print(months_table(found))
        for line in now_lines(now):
            console.print(line)
        return
    scale = Scale()
    if args.scale == "small":
        scale = replace(scale, users=scale.users // 10, keys=scale.keys // 10)
    keep = None if args.no_keep_data else args.keep_data.resolve()
    # A plan name of its own: `bench.run` deletes only stale clusters of its own plans, and so does this.
    with running_cluster(f"forecast-{args.scale}", {"data": scale}, keep) as cluster:
        redis = LocalRedis().start()
        try:
            found, times = asyncio.run(run(scale, cluster.datasets["data"].url, redis.url))
        finally:
            redis.stop()
    title = (
        f"Forecast backtest: MONTH_END from day 7, 14 and 21, {args.scale} data set"
        f" ({scale.users:,} users, {scale.keys:,} keys, {scale.first_day}..{scale.last_day})"
    )
    console.print(summary_table(found, title))
    console.print(months_table(found))
    console.print(
        f"One MONTH_END forecast (no filter, warm, answer cache off): median"
        f" {statistics.median(times):.1f} ms, max {max(times):.1f} ms over {len(times)} requests, in process"
    )


if __name__ == "__main__":
    main()
