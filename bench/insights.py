"""Anomalies and top movers on the reference data set (issue 17 items 3 and 4): server time of
``Usage.anomalies`` and ``Usage.movers`` over the last 30 days, per dimension, warm (every day stored,
answer cache off).

    .venv/bin/python -m bench.insights                     # fills the 60 days it reads (about a minute)
    .venv/bin/python -m bench.insights --database-url URL  # a database filled by bench.run (every day)

Without ``--database-url`` it starts a private PostgreSQL, fills the reference data set's last 60 days
(10,000 users, 30,000 keys, 150 models: the 30-day range, its 28-day baselines and the previous period
of the movers), and deletes it all at the end.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta
from typing import Any

from bench import cluster
from bench.gateway import open_gateway
from bench.reference_data import Scale
from bench.report import median
from usage_gateway.devtools.local_services import LocalPostgres, LocalRedis

RANGE_DAYS = 30
FILLED_DAYS = 60  # the range, and before it the longer of the baselines (28 days) and the previous period

ANOMALIES = """query($f: UsageFilter!, $d: AnomalyDimension!) {
  usage(filter: $f) { anomalies(dimension: $d, first: 50) {
    totalCount complete nodes { id date metric value baseline spread size } } } }"""
MOVERS = """query($f: UsageFilter!, $d: MoverDimension!) {
  usage(filter: $f) { movers(dimension: $d, first: 20) {
    totalCount nodes { id current previous change status } } } }"""


def fill(pg: LocalPostgres, scale: Scale) -> tuple[str, float]:
    """A migrated database holding the data set's last FILLED_DAYS days, and the seconds filling took."""
    filled = cluster.fill(pg, "insights", scale, FILLED_DAYS)
    return filled.url, filled.fill_seconds


async def measure(url: str, redis_url: str, scale: Scale, repeat: int) -> list[dict[str, Any]]:
    last = scale.last_day
    f = {"from": (last - timedelta(days=RANGE_DAYS - 1)).isoformat(), "to": last.isoformat()}
    rows = []
    async with open_gateway(url, redis_url, last, answer_cache=False) as gateway:
        for field, query, dimensions in (
            ("anomalies", ANOMALIES, ("USER", "API_KEY", "MODEL", "TEAM")),
            ("movers", MOVERS, ("USER", "API_KEY", "MODEL", "PROVIDER", "TEAM")),
        ):
            for dimension in dimensions:
                variables = {"f": f, "d": dimension}
                await gateway.ask(query, variables)  # warm the pool and Postgres' buffers
                answers = [await gateway.ask(query, variables) for _ in range(repeat)]
                found = answers[-1].data["usage"][field]
                rows.append({
                    "field": field,
                    "dimension": dimension,
                    "median_ms": median([a.ms for a in answers]),
                    "min_ms": min(a.ms for a in answers),
                    "total_count": found["totalCount"],
                    "top": found["nodes"][:1],
                })  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.insights", description=__doc__)
    parser.add_argument("--database-url", help="a migrated database holding the reference data set")
    parser.add_argument("--repeat", type=int, default=5, help="timed requests per figure (default 5)")
    parser.add_argument(
        "--users", type=int, default=Scale.users, help="users (default 10000), keys 3 × as many"
    )
    args = parser.parse_args(argv)
    scale = Scale(users=args.users, keys=3 * args.users)
    redis = LocalRedis().start()
    pg = None
    try:
        url = args.database_url
        if url is None:
            pg = LocalPostgres().start()
            url, seconds = fill(pg, scale)
            print(f"filled {FILLED_DAYS} days of {scale.users:,} users in {seconds:.0f} s")
        rows = asyncio.run(measure(url, redis.url, scale, args.repeat))
    finally:
        if pg is not None:
            pg.stop()
        redis.stop()
    print(f"{RANGE_DAYS}-day range ending {scale.last_day}, median of {args.repeat} requests (server time)")
    print(f"{'field':<10} {'dimension':<10} {'median ms':>10} {'min ms':>8} {'totalCount':>11}  first node")
    for row in rows:
        print(
            f"{row['field']:<10} {row['dimension']:<10} {row['median_ms']:>10.1f} {row['min_ms']:>8.1f}"
            f" {row['total_count']:>11}  {row['top']}"
        )


if __name__ == "__main__":
    main()
