"""What a benchmark produces (:class:`Figure`: a measured value against its baseline, as a ratio, with a
target), the statistics behind it, and the two outputs: a table on the terminal and a JSON file with
every raw sample."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

Op = Literal["<", "<=", ">=", "=="]


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples) if samples else math.nan


def percentile(samples: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0–100), interpolated between the two nearest ranks."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Target:
    """What a figure should reach: a bound on its value or on its ratio to the baseline."""

    on: Literal["value", "ratio"]
    op: Op
    bound: float

    def met(self, figure: Figure) -> bool | None:
        measured = figure.value if self.on == "value" else figure.ratio
        if measured is None or math.isnan(measured):
            return None
        if self.op == "<":
            return measured < self.bound
        if self.op == "<=":
            return measured <= self.bound
        if self.op == ">=":
            return measured >= self.bound
        return measured == self.bound

    def describe(self, unit: str) -> str:
        symbol = {"<": "<", "<=": "≤", ">=": "≥", "==": "="}[self.op]
        if self.on == "ratio":
            return f"ratio {symbol} {self.bound:g}×"
        return f"{symbol} {_format(self.bound, unit)}"


@dataclass
class Figure:
    """One row of the table. ``ratio`` is computed by the producer and says which way it reads in
    ``ratio_means`` (e.g. "baseline ÷ gateway" for a speed-up)."""

    group: str  # the --only name of the benchmark that produced it
    name: str
    unit: str  # "ms", "s", "MiB", "statements"
    value: float
    baseline: float | None = None
    baseline_name: str = ""
    ratio: float | None = None
    ratio_means: str = ""
    target: Target | None = None
    repeats: int = 1
    samples: dict[str, list[float]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        if self.details.get("errors"):
            return False  # some requests failed: whatever the others measured, this is a miss
        return None if self.target is None else self.target.met(self)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["target"] = None if self.target is None else {
            **asdict(self.target), "text": self.target.describe(self.unit)
        }  # fmt: skip
        data["passed"] = self.passed
        return data


def ratio(numerator: float, denominator: float | None) -> float | None:
    if denominator is None or denominator == 0 or math.isnan(denominator):
        return None
    return numerator / denominator


def _format(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "—"
    if unit == "statements":
        return f"{value:.0f}"
    if unit == "ms":
        return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms" if value < 1000 else f"{value:.0f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:.1f} {unit}"


def table(figures: Sequence[Figure], title: str) -> Table:
    grid = Table(title=title, title_justify="left")
    for heading in ("figure", "measured", "baseline", "ratio", "target", ""):
        grid.add_column(heading, justify="left" if heading in ("figure", "baseline") else "right")
    group = None
    for figure in figures:
        if group is not None and figure.group != group:
            grid.add_section()
        group = figure.group
        baseline = _format(figure.baseline, figure.unit)
        if figure.baseline_name:
            baseline = f"{baseline} ({figure.baseline_name})"
        outcome = {True: "[green]pass[/]", False: "[red]miss[/]", None: ""}[figure.passed]
        grid.add_row(
            figure.name,
            _format(figure.value, figure.unit),
            baseline if figure.baseline is not None else "—",
            "—" if figure.ratio is None else f"{figure.ratio:.2f}×",
            "—" if figure.target is None else figure.target.describe(figure.unit),
            outcome,
        )
    return grid


def print_table(figures: Sequence[Figure], title: str, console: Console | None = None) -> None:
    (console or Console()).print(table(figures, title))


def write_json(path: Path, run: dict[str, Any], figures: Sequence[Figure]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = _finite({**run, "figures": [figure.as_json() for figure in figures]})
    path.write_text(json.dumps(body, indent=2, default=str, allow_nan=False) + "\n", encoding="utf-8")


def _finite(data: Any) -> Any:
    """JSON has no NaN: a value that could not be measured is null."""
    if isinstance(data, float):
        return None if math.isnan(data) or math.isinf(data) else data
    if isinstance(data, dict):
        return {key: _finite(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(value) for value in data]
    return data
