"""Time and peak memory of a one-year export, per format, at two sizes: is memory flat?

Starts a private PostgreSQL, fills one database per size with a year of facts (days × keys × 3 model /
provider pairs per key, two keys per user, a directory with names), then runs ``write_export`` over the
whole year grouped by all five dimensions, once per format, each in a fresh process so that peaks do not
mix. Peak RSS is the child's ``ru_maxrss``; ``baseline`` is a child that imports and connects but exports
nothing. Run: ``.venv/bin/python bench/export_memory.py [--sizes 100000,400000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import psycopg

from usage_gateway.devtools.local_services import LocalPostgres
from usage_gateway.migrations import apply_migrations

YEAR = (date(2025, 1, 1), date(2025, 12, 31))
PAIRS_PER_KEY = 3
FORMATS = ("baseline", "CSV", "JSON", "NDJSON", "XLSX", "PARQUET")

_SEED = """
INSERT INTO users (id, username, email, role)
SELECT 'user-' || u, 'User ' || u, 'user' || u || '@example.test', 'internal_user'
  FROM generate_series(0, %(users)s - 1) u;
INSERT INTO api_keys (id, user_id, name, key_alias, token_hash, litellm_user_id)
SELECT 'key-' || k, 'user-' || (k / 2), 'sk-...' || k, 'alias-' || k,
       encode(sha256(('key-' || k)::bytea), 'hex'), 'user-' || (k / 2)
  FROM generate_series(0, %(keys)s - 1) k;
WITH pairs (n, model, provider) AS (VALUES
    (0, 'gpt-4o', 'openai'), (1, 'gpt-4o', 'azure'), (2, 'gpt-4o-mini', 'openai'),
    (3, 'claude-sonnet-4', 'anthropic'), (4, 'claude-sonnet-4', 'bedrock'), (5, 'llama-3.3-70b', 'groq'),
    (6, 'gemini-2.5-pro', 'vertex_ai'), (7, 'mistral-large', 'mistral'))
INSERT INTO usage_facts
SELECT d::date, encode(sha256(('key-' || k)::bytea), 'hex'), 'user-' || (k / 2), p.model, p.provider,
       'user-' || (k / 2), round((random() * 0.8)::numeric, 12),
       r * 700, r * 300, r * 50, r * 10, r * 1060, r, r - r / 20, r / 20, r * 900, r
  FROM generate_series(%(start)s::date, %(end)s::date, interval '1 day') d
 CROSS JOIN generate_series(0, %(keys)s - 1) k
 CROSS JOIN LATERAL (SELECT 1 + (abs(hashtext(d::text || k)) %% 40) AS r) counts
  JOIN pairs p ON p.n IN (k %% 8, (k + 3) %% 8, (k + 5) %% 8);
ANALYZE;
"""


def seed(url: str, facts: int) -> int:
    days = (YEAR[1] - YEAR[0]).days + 1
    keys = max(2, round(facts / (days * PAIRS_PER_KEY)))
    with psycopg.connect(url, autocommit=True) as conn:
        params = {"users": (keys + 1) // 2, "keys": keys, "start": YEAR[0], "end": YEAR[1]}
        for statement in filter(str.strip, _SEED.split(";")):
            conn.execute(
                statement, {name: value for name, value in params.items() if f"%({name})s" in statement}
            )
        row = conn.execute("SELECT count(*) FROM usage_facts").fetchone()
    return int(row[0]) if row else 0


async def child(url: str, fmt: str, out: Path) -> dict[str, object]:
    from usage_gateway.datasources.db import Database
    from usage_gateway.datasources.exports.records import ALL_DIMENSIONS, ExportFormat, write_export
    from usage_gateway.datasources.facts.vocabulary import FactFilter

    db = await Database.open(url, max_size=2)
    try:
        started = time.perf_counter()
        rows = size = 0
        if fmt != "baseline":
            written = await write_export(db, FactFilter(*YEAR), ExportFormat(fmt), ALL_DIMENSIONS, out)
            rows, size = written.rows, written.byte_size
        seconds = time.perf_counter() - started
    finally:
        await db.close()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {"format": fmt, "rows": rows, "bytes": size, "seconds": seconds, "peak_rss_mib": peak_mib}


def measure(url: str, fmt: str, out_dir: Path) -> dict[str, object]:
    out = out_dir / f"export.{fmt.lower()}"
    result = subprocess.run(
        [sys.executable, __file__, "--child", url, fmt, str(out)],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    out.unlink(missing_ok=True)
    measured: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,400000", help="facts per database, comma separated")
    parser.add_argument("--child", nargs=3, metavar=("URL", "FORMAT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, fmt, out = args.child
        print(json.dumps(asyncio.run(child(url, fmt, Path(out)))))
        return
    sizes = [int(size) for size in args.sizes.split(",")]
    server = LocalPostgres().start()
    try:
        print(f"{'facts':>8} {'format':>9} {'rows':>8} {'MiB':>8} {'seconds':>8} {'peak RSS MiB':>13}")
        with tempfile.TemporaryDirectory(prefix="ug-export-bench-") as tmp:
            for size in sizes:
                name = f"bench_{size}"
                with psycopg.connect(server.url, autocommit=True) as conn:
                    conn.execute(f"CREATE DATABASE {name}")
                url = server.url_for(name)
                apply_migrations(url)
                facts = seed(url, size)
                for fmt in FORMATS:
                    m = measure(url, fmt, Path(tmp))
                    mib = int(str(m["bytes"])) / 2**20
                    print(
                        f"{facts:>8} {fmt:>9} {m['rows']:>8} {mib:>8.1f} {float(str(m['seconds'])):>8.2f}"
                        f" {float(str(m['peak_rss_mib'])):>13.1f}",
                        flush=True,
                    )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
