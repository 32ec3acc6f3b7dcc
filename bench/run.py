"""The benchmark suite of issue 6 and DESIGN §10, in one command: ``python -m bench.run`` (``make bench``).

Each figure is measured in the same run as its baseline and reported as a ratio, with medians over
``--repeat`` repetitions (``--slow-repeat`` for the cold loads and the exports, a minute or more each at
reference scale). Prints a table; writes every raw sample to ``--json``. One module per benchmark:

- cold:        30-day load from a LiteLLM answering every page after 200 ms, against the same pages
               fetched one after another; the same as a cold dashboard through /graphql; then the day
               check, totals and daily series warm (bench/cold.py)
- warm:        the 90-day dashboard's server time against its own SQL run bare (bench/warm.py)
- concurrency: the same at 1, 10 and 50 concurrent clients, p50/p95 (bench/warm.py)
- cache:       the same answered from the Redis answer cache (bench/cache.py)
- statements:  SQL statements per request at 5, 50 and 500 nodes (bench/statements.py)
- export:      one-year export, CSV, Parquet and XLSX (``--export-formats``), time against its own COPY, peak
               RSS (bench/exports.py)
- curves:      the dashboard at 30, 90 and 365 days, and at 1k and 10k users (bench/curves.py)
- endusers:    each request another user's own 30-day page, with a `user` token, at 1 and 50 clients
               (bench/endusers.py)
- distinct:    95-day dashboards no cache has seen (each its own range, half filtered to a model) on the
               1,000-user set, at 1 and 50 clients (bench/distinct.py)
- shedding:    200 clients on the dashboard, with the gateway's admission control and without it: p95 of
               the answered, time to a 503, shares shed and timed out (bench/shedding.py)

The filled databases are kept under ``--keep-data`` (bench/cluster.py), so only the first run pays the
fill (about two minutes at reference scale).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import structlog
from rich.console import Console

from bench.cache import cache_figures
from bench.cluster import BenchCluster, running_cluster
from bench.cold import cold_figures
from bench.curves import curve_figures
from bench.distinct import distinct_figures
from bench.endusers import enduser_figures
from bench.exports import export_figures
from bench.plan import GROUPS, Plan
from bench.report import Figure, print_table, write_json
from bench.shedding import shedding_figures
from bench.statements import statements_figures
from bench.warm import concurrency_figures, warm_figures
from usage_gateway.devtools.local_services import LocalRedis


@dataclass
class Outcome:
    figures: list[Figure] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # benchmark: its traceback


async def _run_one(group: str, plan: Plan, cluster: BenchCluster, redis_url: str) -> list[Figure]:
    reference = cluster.datasets["reference"].url
    if group == "cold":
        return await cold_figures(plan, cluster.pg, redis_url)
    if group == "warm":
        return await warm_figures(plan, reference, redis_url)
    if group == "concurrency":
        return await concurrency_figures(plan, reference, redis_url)
    if group == "cache":
        return await cache_figures(plan, reference, redis_url)
    if group == "statements":
        return await statements_figures(plan, reference, redis_url)
    if group == "export":
        return await asyncio.to_thread(export_figures, plan, reference)
    if group == "curves":
        return await curve_figures(plan, reference, cluster.datasets["small"].url, redis_url)
    if group == "endusers":
        return await enduser_figures(plan, reference, redis_url)
    if group == "distinct":
        return await distinct_figures(plan, cluster.datasets["small"].url, redis_url)
    if group == "shedding":
        return await shedding_figures(plan, reference, redis_url)
    raise ValueError(f"no benchmark {group!r}")


async def run_figures(
    plan: Plan, cluster: BenchCluster, redis_url: str, only: tuple[str, ...], console: Console | None = None
) -> Outcome:
    """Every benchmark of ``only``, in the order of :data:`GROUPS`; one that fails is reported and the
    others still run."""
    outcome = Outcome()
    for group in (g for g in GROUPS if g in only):
        began = time.perf_counter()
        try:
            outcome.figures += await _run_one(group, plan, cluster, redis_url)
        except Exception:
            outcome.failures[group] = traceback.format_exc()
            if console is not None:
                console.print(f"[red]{group} failed[/]\n{outcome.failures[group]}")
        if console is not None:
            console.log(f"{group}: {time.perf_counter() - began:.1f} s")
    return outcome


def exit_on_signal(*stops: Callable[[], None]) -> None:
    """On Ctrl-C or SIGTERM, stop our Redis and Postgres and exit at once, without waiting for the
    requests in flight (a kept cluster stays filled). Installed before ``asyncio.run``, which then leaves
    SIGINT alone: cancelling the requests in flight under load could take minutes."""

    def stop_and_exit(signum: int, _frame: object) -> None:
        for stop in stops:
            with contextlib.suppress(Exception):
                stop()
        os._exit(128 + signum)

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, stop_and_exit)


def _drop_expected(_logger: object, _method: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """The warm benchmarks' gateways have no LiteLLM on purpose, and the shedding figures shed on purpose:
    not worth a warning each."""
    if event.get("event") in ("litellm.absent", "admission.shed"):
        raise structlog.DropEvent
    return event


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def machine(cluster: BenchCluster) -> dict[str, Any]:
    with psycopg.connect(cluster.pg.url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return {
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "postgres": row[0] if row else None,
        "commit": _git("rev-parse", "HEAD"),
        "uncommitted_changes": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def _only(value: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    unknown = [name for name in names if name not in GROUPS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose among {', '.join(GROUPS)} (comma separated)")
    return names


EXPORT_FORMATS = ("CSV", "JSON", "NDJSON", "XLSX", "PARQUET")


def _formats(value: str) -> tuple[str, ...]:
    names = tuple(name.strip().upper() for name in value.split(",") if name.strip())
    if not names or any(name not in EXPORT_FORMATS for name in names):
        raise argparse.ArgumentTypeError(f"choose among {', '.join(EXPORT_FORMATS)} (comma separated)")
    return names


def _counts(value: str) -> tuple[int, ...]:
    try:
        numbers = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        numbers = ()
    if not numbers or min(numbers) < 1:
        raise argparse.ArgumentTypeError("positive whole numbers, comma separated")
    return numbers


def _admission(value: str) -> tuple[int, int, float]:
    try:
        concurrent, queued, wait = value.split(",")
        parsed = int(concurrent), int(queued), float(wait)
    except ValueError:
        raise argparse.ArgumentTypeError("three numbers, comma separated: N,Q,W") from None
    if parsed[0] < 1 or parsed[1] < 0 or parsed[2] <= 0:
        raise argparse.ArgumentTypeError("N ≥ 1, Q ≥ 0, W > 0")
    return parsed


# The plan's sizes a run may change: option, Plan field, help.
_PLAN_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("--dashboard-days", "dashboard_days", "range of the warm, concurrency, cache, statements and shedding"
     " figures"),
    ("--cold-days", "cold_days", "range of the cold figures: the data set's last N days"),
    ("--latency-ms", "latency_ms", "LiteLLM's time per request in the cold figures"),
    ("--cold-concurrency", "cold_concurrency", "LITELLM_CONCURRENCY of the cold loads, comma separated"),
    ("--legacy-share", "legacy_share", "share of the cold range's two-provider (day, key, model) groups"
     " given a legacy row with a NULL user_id, as older LiteLLMs wrote"),
    ("--export-days", "export_days", "export ranges, comma separated: memory is compared first to last"),
    ("--export-formats", "export_formats", f"export formats among {', '.join(EXPORT_FORMATS)}"),
    ("--shed-clients", "shed_clients", "concurrent clients of the shedding figures"),
    ("--shed-admission", "shed_admission", "the shedding figures' MAX_CONCURRENT_OPERATIONS,"
     " MAX_QUEUED_OPERATIONS and MAX_QUEUE_WAIT_SECONDS, e.g. 4,20,5 (default: the gateway's)"),
)  # fmt: skip
_TYPES: dict[str, Callable[[str], Any]] = {
    "dashboard_days": int,
    "cold_days": int,
    "latency_ms": float,
    "cold_concurrency": _counts,
    "legacy_share": float,
    "export_days": _counts,
    "export_formats": _formats,
    "shed_clients": int,
    "shed_admission": _admission,
}


def make_plan(args: argparse.Namespace) -> Plan:
    """The plan of ``--scale``, with whatever the options change."""
    make = Plan.reference if args.scale == "reference" else Plan.smoke
    plan = make(repeat=args.repeat, slow_repeat=args.slow_repeat)
    changes: dict[str, Any] = {
        name: getattr(args, name) for _, name, _ in _PLAN_OPTIONS if getattr(args, name) is not None
    }
    return replace(plan, replay=args.replay, cold_baseline=args.cold_baseline, **changes)


def check_plan(plan: Plan) -> str | None:
    """What is wrong with the plan's sizes, if anything."""
    days = plan.scale.days
    if not 1 <= plan.dashboard_days <= days // 2:
        return f"--dashboard-days must be within 1..{days // 2}: its previous period lies in the data set too"
    if not all(1 <= d <= days for d in (plan.cold_days, *plan.export_days)):
        return f"--cold-days and --export-days must be within 1..{days} at this scale"
    if len(plan.export_days) < 2 or list(plan.export_days) != sorted(set(plan.export_days)):
        return "--export-days: two ranges at least, shortest first"
    if not 0 <= plan.legacy_share <= 1:
        return "--legacy-share must be within 0..1"
    if plan.shed_clients < 1:
        return "--shed-clients must be at least 1"
    if plan.latency_ms < 0:
        return "--latency-ms must not be negative"
    return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", choices=("reference", "smoke"), default="reference")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions behind each median (default 5)")
    parser.add_argument(
        "--slow-repeat", type=int, default=1, help="repetitions of the cold loads and exports (default 1)"
    )
    parser.add_argument(
        "--only", type=_only, default=GROUPS, help=f"comma-separated figures among: {', '.join(GROUPS)}"
    )
    parser.add_argument("--json", type=Path, default=Path("var/bench/results.json"), help="where to write")
    parser.add_argument(
        "--keep-data",
        type=Path,
        default=Path("var/bench/clusters"),
        help="where the filled Postgres cluster is kept between runs (default var/bench/clusters)",
    )
    parser.add_argument(
        "--no-keep-data", action="store_true", help="fill a temporary cluster, then delete it"
    )
    sizes = parser.add_argument_group("sizes", "change the plan of --scale (default: its own)")
    for option, name, text in _PLAN_OPTIONS:
        sizes.add_argument(option, dest=name, type=_TYPES[name], help=text)
    sizes.add_argument(
        "--no-replay",
        dest="replay",
        action="store_false",
        help="cold figures: LiteLLM computes every answer anew (timing our stand-in's CPU too) instead of"
        " replaying the answers of an untimed warm-up",
    )
    sizes.add_argument(
        "--no-cold-baseline",
        dest="cold_baseline",
        action="store_false",
        help="cold figures: skip the sequential baseline (over a minute at reference scale); no ratio then",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.slow_repeat < 1:
        parser.error("--repeat and --slow-repeat must be at least 1")
    wrong = check_plan(make_plan(args))
    if wrong:
        parser.error(wrong)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        processors=[_drop_expected, *structlog.get_config()["processors"]],
    )
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S", level=logging.WARNING)
    logging.getLogger("bench").setLevel(logging.INFO)  # progress of the long benchmarks
    plan = make_plan(args)
    # A table wider than most terminals: never squeeze it below 150 columns (a pipe counts as 80).
    console = Console(width=max(150, shutil.get_terminal_size((150, 50)).columns))
    began = time.perf_counter()
    started = datetime.now(UTC)
    keep = None if args.no_keep_data else args.keep_data.resolve()
    scales = {"reference": plan.scale, "small": plan.small}
    with running_cluster(plan.name, scales, keep) as cluster:
        verb = "reused" if cluster.reused else "filled"
        for data in cluster.datasets.values():
            console.log(
                f"{verb} {data.name}: {data.scale.users:,} users, {data.scale.days} days,"
                f" {data.facts:,} facts, {data.bytes / 2**30:.2f} GiB (fill {data.fill_seconds:.0f} s)"
            )
        redis = LocalRedis().start()
        exit_on_signal(redis.stop, cluster.pg.stop)
        try:
            before = machine(cluster)
            outcome = asyncio.run(run_figures(plan, cluster, redis.url, args.only, console))
        finally:
            redis.stop()
        datasets = {name: data.as_json() for name, data in cluster.datasets.items()}
        reused = cluster.reused
    seconds = time.perf_counter() - began
    title = (
        f"usage-gateway benchmarks, {plan.name} scale ({plan.scale.users:,} users, {plan.scale.days} days),"
        f" {before['cpus']} CPUs, medians of {plan.repeat} ({plan.slow_repeat} for cold and export)"
    )
    print_table(outcome.figures, title, console)
    run = {
        "started": started.isoformat(),
        "wall_seconds": seconds,
        "plan": asdict(plan),
        "repeats": {"default": plan.repeat, "cold": plan.slow_repeat, "export": plan.slow_repeat},
        "datasets": datasets,
        "cluster_reused": reused,
        "machine": {**before, "load_average_after": os.getloadavg()},
        "gateway_settings": "defaults, but RATE_LIMIT_COST=0 and MAX_QUERY_COST=10000000 (bench/gateway.py)",
        "failures": outcome.failures,
    }
    write_json(args.json, run, outcome.figures)
    console.print(f"total {seconds:.0f} s; every sample in {args.json}")
    if outcome.failures:
        console.print(f"[red]failed: {', '.join(outcome.failures)}[/] (tracebacks above and in the JSON)")
        sys.exit(1)


if __name__ == "__main__":
    main()
