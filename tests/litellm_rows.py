"""Building ``LiteLLM_DailyUserSpend`` rows for tests (one by hand, or many with hypothesis over the whole
row domain: NULL and '' wherever LiteLLM's columns allow them), and checking what LiteLLM made of them
(the client-side page merge of CONTRACT.md §2.3, a float-tolerant comparison)."""

from __future__ import annotations

import copy
import itertools
import math
import uuid
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from usage_gateway.devtools.litellm_compat import normalize_row

Row = dict[str, Any]

DAYS = ("2026-11-18", "2026-11-19", "2026-11-20")
# user_id is the key's owner when the request was made: "" for a key without owner, None on legacy rows
# (both → entity "Unassigned"; ``user_id=`` selects the "" rows only, no request selects the None ones).
USERS = ("alice", "bob", "carol", "", None)
API_KEYS = ("a" * 64, "b" * 64, "c" * 64, "d" * 64, "")  # "" → bucket "unattributed"
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-5-haiku-20241022", None, "")  # None/"" → "unknown-model"
PROVIDERS = ("openai", "azure", "azure_ai", "anthropic", None, "")  # None/"" → "unknown"
MCP_TOOLS = ("github-list_pull_requests", "slack-post_message")  # a row with a tool name is an MCP call
TOOLS = ("", None, *MCP_TOOLS)
ENDPOINTS = ("/chat/completions", "/responses", "/v1/messages", None, "")  # None/"" → no endpoint bucket

# The columns of LiteLLM_DailyUserSpend's unique index, in its order.
UNIQUE_COLUMNS = (
    "user_id",
    "date",
    "api_key",
    "model",
    "custom_llm_provider",
    "mcp_namespaced_tool_name",
    "endpoint",
)
# The columns the gateway adds up (``total_tokens`` is prompt + completion, not a column).
METRIC_COLUMNS = (
    "spend",
    "prompt_tokens",
    "completion_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "api_requests",
    "successful_requests",
    "failed_requests",
    "total_response_time_ms",
    "timed_requests",
)
COUNTER_COLUMNS = METRIC_COLUMNS[1:]  # every one but spend: whole, non-negative numbers
Dimensions = tuple[str | None, str, str, str | None, str | None, str | None, str | None]


def unique_key(row: Row) -> Dimensions:
    """A row's values of the unique index; None is a value of its own here (in Postgres NULLs are
    distinct, but LiteLLM's upsert never writes two rows that differ only by NULL-ness)."""
    user_id, day, api_key, model, provider, tool, endpoint = (row[name] for name in UNIQUE_COLUMNS)
    return user_id, day, api_key, model, provider, tool, endpoint


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


# Any double LiteLLM may hold: sums of these carry rounding noise.
NOISY_SPEND = st.one_of(
    st.just(0.0),
    st.floats(min_value=0.0, max_value=5.0, allow_nan=False, allow_infinity=False, allow_subnormal=False),
    st.integers(min_value=0, max_value=10**7).map(lambda micro: micro / 10**7),
)
# Multiples of 1/1024 below 5: any sum of a few thousand of them is an exact double whose shortest repr
# is its exact decimal, so every sum LiteLLM or the gateway makes of them is exact and ties are true ties.
EXACT_SPEND = st.integers(min_value=0, max_value=5 * 1024).map(lambda n: n / 1024)
_TOKENS = st.one_of(st.integers(0, 10**6), st.integers(0, 10**12))  # a year of tokens overflows 32 bits


def _dimensions(days: Sequence[str]) -> st.SearchStrategy[Dimensions]:
    return st.tuples(
        st.sampled_from(USERS),
        st.sampled_from(days),
        st.sampled_from(API_KEYS),
        st.sampled_from(MODELS),
        st.sampled_from(PROVIDERS),
        st.sampled_from(("", "", None, *MCP_TOOLS)),
        st.sampled_from(ENDPOINTS),
    )


@st.composite
def _users_of_one_cell(draw: st.DrawFn, days: Sequence[str]) -> list[Dimensions]:
    """One key, model and provider on one day under a name, NULL and '' (at least two of them)."""
    _, day, api_key, model, provider, tool, endpoint = draw(_dimensions(days))
    name = draw(st.sampled_from([user for user in USERS if user]))
    users = draw(st.lists(st.sampled_from((name, None, "")), min_size=2, max_size=3, unique=True))
    return [(user, day, api_key, model, provider, tool, endpoint) for user in users]


@st.composite
def _endpoints_of_one_cell(draw: st.DrawFn, days: Sequence[str]) -> list[Dimensions]:
    """One key's model and provider at several endpoints (None among them, often) and through MCP tools."""
    user, day, api_key, model, provider, _, _ = draw(_dimensions(days))
    endpoints = draw(st.lists(st.sampled_from((None, *ENDPOINTS)), min_size=2, max_size=4, unique=True))
    tools = draw(st.lists(st.sampled_from(MCP_TOOLS), max_size=2, unique=True))
    tool_endpoint = draw(st.sampled_from(("/mcp", None, "")))
    no_tool: str | None = draw(st.sampled_from(("", None)))
    return [(user, day, api_key, model, provider, no_tool, endpoint) for endpoint in endpoints] + [
        (user, day, api_key, model, provider, tool, tool_endpoint) for tool in tools
    ]


@st.composite
def _providers_of_one_model(draw: st.DrawFn, days: Sequence[str]) -> list[Dimensions]:
    """One key sends one model to three or more providers on one day, under one or several users."""
    _, day, api_key, model, _, tool, endpoint = draw(_dimensions(days))
    providers = draw(st.lists(st.sampled_from(PROVIDERS), min_size=3, max_size=5, unique=True))
    users = draw(st.lists(st.sampled_from(USERS), min_size=len(providers), max_size=len(providers)))
    return [
        (user, day, api_key, model, provider, tool, endpoint)
        for user, provider in zip(users, providers, strict=True)
    ]


_CLUSTERS = (_users_of_one_cell, _endpoints_of_one_cell, _providers_of_one_model)


@st.composite
def _row(draw: st.DrawFn, dimensions: Dimensions, row_id: str, spend: st.SearchStrategy[float]) -> Row:
    user_id, date, api_key, model, provider, tool, endpoint = dimensions
    successful = draw(st.integers(0, 500))
    failed = draw(st.integers(0, 20))
    timed = draw(st.integers(0, successful))
    tokens = {
        "prompt_tokens": draw(_TOKENS),
        "completion_tokens": draw(st.integers(0, 10**5)),
        "cache_read_input_tokens": draw(st.integers(0, 1000)),
        "cache_creation_input_tokens": draw(st.integers(0, 1000)),
    }
    # A row is the trace of calls: no spend without a request or a token (rows with nothing at all exist).
    called = successful or failed or any(tokens.values())
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
        **tokens,
        successful_requests=successful,
        failed_requests=failed,
        spend=draw(spend) if called else 0.0,
        prompt_caching_savings_spend=draw(spend),
        total_response_time_ms=timed * draw(st.integers(0, 3000)),
        timed_requests=timed,
    )


@st.composite
def _rows(
    draw: st.DrawFn, min_size: int, max_size: int, days: Sequence[str], spend: st.SearchStrategy[float]
) -> list[Row]:
    clusters = draw(st.lists(st.sampled_from(_CLUSTERS).flatmap(lambda cluster: cluster(days)), max_size=3))
    # Hypothesis favours short lists; an explicit size spreads them over the whole range.
    size = draw(st.integers(min_size, max_size))
    scattered = draw(st.lists(_dimensions(days), min_size=size, max_size=size, unique=True))
    dimensions = list(dict.fromkeys([*itertools.chain.from_iterable(clusters), *scattered]))[:max_size]
    ids = draw(st.lists(st.uuids(version=4), min_size=len(dimensions), max_size=len(dimensions), unique=True))
    return [draw(_row(dims, str(row_id), spend)) for dims, row_id in zip(dimensions, ids, strict=True)]


def rows_strategy(
    min_size: int = 0,
    max_size: int = 30,
    *,
    days: Sequence[str] = DAYS,
    spend: st.SearchStrategy[float] = NOISY_SPEND,
) -> st.SearchStrategy[list[Row]]:
    """Rows over ``days`` and the whole domain of LiteLLM_DailyUserSpend's columns, unique by its index
    (:data:`UNIQUE_COLUMNS`, None a value of its own): user_id a name, '' or NULL on any key; model and
    provider NULL or '' beside real ones; the empty key; endpoints NULL, '' or set and MCP tool rows.
    Besides scattered rows, up to three clusters of the hard cases: one key, model and provider under a
    name, NULL and ''; one key's model and provider at several endpoints and MCP tools; one key's model on
    three or more providers. ``spend``: :data:`NOISY_SPEND` (any double) or :data:`EXACT_SPEND`."""
    return _rows(min_size, max_size, days, spend)


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
