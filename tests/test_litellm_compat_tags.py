"""The compatible server's ``/tag/daily/activity``: the golden set (tests/golden/litellm/tags, see its
README for where each shape comes from) replayed over HTTP, pages merged equal to one page, and the demo's
tag rows consistent with its user rows."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.golden_files import GOLDEN_DIR
from tests.test_litellm_compat_golden import first_difference
from usage_gateway.devtools.demo_data import generate
from usage_gateway.devtools.demo_tags import CLIENTS
from usage_gateway.devtools.litellm_compat import MASTER_KEY, LiteLLMStore, running_litellm

TAG_GOLDEN = GOLDEN_DIR / "tags" / "tag_activity.json"
_REQUESTS: list[dict[str, Any]] = json.loads(TAG_GOLDEN.read_text())["requests"]


@pytest.fixture(scope="module")
def golden_client() -> Iterator[httpx.Client]:
    with running_litellm(LiteLLMStore.from_golden(TAG_GOLDEN)) as url, httpx.Client(base_url=url) as client:
        yield client


@pytest.mark.parametrize("index", range(len(_REQUESTS)), ids=[r["note"][:60] for r in _REQUESTS])
def test_tag_golden_replay(golden_client: httpx.Client, index: int) -> None:
    recorded = _REQUESTS[index]
    response = golden_client.get(
        recorded["path"],
        params=list(recorded["params"].items()),
        headers={"Authorization": f"Bearer {recorded.get('auth', MASTER_KEY)}"},
    )
    assert response.status_code == recorded["status"], response.text[:300]
    difference = first_difference(response.json(), recorded["body"])
    assert difference is None, difference


def test_golden_rows_are_the_tag_table() -> None:
    assert Path(TAG_GOLDEN).exists()
    data = json.loads(TAG_GOLDEN.read_text())
    assert data["rows"] == []
    assert len(data["tag_rows"]) == 9
    assert all("tag" in row and "user_id" not in row for row in data["tag_rows"])


_TAGS = st.sampled_from(["User-Agent:claude-code", "User-Agent:curl", "app:a", None])
_ROW = st.fixed_dictionaries(
    {
        "tag": _TAGS,
        "date": st.sampled_from(["2026-11-01", "2026-11-02", "2026-11-03"]),
        "api_key": st.sampled_from(["k1", "k2", ""]),
        "model": st.sampled_from(["m1", "m2", None]),
        "custom_llm_provider": st.sampled_from(["openai", "azure", None]),
        "spend": st.integers(0, 1000).map(lambda cents: cents / 1000),
        "api_requests": st.integers(0, 9),
        "prompt_tokens": st.integers(0, 500),
    }
)


def _merge(pages: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """(date, tag) → api_requests over every page, as a client merging split days does."""
    merged: dict[tuple[str, str], int] = defaultdict(int)
    for page in pages:
        for day in page["results"]:
            for tag, entity in day["breakdown"]["entities"].items():
                merged[day["date"], tag] += entity["metrics"]["api_requests"]
    return dict(merged)


@settings(max_examples=25, deadline=None)
@given(rows=st.lists(_ROW, max_size=25), page_size=st.integers(1, 7))
def test_pages_merge_to_the_rows(rows: list[dict[str, Any]], page_size: int) -> None:
    """Whatever the page size, merging pages gives every (date, tag)'s sums of its rows exactly, and
    ``total_pages`` is the row count over the page size."""
    seen = set()
    unique = []
    for row in rows:  # LiteLLM's unique key (tag, date, key, model, provider, …)
        cell = (row["tag"], row["date"], row["api_key"], row["model"], row["custom_llm_provider"])
        if cell not in seen:
            seen.add(cell)
            unique.append(row)
    store = LiteLLMStore(keys=[], users=[], rows=[], tag_rows=unique)
    with running_litellm(store) as url, httpx.Client(base_url=url) as client:
        params = {"start_date": "2026-11-01", "end_date": "2026-11-03", "page_size": str(page_size)}
        headers = {"Authorization": f"Bearer {MASTER_KEY}"}
        first = client.get("/tag/daily/activity", params=params, headers=headers).json()
        pages = [first]
        for page in range(2, first["metadata"]["total_pages"] + 1):
            paged = {**params, "page": str(page)}
            pages.append(client.get("/tag/daily/activity", params=paged, headers=headers).json())
    assert first["metadata"]["total_pages"] == -(-len(unique) // page_size)
    expected: dict[tuple[str, str], int] = defaultdict(int)
    for row in unique:
        expected[row["date"], row["tag"] or "Unassigned"] += row["api_requests"]
    assert _merge(pages) == dict(expected)


def test_demo_tag_rows_agree_with_user_rows() -> None:
    """Every request carries exactly one ``User-Agent:<product>`` tag, so those tags' rows add up to the
    user rows, day by day; tag rows are unique per LiteLLM's key, and the same seed gives the same rows."""
    now = datetime(2026, 12, 4, 12, tzinfo=UTC)
    data = generate(3, now=now)
    products = {f"User-Agent:{name}" for name, _ in CLIENTS}
    by_day_users: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_day_tags: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in data.rows:
        by_day_users[row["date"]][0] += row["api_requests"]
        by_day_users[row["date"]][1] += row["prompt_tokens"]
    cells = set()
    for row in data.tag_rows:
        cell = tuple(row[name] for name in ("tag", "date", "api_key", "model", "custom_llm_provider"))
        cell += (row["mcp_namespaced_tool_name"], row["endpoint"])
        assert cell not in cells
        cells.add(cell)
        if row["tag"] in products:
            by_day_tags[row["date"]][0] += row["api_requests"]
            by_day_tags[row["date"]][1] += row["prompt_tokens"]
    assert by_day_tags == by_day_users
    assert any(row["tag"].startswith("app:") for row in data.tag_rows)
    assert [row["id"] for row in generate(3, now=now).tag_rows] == [row["id"] for row in data.tag_rows]
