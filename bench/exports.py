"""Exports: ``usage-gateway export`` of date × user × key × model × provider rows (CSV, Parquet and XLSX in
the reference plan) over a quarter and over a year, each in a fresh process: its wall time and peak RSS
(the child's own ``VmHWM``).

Baseline of the time: Postgres alone streaming the same rows — the export's own query and COPY statement
(``copy_statement(export_query(…))``), over a session with the gateway pool's options (work_mem, jit…),
read by a sync client loop that keeps nothing — timed right before each export, so that both meet the
same load. The export does more: a fresh process, the day check, the count of its rows, the file. Target:
the year's export within 1.3× its COPY. Baseline of the memory: the same export over the shorter range —
flat memory means the year costs no more than the quarter. ``--export-formats`` (any of the CLI's: JSON
and NDJSON too) and ``--export-days`` change the plan's."""

from __future__ import annotations

import asyncio
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
from typing import Any

import psycopg

from bench.gateway import BenchError
from bench.plan import Plan
from bench.queries import last_days
from bench.report import Figure, Target, median, ratio
from usage_gateway.datasources.db import Database
from usage_gateway.datasources.exports.query import ALL_DIMENSIONS, copy_statement, count_query, export_query
from usage_gateway.datasources.facts.vocabulary import FactFilter

log = logging.getLogger(__name__)
_WRITTEN = re.compile(r": (\d+) rows, (\d+) bytes")
TARGET_RATIO = 1.3  # the year's export ÷ its COPY


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


def gateway_session(database_url: str) -> dict[str, Any]:
    """The connection arguments of the gateway's pool (autocommit, session options)."""

    async def read() -> dict[str, Any]:
        db = await Database.open(database_url, min_size=0, max_size=1)
        try:
            kwargs = db.pool.kwargs
        finally:
            await db.close()
        if not isinstance(kwargs, dict):
            raise BenchError(f"the gateway's pool takes its connection arguments from {kwargs!r}")
        return kwargs

    return asyncio.run(read())


def bare_copy(database_url: str, session: dict[str, Any], first: date, last: date) -> tuple[float, int]:
    """Seconds for Postgres to stream the export's rows as the export's COPY, and the rows (COPY's own
    count, checked against the export's count query)."""
    f = FactFilter(first, last)
    query, params = export_query(f, ALL_DIMENSIONS)
    counting, count_params = count_query(f, ALL_DIMENSIONS)
    with psycopg.connect(database_url, **session) as conn:
        row = conn.execute(counting, count_params).fetchone()
        began = time.perf_counter()
        lines = 0
        with conn.cursor() as cursor, cursor.copy(copy_statement(query), params) as copy:
            for _line in copy:
                lines += 1
        seconds = time.perf_counter() - began
    if row is None or int(row[0]) != lines:
        raise BenchError(f"COPY streamed {lines} rows, the count query says {row}")
    return seconds, lines


def export_figures(plan: Plan, database_url: str) -> list[Figure]:
    ranges = [last_days(plan.last_day, days) for days in plan.export_days]
    session = gateway_session(database_url)
    copies: dict[tuple[str, int], list[float]] = {}
    runs: dict[tuple[str, int], list[ExportRun]] = {}
    expected: dict[int, int] = {}
    with tempfile.TemporaryDirectory(prefix="ug-bench-export-") as tmp:
        for _ in range(plan.slow_repeat):
            for days, (first, last) in zip(plan.export_days, ranges, strict=True):
                for fmt in plan.export_formats:
                    copy_seconds, expected[days] = bare_copy(database_url, session, first, last)
                    run = run_export(database_url, fmt, first, last, Path(tmp))
                    if run.rows != expected[days]:
                        raise BenchError(
                            f"export {fmt} wrote {run.rows} rows, the query has {expected[days]}"
                        )
                    copies.setdefault((fmt, days), []).append(copy_seconds)
                    runs.setdefault((fmt, days), []).append(run)
                    log.info(
                        "export %s %d d: %d rows, %.1f s = %.2f× its COPY (%.1f s), peak RSS %.0f MiB",
                        *(fmt, days, run.rows, run.seconds, run.seconds / copy_seconds, copy_seconds),
                        run.peak_rss_mib,
                    )
    figures = []
    year, quarter = plan.export_days[-1], plan.export_days[0]
    reference_scale = plan.name == "reference"
    for fmt in plan.export_formats:
        for days in plan.export_days:
            timed, copied = runs[(fmt, days)], copies[(fmt, days)]
            value, baseline = median([r.seconds for r in timed]), median(copied)
            figures.append(
                Figure(
                    group="export",
                    name=f"export {fmt}, {days} d, {expected[days]:,} rows: time",
                    unit="s",
                    value=value,
                    baseline=baseline,
                    baseline_name="COPY of the same rows, just before",
                    ratio=ratio(value, baseline),
                    ratio_means="export ÷ COPY",
                    # At smoke scale the process's start (a second) is the whole export: no target.
                    target=Target("ratio", "<=", TARGET_RATIO) if days == year and reference_scale else None,
                    repeats=len(timed),
                    samples={"seconds": [r.seconds for r in timed], "copy_seconds": copied},
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
