"""Top movers and anomalies on the demo data (issue 17 items 3 and 4): "what changed most since last
month?".

    .venv/bin/python -m bench.insights_demo [--seed 7]

Starts a private PostgreSQL and the LiteLLM-compatible server with the demo data set as ``make demo``
does, opens the gateway in this process on the demo's clock (today, 12:00 UTC) and asks, for last month
against the period of equal length before it (``previousPeriod``'s), the top movers by user, model and
team (spend), and the anomalies of last month by user and by model; then prints them, with the time of
each query (the first makes the days present from LiteLLM; answer cache off).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from bench.demo_gateway import ask, demo_client, demo_main

MOVERS = """query($f: UsageFilter!, $d: MoverDimension!) {
  usage(filter: $f) { previousPeriod { spend } totals { spend }
    movers(dimension: $d, first: 5) { totalCount
      nodes { id name current previous change changeRelative status } } } }"""
ANOMALIES = """query($f: UsageFilter!, $d: AnomalyDimension!) {
  usage(filter: $f) { anomalies(dimension: $d, first: 5) { totalCount complete skippedDays
    nodes { id name date metric value baseline spread threshold size baselineDays } } } }"""


def last_month(today: date) -> dict[str, str]:
    end = today.replace(day=1) - timedelta(days=1)
    return {"from": end.replace(day=1).isoformat(), "to": end.isoformat()}


async def measure(database_url: str, litellm_url: str, now: datetime) -> None:
    month = last_month(now.date())
    print(f"last month {month['from']} to {month['to']}, against the 30 days before it")
    async with demo_client(database_url, litellm_url, now) as (http, token):
        for dimension in ("USER", "MODEL", "TEAM"):
            ms, usage = await ask(http, token, MOVERS, {"f": month, "d": dimension})
            movers = usage["movers"]
            print(
                f"\nmovers by {dimension} ({ms:.0f} ms; {movers['totalCount']} entities; spend"
                f" {usage['previousPeriod']['spend']:,.2f} -> {usage['totals']['spend']:,.2f}):"
            )
            for n in movers["nodes"]:
                relative = "" if n["changeRelative"] is None else f" ({n['changeRelative']:+.0%})"
                print(
                    f"  {n['id']} {n['name'] or ''}: {n['previous']:,.2f} -> {n['current']:,.2f},"
                    f" {n['change']:+,.2f}{relative} {n['status']}"
                )
        for dimension in ("USER", "MODEL"):
            ms, usage = await ask(http, token, ANOMALIES, {"f": month, "d": dimension})
            found = usage["anomalies"]
            print(
                f"\nanomalies by {dimension} ({ms:.0f} ms; {found['totalCount']} found;"
                f" complete {found['complete']}):"
            )
            for n in found["nodes"]:
                print(
                    f"  {n['date']} {n['id']} {n['name'] or ''} {n['metric']}: {n['value']:,.4g} against"
                    f" median {n['baseline']:,.4g} (spread {n['spread']:,.4g},"
                    f" threshold {n['threshold']:,.4g}, {n['baselineDays']} days):"
                    f" {n['size']:.1f} spreads"
                )


def main() -> None:
    demo_main(measure, __doc__ or "")


if __name__ == "__main__":
    main()
