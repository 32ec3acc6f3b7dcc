"""Budgets on the demo data (issue 17 item 1): "who will run out of budget this month, and when?".

    .venv/bin/python -m bench.budgets_demo [--seed 7]

Starts a private PostgreSQL and the LiteLLM-compatible server with the demo data set as ``make demo``
does (directory and budgets filled as the demo fills them), opens the gateway in this process on the
demo's clock (today, 12:00 UTC), asks ``usage.budgets`` for this month (1st to today) and prints the
budgets that are exceeded or projected to run out, and the time of the query (cold: it makes the days
present; then warm, answer cache off).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime
from datetime import time as clock_time
from typing import Any

import httpx

from usage_gateway.devtools.demo import fill_directory
from usage_gateway.devtools.demo_data import generate
from usage_gateway.devtools.litellm_compat import MASTER_KEY, LiteLLMStore, running_litellm
from usage_gateway.devtools.local_services import LocalPostgres
from usage_gateway.migrations import apply_migrations
from usage_gateway.resolvers.viewer import Role
from usage_gateway.server.app import create_app
from usage_gateway.server.config import Settings
from usage_gateway.server.resources import Resources
from usage_gateway.server.tokens import issue_token

SECRET = "bench-secret-" + "0123456789abcdef" * 4
QUERY = """query($f: UsageFilter!, $status: BudgetStatus) {
  usage(filter: $f) { budgets(first: 500, status: $status) {
    totalCount nodes { entity id name limit duration periodFrom periodTo spend shareUsed dailyRate
                       projectedRunOut status complete } } } }"""


async def ask(http: httpx.AsyncClient, token: str, variables: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    began = time.perf_counter()
    response = await http.post(
        "/graphql",
        json={"query": QUERY, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    ms = (time.perf_counter() - began) * 1000
    body = response.json()
    if response.status_code != 200 or "errors" in body:
        raise RuntimeError(str(body)[:500])
    return ms, body["data"]["usage"]["budgets"]


async def measure(database_url: str, litellm_url: str, now: datetime) -> None:
    settings = Settings(
        database_url=database_url,
        litellm_url=litellm_url,
        litellm_master_key=MASTER_KEY,
        jwt_secret=SECRET,
        answer_cache_ttl_seconds=0,
        rate_limit_cost=0,
    )
    resources = await Resources.open(settings, clock=lambda: now)
    app = create_app(resources.settings, resources=resources)
    token = issue_token(SECRET, "bench", [Role.ADMIN])
    month = {"from": now.date().replace(day=1).isoformat(), "to": now.date().isoformat()}
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
            cold, everything = await ask(http, token, {"f": month})
            warm = [(await ask(http, token, {"f": month}))[0] for _ in range(5)]
            _, exceeded = await ask(http, token, {"f": month, "status": "EXCEEDED"})
            _, at_risk = await ask(http, token, {"f": month, "status": "AT_RISK"})
    finally:
        await resources.close()
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    data = generate(args.seed)
    now = datetime.combine(datetime.now(UTC).date(), clock_time(12), UTC)
    postgres = LocalPostgres().start()
    try:
        apply_migrations(postgres.url)
        fill_directory(postgres.url, data)
        store = LiteLLMStore(data.keys, data.users, data.rows, master_key=MASTER_KEY, tag_rows=data.tag_rows)
        store.set_teams(data.teams)
        with running_litellm(store) as litellm_url:
            asyncio.run(measure(postgres.url, litellm_url, now))
    finally:
        postgres.stop()


if __name__ == "__main__":
    main()
