"""Exports: ``usage-gateway export`` of date × user × key × model × provider rows, CSV and Parquet, over a
quarter and over a year, each in a fresh process: its wall time and peak RSS (the child's own
``VmHWM``). Baseline of the time: Postgres alone streaming the same rows as CSV (``COPY (the export's
query) TO STDOUT``). Baseline of the memory: the same export over the shorter range — flat memory means
the year costs no more than the quarter. ``--export-formats`` (any of the CLI's: JSON, NDJSON and XLSX
too) and ``--export-days`` change the plan's."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg
from psycopg import sql

from bench.gateway import BenchError
from bench.plan import Plan
from bench.queries import last_days
from bench.report import Figure, Target, median, ratio
from usage_gateway.datasources.exports.query import ALL_DIMENSIONS, count_query, export_query
from usage_gateway.datasources.facts.vocabulary import FactFilter

log = logging.getLogger(__name__)
_WRITTEN = re.compile(r": (\d+) rows, (\d+) bytes")


@dataclass(frozen=True)
class ExportRun:
    seconds: float
    peak_rss_mib: float
    rows: int
    bytes: int


# The CLI, which on exit writes its peak RSS (VmHWM, KiB) to $BENCH_PEAK_RSS_FILE. Not ru_maxrss: the child
# inherits the high-water mark of the memory it was forked with (this large process) across exec.
_CHILD = """
import atexit, os, re

def _peak():
    status = open("/proc/self/status").read()
    with open(os.environ["BENCH_PEAK_RSS_FILE"], "w") as out:
        out.write(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1))

atexit.register(_peak)
from usage_gateway.server.cli import main
main()
"""


def run_export(database_url: str, fmt: str, first: date, last: date, workdir: Path) -> ExportRun:
    """``usage-gateway export`` in a fresh process (no Redis, no LiteLLM: the stored days)."""
    out, peak = workdir / f"export.{fmt.lower()}", workdir / "peak-rss-kib"
    env = {
        **os.environ,
        "USAGE_GATEWAY_DATABASE_URL": database_url,
        "USAGE_GATEWAY_REDIS_URL": "",
        "USAGE_GATEWAY_LITELLM_URL": "",
        "USAGE_GATEWAY_LOG_LEVEL": "WARNING",
        "BENCH_PEAK_RSS_FILE": str(peak),
    }
    command = [sys.executable, "-c", _CHILD, "export", "--from", first.isoformat(), "--to", last.isoformat()]
    command += ["--format", fmt, "--out", str(out)]
    began = time.perf_counter()
    # cwd: the work directory, so that a developer's .env is not read.
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=workdir, check=False)
    seconds = time.perf_counter() - began
    out.unlink(missing_ok=True)
    written = _WRITTEN.search(done.stdout)
    if done.returncode != 0 or written is None or not peak.exists():
        output = (done.stdout + done.stderr)[-1000:]
        raise BenchError(f"usage-gateway export {fmt} failed ({done.returncode}): {output}")
    peak_mib = int(peak.read_text()) / 1024
    peak.unlink()
    return ExportRun(seconds, peak_mib, int(written.group(1)), int(written.group(2)))


def bare_copy(database_url: str, first: date, last: date) -> tuple[float, int]:
    """Seconds for Postgres to stream the export's rows as CSV, and the rows (from its count query)."""
    f = FactFilter(first, last)
    query, params = export_query(f, ALL_DIMENSIONS)
    counting, count_params = count_query(f, ALL_DIMENSIONS)
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(counting, count_params).fetchone()
        began = time.perf_counter()
        with conn.cursor() as cursor:
            statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(query)
            with cursor.copy(statement, params) as copy:
                for _block in copy:
                    pass
        return time.perf_counter() - began, int(row[0]) if row else 0


def export_figures(plan: Plan, database_url: str) -> list[Figure]:
    ranges = [last_days(plan.last_day, days) for days in plan.export_days]
    copies: dict[int, list[float]] = {days: [] for days in plan.export_days}
    runs: dict[tuple[str, int], list[ExportRun]] = {}
    expected: dict[int, int] = {}
    with tempfile.TemporaryDirectory(prefix="ug-bench-export-") as tmp:
        for _ in range(plan.slow_repeat):
            for days, (first, last) in zip(plan.export_days, ranges, strict=True):
                seconds, expected[days] = bare_copy(database_url, first, last)
                copies[days].append(seconds)
                for fmt in plan.export_formats:
                    run = run_export(database_url, fmt, first, last, Path(tmp))
                    if run.rows != expected[days]:
                        raise BenchError(
                            f"export {fmt} wrote {run.rows} rows, the query has {expected[days]}"
                        )
                    runs.setdefault((fmt, days), []).append(run)
                    shown = (fmt, days, run.rows, run.seconds, run.peak_rss_mib)
                    log.info("export %s %d d: %d rows, %.1f s, peak RSS %.0f MiB", *shown)
    figures = []
    year, quarter = plan.export_days[-1], plan.export_days[0]
    for fmt in plan.export_formats:
        for days in plan.export_days:
            timed = runs[(fmt, days)]
            value, baseline = median([r.seconds for r in timed]), median(copies[days])
            figures.append(
                Figure(
                    group="export",
                    name=f"export {fmt}, {days} d, {expected[days]:,} rows: time",
                    unit="s",
                    value=value,
                    baseline=baseline,
                    baseline_name="COPY of the rows",
                    ratio=ratio(value, baseline),
                    ratio_means="export ÷ COPY",
                    target=Target("value", "<", 10) if days == year else None,
                    repeats=len(timed),
                    samples={"seconds": [r.seconds for r in timed], "copy_seconds": copies[days]},
                    details={"rows": expected[days], "bytes": timed[-1].bytes, "days": days},
                )
            )
        big, small = runs[(fmt, year)], runs[(fmt, quarter)]
        value, baseline = median([r.peak_rss_mib for r in big]), median([r.peak_rss_mib for r in small])
        figures.append(
            Figure(
                group="export",
                name=f"export {fmt}, {year} d: peak RSS",
                unit="MiB",
                value=value,
                baseline=baseline,
                baseline_name=f"{quarter}-d export, {expected[year] / expected[quarter]:.1f}× fewer rows",
                ratio=ratio(value, baseline),
                ratio_means=f"peak RSS over {year} d ÷ over {quarter} d",
                target=Target("ratio", "<=", 1.25),
                repeats=len(big),
                samples={
                    f"peak_rss_mib_{year}d": [r.peak_rss_mib for r in big],
                    f"peak_rss_mib_{quarter}d": [r.peak_rss_mib for r in small],
                },
                details={"rows": {str(year): expected[year], str(quarter): expected[quarter]}},
            )
        )
    return figures
