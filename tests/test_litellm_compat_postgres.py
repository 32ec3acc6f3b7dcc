"""The PostgreSQL 15 pieces the compatible server's ``/aggregated`` emulation is built from, against
values read from a PostgreSQL 15.18 server (``SELECT hashtext(...)``, ``ORDER BY`` ties, ``EXPLAIN``
group estimates). The whole emulation is checked by the golden replay of ``nullable_columns.json``."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.golden_files import GOLDEN_DIR
from usage_gateway.devtools.litellm_compat.postgres import (
    column_ndistinct,
    estimate_groups,
    hash_text,
    pg_qsort,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 2817148525),
        ("a", 1075015857),
        ("2026-11-24", 2545226441),
        ("gpt-4o", 3727672679),
        ("claude-3-5-haiku-20241022", 890497967),
        ("/chat/completions", 2802917796),
        ("héllo wörld ✓", 1332018444),
        ("11400610ab7fd51162d6b0b8ab06fd03ba821ce2d95e6bffa54503b0237356e6", 3496015817),
    ],
)
def test_hash_text_is_postgres_hashtext(text: str, expected: int) -> None:
    assert hash_text(text) == expected  # hashtext(text)::bigint & 4294967295


@pytest.mark.parametrize(
    ("keys", "postgres_order"),
    [
        # n ≤ 40: median of three; n > 40: ninther pivots. Rows inserted in this order, each with its
        # position, then SELECT position ... ORDER BY key: PostgreSQL's quicksort leaves ties unordered.
        ("21300020100330103001", "10 15 13 3 4 5 17 7 18 9 19 1 8 14 0 6 11 16 2 12"),
        (
            "03010123102101200013323322111023232003121330022233",
            "9 43 44 12 0 15 16 17 4 29 2 35 36 28 8 18 3 5 38 40 11 26 27 13 24 "
            "47 39 14 45 30 34 10 46 32 21 25 6 49 1 7 19 20 22 23 31 33 37 41 42 48",
        ),
    ],
)
def test_pg_qsort_leaves_ties_where_postgres_does(keys: str, postgres_order: str) -> None:
    items = list(enumerate(keys))
    pg_qsort(items, lambda left, right: (left[1] > right[1]) - (left[1] < right[1]))
    assert [position for position, _ in items] == [int(position) for position in postgres_order.split()]


@given(st.lists(st.integers(min_value=0, max_value=20), max_size=300))
def test_pg_qsort_sorts(values: list[int]) -> None:
    items = list(values)
    pg_qsort(items, lambda left, right: (left > right) - (left < right))
    assert items == sorted(values)


@pytest.mark.parametrize(
    ("columns", "explain_rows"),
    [
        (("date", "model"), 4),
        (("date", "custom_llm_provider"), 4),
        (("date", "endpoint"), 5),
        (("date", "mcp_namespaced_tool_name"), 3),
        (("date", "model_group", "model"), 4),  # COALESCE(NULLIF(model_group, ''), model) → its Vars
        (("date", "endpoint", "api_key"), 5),
        (("date", "mcp_namespaced_tool_name", "api_key"), 3),
    ],
)
def test_estimate_groups_is_the_planners(columns: tuple[str, ...], explain_rows: int) -> None:
    """The row estimates of ``EXPLAIN SELECT … GROUP BY <columns>`` over the analyzed golden table."""
    rows = json.loads((GOLDEN_DIR / "nullable_columns.json").read_text())["rows"]
    ndistincts = [column_ndistinct([row[column] for row in rows], len(rows)) for column in columns]
    assert estimate_groups(ndistincts, len(rows), len(rows), len(rows)) == explain_rows
