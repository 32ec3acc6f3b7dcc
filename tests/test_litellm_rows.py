"""The row strategies of tests/litellm_rows.py: they keep LiteLLM's unique index and reach every hard case
of the row domain (so the property tests built on them can meet it)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import Phase, find, given, settings

from tests.litellm_rows import (
    COUNTER_COLUMNS,
    DAYS,
    EXACT_SPEND,
    Row,
    rows_strategy,
    unique_key,
)


@settings(max_examples=60, deadline=None)
@given(rows=rows_strategy(0, 50))
def test_rows_keep_the_unique_index_and_add_up(rows: list[Row]) -> None:
    keys = [unique_key(row) for row in rows]
    assert len(set(keys)) == len(keys)
    assert len({row["id"] for row in rows}) == len(rows)
    assert len(rows) <= 50
    for row in rows:
        assert row["api_requests"] == row["successful_requests"] + row["failed_requests"]
        assert row["timed_requests"] <= row["successful_requests"]
        if not any(row[column] for column in COUNTER_COLUMNS):
            assert row["spend"] == 0.0  # no spend without a call or a token


@settings(max_examples=40, deadline=None)
@given(rows=rows_strategy(1, 20, spend=EXACT_SPEND))
def test_exact_spends_sum_exactly(rows: list[Row]) -> None:
    spends = [row["spend"] for row in rows]
    assert all((spend * 1024).is_integer() for spend in spends)
    total = 0.0
    for spend in spends:
        total += spend
    assert total * 1024 == sum(int(spend * 1024) for spend in spends)


def _by(rows: list[Row], *columns: str) -> dict[tuple[Any, ...], list[Row]]:
    groups: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
    for row in rows:
        groups[tuple(row[column] for column in columns)].append(row)
    return groups


CELL = ("date", "api_key", "model", "custom_llm_provider")
CASES: dict[str, Callable[[list[Row]], bool]] = {
    "a name, NULL and '' on one key, model and provider": lambda rows: any(
        {row["user_id"] for row in group} >= {None, ""} and any(row["user_id"] for row in group)
        for group in _by(rows, *CELL).values()
    ),
    "one key's model and provider at three endpoints (NULL one) and an MCP tool": lambda rows: any(
        None in (endpoints := {row["endpoint"] for row in group})
        and len(endpoints) >= 3
        and any(row["mcp_namespaced_tool_name"] for row in group)
        for group in _by(rows, *CELL).values()
    ),
    "one key's model on three providers in a day": lambda rows: any(
        len({row["custom_llm_provider"] for row in group}) >= 3
        for group in _by(rows, "date", "api_key", "model").values()
    ),
    "NULL and '' models and providers beside real ones in a day": lambda rows: any(
        {row["model"] for row in group} >= {None, "", "gpt-4o"}
        and {row["custom_llm_provider"] for row in group} >= {None, "", "openai"}
        for group in _by(rows, "date").values()
    ),
    "NULL users on the empty key and on a hex key": lambda rows: (
        {bool(row["api_key"]) for row in rows if row["user_id"] is None} == {True, False}
    ),
    "every day, a dozen rows on one of them": lambda rows: (
        len({row["date"] for row in rows}) == len(DAYS)
        and max(Counter(row["date"] for row in rows).values()) >= 12
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_rows_reach_the_hard_cases(case: str) -> None:
    reached = rows_strategy(0, 40).map(CASES[case])  # found: True, not the rows (a long repr)
    find(reached, bool, settings=settings(max_examples=1000, phases=(Phase.generate,), database=None))
