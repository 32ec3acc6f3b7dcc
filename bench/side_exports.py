"""Exports by model group against exports of usage facts, on the reference data set.

``python -m bench.side_exports`` fills a fresh PostgreSQL with ``--days`` days of the reference data set and
derives their model-group parts (``usage_breakdown_facts``) from the facts as LiteLLM would roll them up:
one part per day, key bucket and model, the group a model's family (its name up to the first ``-``). Then
it writes CSV exports with ``write_export`` and prints the median time of each grouping, alternating them
round by round so the machine's load falls on all alike: ``MODEL`` and ``USER`` (usage facts, the
baselines), ``MODEL_GROUP`` (the parts alone), ``MODEL_GROUP, USER`` (the parts joined with each key
bucket's users of the day) and ``DATE, API_KEY, MODEL_GROUP`` (the finest). It checks that the model-group
export's spend adds up to the facts'.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import psycopg

from bench.reference_data import ReferenceData, Scale, fill_gateway
from usage_gateway.datasources.db import Database
from usage_gateway.datasources.exports.query import ExportDimension as D
from usage_gateway.datasources.exports.records import ExportFormat, write_export
from usage_gateway.datasources.facts.vocabulary import FactFilter
from usage_gateway.devtools.local_services import running_postgres
from usage_gateway.migrations import apply_migrations

GROUPINGS = {
    "MODEL": (D.MODEL,),
    "USER": (D.USER,),
    "MODEL_GROUP": (D.MODEL_GROUP,),
    "MODEL_GROUP, USER": (D.MODEL_GROUP, D.USER),
    "DATE, API_KEY, MODEL_GROUP": (D.DATE, D.API_KEY, D.MODEL_GROUP),
}
_PARTS = """
INSERT INTO usage_breakdown_facts
SELECT date, 'model_group', split_part(model, '-', 1), api_key, model, sum(spend), sum(prompt_tokens),
       sum(completion_tokens), sum(cache_read_input_tokens), sum(cache_creation_input_tokens),
       sum(total_tokens), sum(api_requests), sum(successful_requests), sum(failed_requests),
       sum(total_response_time_ms), sum(timed_requests)
  FROM usage_facts GROUP BY date, api_key, model
"""


async def measure(url: str, f: FactFilter, rounds: int, folder: Path) -> None:
    db = await Database.open(url, max_size=2)
    try:
        seconds: dict[str, list[float]] = {name: [] for name in GROUPINGS}
        rows: dict[str, int] = {}
        for _ in range(rounds):
            for name, group_by in GROUPINGS.items():
                path = folder / f"{name.replace(', ', '-')}.csv"
                began = time.perf_counter()
                written = await write_export(db, f, ExportFormat.CSV, group_by, path)
                seconds[name].append(time.perf_counter() - began)
                rows[name] = written.rows
        with (folder / "MODEL_GROUP.csv").open(newline="") as file:
            spend = sum((Decimal(row["spend"]) for row in csv.DictReader(file)), Decimal(0))
        found = await db.fetch_one("SELECT sum(spend) FROM usage_facts")
        if found is None or spend != found[0]:
            raise SystemExit(f"the model-group export's spend {spend} is not the facts' {found}")
        for name in GROUPINGS:
            print(f"{name:<28} {rows[name]:>9,} rows  {statistics.median(seconds[name]) * 1000:8.0f} ms")
        print(f"(CSV, medians of {rounds}; model-group spend = facts' spend = {spend})")
    finally:
        await db.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.side_exports", description=__doc__)
    parser.add_argument("--days", type=int, default=30, help="days of the reference data set to fill")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per grouping")
    args = parser.parse_args(argv)
    scale = Scale(days=args.days)
    with running_postgres() as pg, tempfile.TemporaryDirectory() as folder:
        apply_migrations(pg.url)
        facts = fill_gateway(pg.url, ReferenceData(scale))
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute(_PARTS)
            conn.execute("VACUUM (ANALYZE)")
            row = conn.execute("SELECT count(*) FROM usage_breakdown_facts").fetchone()
        parts = row[0] if row else 0
        print(f"reference data: {facts:,} facts, {parts:,} model-group parts over {args.days} days")
        f = FactFilter(scale.first_day, scale.last_day)
        asyncio.run(measure(pg.url, f, args.rounds, Path(folder)))


if __name__ == "__main__":
    main()
