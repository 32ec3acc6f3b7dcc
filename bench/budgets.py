"""``Usage.budgets`` on the reference data set (issue 17 item 1): server time when every user and every key
has a budget (10,000 + 30,000 budgets by default), warm (every day stored, answer cache off).

    .venv/bin/python -m bench.budgets [--users 10000] [--repeat 5]

Starts a private PostgreSQL, fills the reference data set's last 45 days (the month of the as-of day,
the 35 days the rate looks back), gives every user a monthly budget ("1mo") and every key a weekly one
("7d", resetting on Mondays), each at its recent spend, then times ``budgets(first: 50)`` as an admin
(every budget is judged to order them) and with ``status: AT_RISK``; deletes it all at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import psycopg

from bench import cluster
from bench.gateway import open_gateway
from bench.reference_data import Scale
from bench.report import median
from usage_gateway.devtools.local_services import LocalPostgres, LocalRedis

FILLED_DAYS = 45
QUERY = """query($f: UsageFilter!, $status: BudgetStatus) {
  usage(filter: $f) { budgets(first: 50, status: $status) {
    totalCount nodes { entity id spend shareUsed dailyRate projectedRunOut status } } } }"""

# Every user a monthly budget, every key a weekly one, each near its spend over the last 28 days.
_BUDGETS = """
INSERT INTO budgets (entity, entity_id, max_budget, budget_duration)
SELECT 'USER', u.id, round(greatest(coalesce(s.spend, 0), 1) * (0.5 + random() * 2)::numeric, 2), '1mo'
  FROM users u LEFT JOIN (SELECT user_id, sum(spend) AS spend FROM usage_facts
                           WHERE date > %(last)s::date - 28 GROUP BY 1) s ON s.user_id = u.id
UNION ALL
SELECT 'API_KEY', k.token_hash,
       round(greatest(coalesce(s.spend, 0) / 4, 0.5) * (0.5 + random() * 2)::numeric, 2), '7d'
  FROM api_keys k LEFT JOIN (SELECT api_key, sum(spend) AS spend FROM usage_facts
                              WHERE date > %(last)s::date - 28 GROUP BY 1) s ON s.api_key = k.token_hash
"""


def fill(pg: LocalPostgres, scale: Scale) -> tuple[str, float, int]:
    began = time.perf_counter()
    url = cluster.fill(pg, "budgets", scale, FILLED_DAYS).url
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT setseed(0.5)")
        budgets = conn.execute(_BUDGETS, {"last": scale.last_day}).rowcount
        facts = conn.execute("SELECT count(*) FROM usage_facts").fetchone()
        conn.execute("VACUUM (ANALYZE)")
    print(f"{facts[0] if facts else 0:,} facts, {budgets:,} budgets")
    return url, time.perf_counter() - began, budgets


async def measure(url: str, redis_url: str, scale: Scale, repeat: int) -> None:
    last = scale.last_day
    f = {"from": last.replace(day=1).isoformat(), "to": last.isoformat()}
    async with open_gateway(url, redis_url, last, answer_cache=False) as gateway:
        for status in (None, "AT_RISK"):
            variables = {"f": f, "status": status}
            await gateway.ask(QUERY, variables)
            answers = [await gateway.ask(QUERY, variables) for _ in range(repeat)]
            found = answers[-1].data["usage"]["budgets"]
            print(
                f"status {status or 'any':<8} median {median([a.ms for a in answers]):>8.0f} ms,"
                f" min {min(a.ms for a in answers):>8.0f} ms, totalCount {found['totalCount']:,},"
                f" first {found['nodes'][:1]}"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.budgets", description=__doc__)
    parser.add_argument("--repeat", type=int, default=5, help="timed requests per figure (default 5)")
    parser.add_argument(
        "--users", type=int, default=Scale.users, help="users (default 10000), keys 3 × as many"
    )
    args = parser.parse_args(argv)
    scale = Scale(users=args.users, keys=3 * args.users)
    redis = LocalRedis().start()
    pg = LocalPostgres().start()
    try:
        url, seconds, _ = fill(pg, scale)
        print(f"filled {FILLED_DAYS} days of {scale.users:,} users in {seconds:.0f} s")
        print(f"as of {scale.last_day}, budgets(first: 50), median of {args.repeat} requests (server time):")
        asyncio.run(measure(url, redis.url, scale, args.repeat))
    finally:
        pg.stop()
        redis.stop()


if __name__ == "__main__":
    main()
