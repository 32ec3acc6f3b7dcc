"""A private PostgreSQL cluster holding the filled reference databases, kept between runs.

Filling the reference data set takes minutes, so the filled cluster is kept under ``--keep-data`` in a
directory named by what its contents depend on: the scales (with their seed), the migrations (names
and text) and the generator's source. When any of them changes the name changes, the stale cluster of
that plan is deleted and a new one is filled. A cluster counts as filled only once ``ready.json`` is
written, so an interrupted fill starts over.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg

import bench.reference_data
from bench.reference_data import ReferenceData, Scale, fill_gateway
from usage_gateway.devtools.local_services import LocalPostgres, LocalServiceError
from usage_gateway.migrations import apply_migrations, available

_FORMAT = 1  # bump when what a kept cluster holds changes in a way the key does not see


@dataclass(frozen=True)
class DataSet:
    name: str  # "reference", "small"
    url: str
    scale: Scale
    facts: int
    fill_seconds: float
    bytes: int

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "url": None, "scale": _scale_json(self.scale)}


@dataclass
class BenchCluster:
    pg: LocalPostgres
    datasets: dict[str, DataSet]
    reused: bool


def _scale_json(scale: Scale) -> dict[str, Any]:
    return {**asdict(scale), "last_day": scale.last_day.isoformat()}


def cache_key(scales: Mapping[str, Scale]) -> str:
    generator = Path(bench.reference_data.__file__).read_bytes()
    material = {
        "format": _FORMAT,
        "scales": {name: _scale_json(scale) for name, scale in sorted(scales.items())},
        "migrations": [(m.name, hashlib.sha256(m.sql.encode()).hexdigest()) for m in available()],
        "generator": hashlib.sha256(generator).hexdigest(),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def fill(pg: LocalPostgres, name: str, scale: Scale, last_days: int | None = None) -> DataSet:
    """A migrated database ``name`` holding the data set at ``scale`` (its last ``last_days`` days, or
    all), vacuumed and analysed."""
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    url = pg.url_for(name)
    apply_migrations(url)
    began = time.perf_counter()
    days = None if last_days is None else range(scale.days - last_days, scale.days)
    facts = fill_gateway(url, ReferenceData(scale), days)
    seconds = time.perf_counter() - began
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")  # the steady state autovacuum would reach, before anything is timed
        conn.execute("CHECKPOINT")
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return DataSet(name, url, scale, facts, seconds, int(row[0]) if row else 0)


def _check_not_running(data_dir: Path) -> None:
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().split()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return
    raise LocalServiceError(
        f"PostgreSQL (pid {pid}) still runs on {data_dir}: stop it, or delete the directory"
    )


@contextmanager
def running_cluster(plan_name: str, scales: Mapping[str, Scale], keep: Path | None) -> Iterator[BenchCluster]:
    """A started cluster with a filled database per scale (named after its key in ``scales``); kept in
    ``keep`` (reused when it matches), or in a temporary directory deleted at the end."""
    base = None if keep is None else keep / f"{plan_name}-{cache_key(scales)}"
    ready = None if base is None else base / "ready.json"
    reused = ready is not None and ready.exists()
    if keep is not None and base is not None and not reused:
        for stale in keep.glob(f"{plan_name}-*"):
            shutil.rmtree(stale)
        keep.mkdir(parents=True, exist_ok=True)
    if base is not None:
        _check_not_running(base / "data")
    pg = LocalPostgres(base).start()
    try:
        if reused and ready is not None:
            stored = json.loads(ready.read_text())["datasets"]
            datasets = {
                name: DataSet(name, pg.url_for(name), scale, **stored[name]) for name, scale in scales.items()
            }
        else:
            datasets = {name: fill(pg, name, scale) for name, scale in scales.items()}
            if ready is not None:
                counts = {
                    name: {"facts": d.facts, "fill_seconds": d.fill_seconds, "bytes": d.bytes}
                    for name, d in datasets.items()
                }
                ready.write_text(json.dumps({"datasets": counts}, indent=2))
        yield BenchCluster(pg, datasets, reused)
    finally:
        with contextlib.suppress(psycopg.Error), psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")  # the next start then has no WAL to replay (pg.stop is immediate)
        pg.stop()
