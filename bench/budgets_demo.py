"""Budgets on the demo data (issue 17 item 1): "who will run out of budget this month, and when?".

    .venv/bin/python -m bench.budgets_demo [--seed 7]

Starts a private PostgreSQL and the LiteLLM-compatible server with the demo data set as ``make demo``
does (directory and budgets filled as the demo fills them), opens the gateway in this process on the
demo's clock (today, 12:00 UTC), asks ``usage.budgets`` for this month (1st to today) and prints the
budgets that are exceeded or projected to run out, and the time of the query (cold: it makes the days
present; then warm, answer cache off).
"""

from __future__ import annotations

from datetime import datetime

from bench.demo_gateway import ask, demo_client, demo_main

QUERY = """query($f: UsageFilter!, $status: BudgetStatus) {
  usage(filter: $f) { budgets(first: 500, status: $status) {
    totalCount nodes { entity id name limit duration periodFrom periodTo spend shareUsed dailyRate
                       projectedRunOut status complete } } } }"""


async def measure(database_url: str, litellm_url: str, now: datetime) -> None:
    month = {"from": now.date().replace(day=1).isoformat(), "to": now.date().isoformat()}
    async with demo_client(database_url, litellm_url, now) as (http, token):
        cold, usage = await ask(http, token, QUERY, {"f": month})
        everything = usage["budgets"]
        warm = [(await ask(http, token, QUERY, {"f": month}))[0] for _ in range(5)]
        exceeded = (await ask(http, token, QUERY, {"f": month, "status": "EXCEEDED"}))[1]["budgets"]
        at_risk = (await ask(http, token, QUERY, {"f": month, "status": "AT_RISK"}))[1]["budgets"]
    counts = dict.fromkeys(("OK", "AT_RISK", "EXCEEDED"), 0)
    for node in everything["nodes"]:
        counts[node["status"]] += 1
    print(
        f"as of {now.date()} (month {month['from']} to {month['to']}):"
        f" {everything['totalCount']} budgets, {counts}"
    )
    print(
        f"query: cold {cold:.0f} ms (makes {now.day + 35} days present), warm median {sorted(warm)[2]:.0f} ms"
    )
    header = "| entity | id | name | duration | limit | spend | share | $/day | period | run-out |"
    for title, page in (("Exceeded", exceeded), ("Projected to run out", at_risk)):
        print(f"\n{title} ({page['totalCount']}):\n\n{header}\n|---|---|---|---|---|---|---|---|---|---|")
        for n in page["nodes"]:
            print(
                f"| {n['entity']} | {n['id']} | {n['name'] or ''} | {n['duration'] or 'lifetime'}"
                f" | {n['limit']:,.2f} | {n['spend']:,.2f} | {n['shareUsed']:.0%} | {n['dailyRate']:,.2f} |"
                f" {n['periodFrom']} – {n['periodTo']} | {n['projectedRunOut']} |"
            )


def main() -> None:
    demo_main(measure, __doc__ or "")


if __name__ == "__main__":
    main()
