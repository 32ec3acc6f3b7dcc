"""``byTeam`` with and without the team rollups of migration 0013, on the reference data set.

``python -m bench.team_rollups`` fills a fresh PostgreSQL with ``--days`` days of the reference data set,
scatters 70 % of its keys over 150 team ids (the rest in no team), then times one ``byTeam`` page (50
nodes, by spend) and, for scale, one ``byUser`` page over the last 30 and 90 days. Each round times the
same query read both ways, alternating, so the machine's load falls on both alike: "facts" groups
``usage_facts`` as before migration 0013, "rollups" reads the team day and month rollups. It prints the
medians and their ratio, and checks that both ways give the same page.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from unittest import mock

import psycopg

from bench.reference_data import ReferenceData, Scale, fill_gateway
from usage_gateway.datasources.db import Database
from usage_gateway.datasources.facts import aggregates, grain
from usage_gateway.datasources.facts.vocabulary import Dimension, FactFilter, Order
from usage_gateway.devtools.local_services import running_postgres
from usage_gateway.migrations import apply_migrations

TEAMS = 150
NO_TEAM_SHARE = 3  # keys numbered 0..2 mod 10 have no team

# Key n's team: a fixed scatter of the key numbers over the teams, none for 30 % of keys.
_ASSIGN_TEAMS = f"""
UPDATE api_keys SET team_id = CASE WHEN substr(id, 5)::int % 10 < {NO_TEAM_SHARE} THEN NULL
    ELSE 'team-' || lpad(((substr(id, 5)::int * 7919) % {TEAMS})::text, 3, '0') END
"""
# The fill writes keys and facts with COPY, so the teams are given to both here, from the start of time.
_ATTRIBUTE = (
    "UPDATE api_key_teams t SET team_id = k.team_id FROM api_keys k WHERE k.token_hash = t.token_hash",
    "UPDATE usage_facts f SET team_id = coalesce(k.team_id, 'no-team') FROM api_keys k"
    " WHERE k.token_hash = f.api_key",
)


@contextmanager
def without_team_rollups() -> Iterator[None]:
    """Reads as before migration 0013: no team rollup is offered to the query builders."""
    days = tuple(r for r in aggregates._ROLLUPS if Dimension.TEAM not in r[0])
    months = tuple(r for r in grain.MONTH_ROLLUPS if Dimension.TEAM not in r.dimensions)
    with mock.patch.object(aggregates, "_ROLLUPS", days), mock.patch.object(grain, "MONTH_ROLLUPS", months):
        yield


async def _page_ms(db: Database, f: FactFilter, dimension: Dimension) -> tuple[float, object]:
    began = time.perf_counter()
    page = await aggregates.breakdown(
        db, f, dimension, order=Order(), first=50, after=None, active_counts=False
    )
    return (time.perf_counter() - began) * 1000, page


async def measure(url: str, scale: Scale, rounds: int) -> None:
    db = await Database.open(url, max_size=2)
    try:
        for span in (30, 90):
            f = FactFilter(date_from=scale.last_day - timedelta(days=span - 1), date_to=scale.last_day)
            before: list[float] = []
            after: list[float] = []
            users: list[float] = []
            for _ in range(rounds):
                with without_team_rollups():
                    ms, old_page = await _page_ms(db, f, Dimension.TEAM)
                before.append(ms)
                ms, new_page = await _page_ms(db, f, Dimension.TEAM)
                after.append(ms)
                if new_page != old_page:
                    raise SystemExit(f"{span} days: the rollups' page differs from the facts' page")
                users.append((await _page_ms(db, f, Dimension.USER))[0])
            old, new = statistics.median(before), statistics.median(after)
            print(
                f"{span:>3} days  byTeam from facts {old:8.1f} ms   from rollups {new:7.1f} ms"
                f"   ratio {old / new:5.1f}x   (byUser {statistics.median(users):6.1f} ms;"
                f" medians of {rounds})"
            )
    finally:
        await db.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.team_rollups", description=__doc__)
    parser.add_argument("--days", type=int, default=92, help="days of the reference data set to fill")
    parser.add_argument("--rounds", type=int, default=9, help="timed rounds per range")
    args = parser.parse_args(argv)
    scale = Scale(days=args.days)
    with running_postgres() as pg:
        apply_migrations(pg.url)
        began = time.perf_counter()
        facts = fill_gateway(pg.url, ReferenceData(scale))
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute(_ASSIGN_TEAMS)
            for statement in _ATTRIBUTE:
                conn.execute(statement)
            conn.execute("VACUUM (ANALYZE)")
            row = conn.execute("SELECT count(DISTINCT team_id) FROM usage_team_days").fetchone()
        teams = row[0] if row else 0
        print(
            f"reference data: {facts:,} facts over {args.days} days to {scale.last_day}, {teams} teams"
            f" (no-team included); filled in {time.perf_counter() - began:.0f} s"
        )
        asyncio.run(measure(pg.url, scale, args.rounds))


if __name__ == "__main__":
    main()
