"""What the gateway must hold, computed straight from LiteLLM rows (the source of truth in tests)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from usage_gateway.datasources.litellm.day_metrics import DayMetrics

Cell = tuple[date, str, str, str, str]  # date, key bucket, LiteLLM user bucket, model bucket, provider bucket


def key_bucket(api_key: str | None) -> str:
    if not api_key:
        return "unattributed"
    if api_key == "unattributed" or api_key.startswith("raw:"):
        return "raw:" + api_key
    return api_key


def row_metrics(row: Mapping[str, Any]) -> DayMetrics:
    """A row has no total_tokens column: LiteLLM adds it up as prompt + completion (CONTRACT §5)."""
    return DayMetrics.from_litellm({**row, "total_tokens": row["prompt_tokens"] + row["completion_tokens"]})


def cell_of(row: Mapping[str, Any]) -> Cell:
    return (
        date.fromisoformat(row["date"]),
        key_bucket(row["api_key"]),
        row["user_id"] or "Unassigned",
        row["model"] or "unknown-model",
        row["custom_llm_provider"] or "unknown",
    )


def expected_cells(rows: Iterable[Mapping[str, Any]]) -> dict[Cell, DayMetrics]:
    """Rows summed per fact cell (mcp tool and endpoint, which facts do not keep, summed away); a cell
    with no usage at all is not a fact."""
    cells: dict[Cell, DayMetrics] = defaultdict(DayMetrics)
    for row in rows:
        cells[cell_of(row)] += row_metrics(row)
    return {cell: metrics for cell, metrics in cells.items() if not metrics.is_zero()}


def total_of(rows: Iterable[Mapping[str, Any]]) -> DayMetrics:
    result = DayMetrics()
    for row in rows:
        result += row_metrics(row)
    return result


def attributed_user(row: Mapping[str, Any], directory: Mapping[str, str] | None = None) -> str:
    """DESIGN §4: the directory owner of the key, else ``litellm:<user>``, else ``unattributed``."""
    bucket = key_bucket(row["api_key"])
    if bucket == "unattributed":
        return "unattributed"
    if directory and bucket in directory:
        return directory[bucket]
    return f"litellm:{row['user_id']}" if row["user_id"] else "unattributed"


def assert_same_cells(got: Mapping[Cell, DayMetrics], want: Mapping[Cell, DayMetrics]) -> None:
    """Same cells; counters exact, spend equal to 1e-9 relative (pages sum doubles before we see them)."""
    assert set(got) == set(want), set(got) ^ set(want)
    wrong = {cell: (got[cell], want[cell]) for cell in want if not got[cell].matches(want[cell])}
    assert not wrong, wrong
