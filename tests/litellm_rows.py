"""Building ``LiteLLM_DailyUserSpend`` rows for tests (one by hand, or many with hypothesis), and checking
what LiteLLM made of them (the client-side page merge of CONTRACT.md §2.3, a float-tolerant comparison)."""

from __future__ import annotations

import copy
import math
import uuid
from typing import Any

from hypothesis import strategies as st

from server.litellm_compat import normalize_row

Row = dict[str, Any]

DAYS = ("2026-11-18", "2026-11-19", "2026-11-20")
USERS = ("alice", "bob", "carol", "")  # "" = a key without owner → entity "Unassigned"
API_KEYS = ("a" * 64, "b" * 64, "c" * 64, "")  # "" → bucket "unattributed"
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-5-haiku-20241022", None, "")  # None/"" → "unknown-model"
PROVIDERS = ("openai", "azure", "anthropic", None, "")  # None/"" → "unknown"
ENDPOINTS = ("/chat/completions", "/embeddings", None)


def make_row(
    date: str, user_id: str | None, api_key: str, model: str | None, provider: str | None, **metrics: Any
) -> Row:
    """A full row (every column, schema order). ``metrics`` sets any other column; ``api_requests``
    defaults to successful + failed, ``model_group`` to the model, ``endpoint`` to /chat/completions,
    ``id`` to a fresh uuid4."""
    metrics.setdefault("id", str(uuid.uuid4()))
    metrics.setdefault("model_group", model)
    metrics.setdefault("endpoint", "/chat/completions")
    metrics.setdefault("mcp_namespaced_tool_name", "")
    metrics.setdefault(
        "api_requests", int(metrics.get("successful_requests", 0)) + int(metrics.get("failed_requests", 0))
    )
    metrics.setdefault("created_at", f"{date}T00:00:00.000Z")
    metrics.setdefault("updated_at", f"{date}T23:59:59.000Z")
    return normalize_row(
        {
            "date": date,
            "user_id": user_id,
            "api_key": api_key,
            "model": model,
            "custom_llm_provider": provider,
            **metrics,
        }
    )


_DIMENSIONS = st.tuples(
    st.sampled_from(USERS),
    st.sampled_from(DAYS),
    st.sampled_from(API_KEYS),
    st.sampled_from(MODELS),
    st.sampled_from(PROVIDERS),
    st.sampled_from(("", "", "", "github-list_pull_requests")),
    st.sampled_from(ENDPOINTS),
)
_SPEND = st.one_of(
    st.just(0.0),
    st.floats(min_value=0.0, max_value=5.0, allow_nan=False, allow_infinity=False, allow_subnormal=False),
    st.integers(min_value=0, max_value=10**7).map(lambda micro: micro / 10**7),
)


@st.composite
def _row(
    draw: st.DrawFn, dimensions: tuple[str, str, str, str | None, str | None, str, str | None], row_id: str
) -> Row:
    user_id, date, api_key, model, provider, tool, endpoint = dimensions
    successful = draw(st.integers(0, 500))
    failed = draw(st.integers(0, 20))
    return make_row(
        date,
        user_id,
        api_key,
        model,
        provider,
        id=row_id,
        model_group=draw(st.sampled_from((model, None, "group-a"))),
        mcp_namespaced_tool_name=tool,
        endpoint=endpoint,
        prompt_tokens=draw(st.integers(0, 10**6)),
        completion_tokens=draw(st.integers(0, 10**5)),
        cache_read_input_tokens=draw(st.integers(0, 1000)),
        successful_requests=successful,
        failed_requests=failed,
        spend=draw(_SPEND),
        prompt_caching_savings_spend=draw(_SPEND),
        total_response_time_ms=successful * draw(st.integers(0, 3000)),
        timed_requests=successful,
    )


@st.composite
def _rows(draw: st.DrawFn, min_size: int, max_size: int) -> list[Row]:
    dimensions = draw(st.lists(_DIMENSIONS, min_size=min_size, max_size=max_size, unique=True))
    ids = draw(st.lists(st.uuids(version=4), min_size=len(dimensions), max_size=len(dimensions), unique=True))
    return [draw(_row(dims, str(row_id))) for dims, row_id in zip(dimensions, ids, strict=True)]


def rows_strategy(min_size: int = 0, max_size: int = 30) -> st.SearchStrategy[list[Row]]:
    """Rows over :data:`DAYS` that respect the unique (user, date, key, model, provider, tool,
    endpoint) constraint, with bucket cases (empty key/user, None/"" model and provider) mixed in."""
    return _rows(min_size, max_size)


def _sum_metrics(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    return {name: left[name] + right[name] for name in left}


def _merge_entries(target: dict[str, Any], source: dict[str, Any]) -> None:
    for name, entry in source.items():
        if name not in target:
            target[name] = copy.deepcopy(entry)
            continue
        assert target[name]["metadata"] == entry["metadata"]
        target[name]["metrics"] = _sum_metrics(target[name]["metrics"], entry["metrics"])
        if "api_key_breakdown" in entry:
            _merge_entries(target[name]["api_key_breakdown"], entry["api_key_breakdown"])


def merge_pages(bodies: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The client-side merge of CONTRACT.md §2.3: per date, sum metrics and every breakdown entry."""
    days: dict[str, dict[str, Any]] = {}
    for body in bodies:
        for day in body["results"]:
            if day["date"] not in days:
                days[day["date"]] = copy.deepcopy(day)
                continue
            target = days[day["date"]]
            target["metrics"] = _sum_metrics(target["metrics"], day["metrics"])
            for group, entries in day["breakdown"].items():
                _merge_entries(target["breakdown"][group], entries)
    return days


def assert_close(actual: Any, expected: Any, path: str = "$") -> None:
    """Same structure and key sets (order ignored), ints exact, floats within 1e-9 relative."""
    assert type(actual) is type(expected), f"{path}: {actual!r} != {expected!r}"
    if isinstance(actual, dict):
        assert actual.keys() == expected.keys(), f"{path}: {sorted(actual)} != {sorted(expected)}"
        for key in actual:
            assert_close(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(actual, list):
        assert len(actual) == len(expected), f"{path}: {len(actual)} items != {len(expected)}"
        for index, (left, right) in enumerate(zip(actual, expected, strict=True)):
            assert_close(left, right, f"{path}[{index}]")
    elif isinstance(actual, float):
        assert math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12), f"{path}: {actual} != {expected}"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"
