"""Daily rows → ``/user/daily/activity`` bodies, computed like LiteLLM 1.109.1.

Metrics are summed row by row in the order the rows are given (a page's ``date DESC, id ASC``), starting
from ``0.0``/``0`` exactly as ``update_metrics`` does, so float sums carry LiteLLM's rounding; breakdown
dicts keep first-seen order. ``BreakdownMetrics`` → ``mcp_servers, models, model_groups, providers,
endpoints, api_keys, entities, guardrails``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from server.litellm_compat.view import UNKNOWN_MODEL, Row, StoreView, api_key_bucket

METRIC_NAMES: tuple[str, ...] = (
    "spend",
    "flat_cost",
    "ptu_hours",
    "prompt_tokens",
    "completion_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "compression_saved_tokens",
    "compression_savings_spend",
    "prompt_caching_savings_spend",
    "gateway_injected_caching_savings_spend",
    "autorouter_savings_spend",
    "total_tokens",
    "successful_requests",
    "failed_requests",
    "api_requests",
    "total_response_time_ms",
    "timed_requests",
)
# DailySpendMetadata's totals in its field order: (response field, SpendMetrics field).
_TOTALS: tuple[tuple[str, int], ...] = tuple(
    (output, METRIC_NAMES.index(metric))
    for output, metric in (
        ("total_spend", "spend"),
        ("total_flat_cost", "flat_cost"),
        ("total_ptu_hours", "ptu_hours"),
        ("total_prompt_tokens", "prompt_tokens"),
        ("total_completion_tokens", "completion_tokens"),
        ("total_tokens", "total_tokens"),
        ("total_api_requests", "api_requests"),
        ("total_successful_requests", "successful_requests"),
        ("total_failed_requests", "failed_requests"),
        ("total_cache_read_input_tokens", "cache_read_input_tokens"),
        ("total_cache_creation_input_tokens", "cache_creation_input_tokens"),
        ("total_compression_saved_tokens", "compression_saved_tokens"),
        ("total_compression_savings_spend", "compression_savings_spend"),
        ("total_prompt_caching_savings_spend", "prompt_caching_savings_spend"),
        ("total_gateway_injected_caching_savings_spend", "gateway_injected_caching_savings_spend"),
        ("total_autorouter_savings_spend", "autorouter_savings_spend"),
        ("total_response_time_ms", "total_response_time_ms"),
        ("total_timed_requests", "timed_requests"),
    )
)
_BREAKDOWNS = ("mcp_servers", "models", "model_groups", "providers", "endpoints", "api_keys", "entities")
_PROVIDER_METADATA: dict[str, dict[str, Any]] = {"chatgpt": {"subscription_covered": True}}

Vector = list[Any]  # 18 numbers: floats for money, ints for counters


def _zero() -> Vector:
    return [0.0, 0.0, 0.0, 0, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0, 0, 0, 0, 0, 0]


def _row_vector(row: Row) -> Vector:
    prompt = row["prompt_tokens"] or 0
    completion = row["completion_tokens"] or 0
    return [
        row["spend"] or 0.0,
        0.0,  # flat_cost: only PTU sentinel rows of the team table carry it
        0.0,  # ptu_hours: never filled on the user route
        prompt,
        completion,
        row["cache_read_input_tokens"] or 0,
        row["cache_creation_input_tokens"] or 0,
        row["compression_saved_tokens"] or 0,
        row["compression_savings_spend"] or 0,
        row["prompt_caching_savings_spend"] or 0,
        row["gateway_injected_caching_savings_spend"] or 0,
        row["autorouter_savings_spend"] or 0,
        prompt + completion,
        row["successful_requests"] or 0,
        row["failed_requests"] or 0,
        row["api_requests"] or 0,
        row["total_response_time_ms"] or 0,
        row["timed_requests"] or 0,
    ]


def _add(target: Vector, values: Vector) -> None:
    for index, value in enumerate(values):
        target[index] += value


def metrics_dict(vector: Vector) -> dict[str, Any]:
    return dict(zip(METRIC_NAMES, vector, strict=True))


class _Bucket:
    """One ``MetricWithMetadata``: metrics, metadata and per-key metrics keyed by the raw api_key."""

    __slots__ = ("keys", "metadata", "metrics")

    def __init__(self, metadata: dict[str, Any]) -> None:
        self.metrics = _zero()
        self.metadata = metadata
        self.keys: dict[str, Vector] = {}

    def add(self, vector: Vector, api_key: str | None) -> None:
        _add(self.metrics, vector)
        if api_key is not None:
            key_metrics = self.keys.get(api_key)
            if key_metrics is None:
                key_metrics = self.keys[api_key] = _zero()
            _add(key_metrics, vector)


class _Day:
    __slots__ = ("breakdown", "metrics")

    def __init__(self) -> None:
        self.metrics = _zero()
        self.breakdown: dict[str, dict[str, _Bucket]] = {name: {} for name in _BREAKDOWNS}


def _bucket(group: dict[str, _Bucket], name: str, metadata: dict[str, Any]) -> _Bucket:
    found = group.get(name)
    if found is None:
        found = group[name] = _Bucket(metadata)
    return found


def _accumulate(
    view: StoreView, rows: Sequence[Row], *, entities: bool, top_keys: frozenset[str] | None
) -> tuple[dict[str, _Day], Vector]:
    """``_aggregate_spend_records_sync`` + ``update_breakdown_metrics``. With ``top_keys`` (the
    aggregated route) per-key data is kept only for those keys."""
    days: dict[str, _Day] = {}
    totals = _zero()
    for row in rows:
        vector = _row_vector(row)
        day = days.get(row["date"])
        if day is None:
            day = days[row["date"]] = _Day()
        _add(day.metrics, vector)
        _add(totals, vector)
        api_key: str = row["api_key"]
        key = api_key if top_keys is None or api_key in top_keys else None
        breakdown = day.breakdown
        model = row["model"]
        _bucket(breakdown["models"], model or UNKNOWN_MODEL, {}).add(vector, key)
        _bucket(breakdown["model_groups"], row["model_group"] or model or "unknown-model-group", {}).add(
            vector, key
        )
        if row["mcp_namespaced_tool_name"]:
            _bucket(breakdown["mcp_servers"], row["mcp_namespaced_tool_name"], {}).add(vector, key)
        provider = row["custom_llm_provider"] or "unknown"
        _bucket(breakdown["providers"], provider, _PROVIDER_METADATA.get(provider, {})).add(vector, key)
        if row["endpoint"]:
            _bucket(breakdown["endpoints"], row["endpoint"], {}).add(vector, key)
        if key is not None:
            _bucket(breakdown["api_keys"], key, {}).add(vector, None)
        if entities:
            user_id = row["user_id"]
            _bucket(breakdown["entities"], user_id or "Unassigned", view.entity_metadata(user_id)).add(
                vector, key
            )
    return days, totals


def _render_days(view: StoreView, days: dict[str, _Day]) -> list[dict[str, Any]]:
    results = []
    for date in sorted(days, reverse=True):
        day = days[date]
        breakdown: dict[str, Any] = {}
        for name, group in day.breakdown.items():
            if name == "api_keys":
                breakdown[name] = {
                    api_key_bucket(key): {
                        "metrics": metrics_dict(bucket.metrics),
                        "metadata": view.key_metadata(key),
                    }
                    for key, bucket in group.items()
                }
                continue
            breakdown[name] = {
                bucket_name: {
                    "metrics": metrics_dict(bucket.metrics),
                    "metadata": bucket.metadata,
                    "api_key_breakdown": {
                        api_key_bucket(key): {
                            "metrics": metrics_dict(vector),
                            "metadata": view.key_metadata(key),
                        }
                        for key, vector in bucket.keys.items()
                    },
                }
                for bucket_name, bucket in group.items()
            }
        breakdown["guardrails"] = {}
        results.append({"date": date, "metrics": metrics_dict(day.metrics), "breakdown": breakdown})
    return results


def _metadata(totals: Vector, **page_fields: Any) -> dict[str, Any]:
    metadata = {name: totals[index] for name, index in _TOTALS}
    metadata.update(page_fields)
    return metadata


def paginated_activity(
    view: StoreView, selection: Sequence[Row], page: int, page_size: int
) -> dict[str, Any]:
    """One page of rows: pages cut rows (not days), and metadata totals cover this page only."""
    page_rows = selection[(page - 1) * page_size : page * page_size]
    days, totals = _accumulate(view, page_rows, entities=True, top_keys=None)
    count = len(selection)
    return {
        "results": _render_days(view, days),
        "metadata": _metadata(
            totals,
            page=page,
            total_pages=-(-count // page_size),
            has_more=page * page_size < count,
            api_key_limit=None,
            total_api_keys=None,
            entity_total_api_keys=None,
        ),
    }


def top_api_keys(selection: Sequence[Row], limit: int) -> tuple[frozenset[str], int]:
    """``ORDER BY SUM(spend) DESC, api_key LIMIT n`` over the whole selection, and the distinct key count."""
    spends: dict[str, list[float]] = {}
    for row in selection:
        spends.setdefault(row["api_key"], []).append(row["spend"] or 0.0)
    ranked = sorted(((-math.fsum(values), key) for key, values in spends.items()))
    return frozenset(key for _, key in ranked[:limit]), len(spends)


def aggregated_activity(view: StoreView, selection: Sequence[Row], api_key_limit: int) -> dict[str, Any]:
    """The whole range at once; per-key data limited to the top ``api_key_limit`` keys by spend,
    ``entities`` left empty (``include_entity_breakdown=False`` on the user route)."""
    top_keys, distinct_keys = top_api_keys(selection, api_key_limit)
    days, totals = _accumulate(view, selection, entities=False, top_keys=top_keys)
    return {
        "results": _render_days(view, days),
        "metadata": _metadata(
            totals,
            page=1,
            total_pages=1,
            has_more=False,
            api_key_limit=api_key_limit,
            total_api_keys=distinct_keys,
            entity_total_api_keys=None,
        ),
    }
