"""CI smoke of ``bench/``: the reference data generator at smoke scale, and every benchmark run end to end
through the code ``python -m bench.run`` runs, so that neither can rot.

The figures themselves are not judged (CI machines vary); what is checked is what would be wrong on any
machine: every generated row reaches the database, the dashboard measured answers the SQL sums, the
statements per request do not grow with the nodes, the JSON carries a number for every figure.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bench.cluster import BenchCluster, fill
from bench.plan import GROUPS, Plan
from bench.reference_data import ReferenceData, Scale, fill_gateway
from bench.report import write_json
from bench.run import run_figures
from usage_gateway.devtools.local_services import LocalPostgres

# Smaller still than the smoke plan of `bench.run --scale smoke`: seconds, not a minute.
PLAN = replace(
    Plan.smoke(repeat=2),
    latency_ms=2.0,
    clients=(1, 2),
    min_requests=4,
    cache_requests=8,
    curve_days=(7, 14),
    export_formats=("PARQUET",),
    legacy_share=0.2,  # a few NULL-user rows (7 at this scale), so that the cold loads narrow by user
)
_numbers = itertools.count()


def _sums(url: str, first: object, last: object) -> tuple[int, int, Decimal]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*), sum(api_requests), sum(spend) FROM usage_facts WHERE date BETWEEN %s AND %s",
            (first, last),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), Decimal(row[2])


def test_generator_writes_every_row_it_generates(database_url: str) -> None:
    scale = Scale.smoke()
    data = ReferenceData(scale)
    rows = data.litellm_rows(range(scale.days))
    written = fill_gateway(database_url, data)
    assert written == len(rows) > 0
    facts, requests, _ = _sums(database_url, scale.first_day, scale.last_day)
    assert (facts, requests) == (len(rows), sum(row["api_requests"] for row in rows))
    with psycopg.connect(database_url) as conn:
        closed = conn.execute(
            "SELECT count(*) FROM usage_days WHERE status = 'closed' AND verified"
        ).fetchone()
    assert closed == (scale.days,)
    # Deterministic, and each day from its own stream: a day alone is the same day.
    assert ReferenceData(scale).litellm_rows([5]) == [r for r in rows if r["date"] == data.day(5).isoformat()]


@pytest.fixture
def smoke_cluster(postgres_server: LocalPostgres) -> Iterator[BenchCluster]:
    names = {"reference": f"bench_smoke_{next(_numbers)}", "small": f"bench_smoke_{next(_numbers)}"}
    scales = {"reference": PLAN.scale, "small": PLAN.small}
    try:
        datasets = {key: fill(postgres_server, names[key], scales[key]) for key in names}
        yield BenchCluster(postgres_server, datasets, reused=False)
    finally:
        with psycopg.connect(postgres_server.url, autocommit=True) as conn:
            for name in names.values():
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


async def test_every_benchmark_runs_and_reports_a_number(
    smoke_cluster: BenchCluster, redis_url: str, tmp_path: Path
) -> None:
    outcome = await run_figures(PLAN, smoke_cluster, redis_url, GROUPS)
    assert not outcome.failures, "\n".join(outcome.failures.values())
    path = tmp_path / "results.json"
    write_json(path, {"plan": PLAN.name}, outcome.figures)
    results = json.loads(path.read_text())["figures"]
    by_group: dict[str, list[dict[str, Any]]] = {}
    for figure in results:
        by_group.setdefault(figure["group"], []).append(figure)
        # A baseline of 0 has no ratio (e.g. the share timed out, when nothing timed out).
        numbers = ("value", "baseline") if figure["baseline"] == 0 else ("value", "baseline", "ratio")
        assert all(_numeric(figure[name]) for name in numbers), figure
        assert figure["samples"], figure
        assert all(all(map(_numeric, s)) for s in figure["samples"].values()), figure
    assert list(by_group) == list(GROUPS)
    # The loads, the cold dashboard, the gateway's CPU per row, then the day check, totals and daily
    # series warm.
    assert len(by_group["cold"]) == len(PLAN.cold_concurrency) + 1 + 1 + 3
    assert len(by_group["concurrency"]) == len(by_group["cache"]) == 2 * len(PLAN.clients)
    assert len(by_group["curves"]) == len(PLAN.curve_days) + 1
    url = smoke_cluster.datasets["reference"].url

    # The dashboard measured answers what the facts sum to.
    last = PLAN.scale.last_day
    _, requests, spend = _sums(url, last - timedelta(days=PLAN.dashboard_days - 1), last)
    totals = by_group["warm"][0]["details"]["totals"]
    assert totals["requests"] == requests
    assert totals["spend"] == pytest.approx(float(spend), rel=1e-9)
    assert by_group["warm"][0]["details"]["freshness"]["complete"]

    # Statements per request do not grow with the nodes.
    (statements,) = by_group["statements"]
    # The counts per node size and the statements' timings say which nested field split its batch.
    assert statements["passed"] is True, statements["details"]
    assert statements["details"]["statements"]["5"] == statements["details"]["statements"]["50"] > 0

    # The cold load fetched every page the baseline did, and more (narrowing, verification); every row of
    # the range arrived (bench/cold.py raises otherwise), the legacy NULL-user rows too, narrowed by user.
    cold = by_group["cold"][0]["details"]
    facts, _, _ = _sums(url, last - timedelta(days=PLAN.cold_days - 1), last)
    assert cold["litellm_rows"] == facts
    assert sum(cold["gateway_requests"].values()) >= cold["baseline_requests"] >= PLAN.cold_days
    assert cold["legacy_null_user_rows"] > 0
    assert cold["gateway_requests"].get("model=&user_id= pages", 0) > 0
    # The cold dashboard asked for the previous period too (bench/cold.py checks its sums and freshness).
    dashboard = by_group["cold"][len(PLAN.cold_concurrency)]
    assert "dashboard" in dashboard["name"]
    cpu = by_group["cold"][len(PLAN.cold_concurrency) + 1]
    assert cpu["unit"] == "µs", cpu
    assert cpu["value"] > 0, cpu
    assert cpu["baseline"] > 0, cpu
    assert sum(dashboard["details"]["gateway_requests"].values()) > sum(cold["gateway_requests"].values())
    assert [f["name"].split(": ", 1)[-1] for f in by_group["cold"][-3:]] == [
        f"{PLAN.cold_days}-d day check",
        f"{PLAN.cold_days}-d totals",
        f"{PLAN.cold_days}-d daily series",
    ]

    # Every export wrote one row per fact of its range (date × user × key × model × provider).
    for figure in by_group["export"]:
        if figure["name"].endswith(": time"):
            days = figure["details"]["days"]
            assert figure["details"]["rows"] == _sums(url, last - timedelta(days=days - 1), last)[0]

    # Shedding: the smoke plan's little capacity shed some requests at once, with a Retry-After; none timed
    # out, none failed; the baseline shed nothing.
    shedding = by_group["shedding"][0]["details"]
    assert shedding["shedding"]["shed"] > 0
    assert shedding["shedding"]["answered"] > 0
    assert shedding["shedding"]["retry_after_seconds"]["min"] >= 1
    assert shedding["shedding"]["timed_out"] == shedding["shedding"]["failed"] == 0
    assert shedding["baseline"]["shed"] == 0
    assert shedding["baseline"]["answered"] == shedding["baseline"]["requests"]
