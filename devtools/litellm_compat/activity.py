"""Daily rows → ``/user/daily/activity`` bodies, computed like LiteLLM 1.109.1.

On the paginated route metrics are summed row by row in the order the rows are given (a page's
``date DESC, id ASC``), starting from ``0.0``/``0`` exactly as ``update_metrics`` does, so float sums
carry LiteLLM's rounding, and breakdown dicts keep first-seen order. ``/aggregated`` is computed by
PostgreSQL, so its order and sums are PostgreSQL's (see the section on it below). ``BreakdownMetrics`` →
``mcp_servers, models, model_groups, providers, endpoints, api_keys, entities, guardrails``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import add, itemgetter
from typing import Any

from usage_gateway.devtools.litellm_compat.postgres import (
    HashTablePlacement,
    compare_keys,
    estimate_groups,
    pg_qsort,
    tuple_hash,
)
from usage_gateway.devtools.litellm_compat.view import UNKNOWN_MODEL, Row, StoreView, api_key_bucket

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
    view: StoreView, rows: Sequence[Row], entity_field: str = "user_id"
) -> tuple[dict[str, _Day], Vector]:
    """``_aggregate_spend_records_sync`` + ``update_breakdown_metrics`` over a page's rows, ``entities``
    included, as the paginated routes fill them: LiteLLM users (with their email and alias) on the user
    route, tags (``metadata: {}``, no entity metadata) on the tag route."""
    users = entity_field == "user_id"
    days: dict[str, _Day] = {}
    totals = _zero()
    for row in rows:
        vector = _row_vector(row)
        day = days.get(row["date"])
        if day is None:
            day = days[row["date"]] = _Day()
        _add(day.metrics, vector)
        _add(totals, vector)
        key: str = row["api_key"]
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
        _bucket(breakdown["api_keys"], key, {}).add(vector, None)
        entity = row[entity_field]
        metadata = view.entity_metadata(entity) if users else {}
        _bucket(breakdown["entities"], entity or "Unassigned", metadata).add(vector, key)
    return days, totals


def empty_day(date: str) -> dict[str, Any]:
    """A ``results`` entry for a date without rows: zero metrics, every breakdown empty."""
    return {
        "date": date,
        "metrics": metrics_dict(_zero()),
        "breakdown": {**{name: {} for name in _BREAKDOWNS}, "guardrails": {}},
    }


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


def empty_response() -> dict[str, Any]:
    """``SpendAnalyticsPaginatedResponse(results=[])``: no days, DailySpendMetadata's defaults."""
    return {
        "results": [],
        "metadata": _metadata(
            _zero(),
            page=1,
            total_pages=1,
            has_more=False,
            api_key_limit=None,
            total_api_keys=None,
            entity_total_api_keys=None,
        ),
    }


def paginated_activity(
    view: StoreView, selection: Sequence[Row], page: int, page_size: int, *, entity_field: str = "user_id"
) -> dict[str, Any]:
    """One page of rows: pages cut rows (not days), and metadata totals cover this page only."""
    page_rows = selection[(page - 1) * page_size : page * page_size]
    days, totals = _accumulate(view, page_rows, entity_field)
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


# -- /aggregated: LiteLLM's GROUPING SETS query as PostgreSQL 15 executes it ------------------------------
#
# LiteLLM answers /aggregated with one SQL query (``build_aggregated_sql``) without ORDER BY, the UNION ALL
# of two GROUPING SETS aggregations: (1) over the selected rows, GROUPING SETS ((date), (date, model),
# (date, model_group), (date, custom_llm_provider), (date, mcp_namespaced_tool_name), (date, endpoint), ());
# (2) over the rows of the top ``api_key_limit`` keys (``JOIN top_api_keys USING (api_key)``), the same
# sets with ``api_key`` added, but no () nor (date). ``model_group`` there is
# ``COALESCE(NULLIF(model_group, ''), model)``. LiteLLM's Python walks the result in order and assigns
# each row to its bucket, so every breakdown dict lists its keys in the order PostgreSQL returned the
# groups, and every number is a SQL SUM, added up in the order PostgreSQL fed the rows to it.
#
# On an analyzed table PostgreSQL 15 plans each branch as a MixedAggregate over a Sort (``_KEY_FREE``,
# ``_PER_KEY`` below): the sets that are prefixes of the sort key come out in sort order (text in byte
# order, NULL last), the others from hash tables in the tables' iteration order. So ``model_groups``,
# ``api_keys`` and the models' ``api_key_breakdown`` are sorted, the other dicts are in hash-table order.
# Running LiteLLM's query on PostgreSQL 15 over tests/golden/litellm/nullable_columns.json's rows, loaded
# in file order and analyzed, gives its recorded /aggregated body exactly (dict order and float bits),
# and so does this emulation of that plan (:mod:`.postgres`). Summing the rows in
# page order and listing keys first-seen does not: the key order of ``models`` and ``providers`` and the
# last bit of four spend sums differ.
#
# Where this is PostgreSQL's answer. The plan above is the one PostgreSQL 15 picks for tables of the
# golden files' size: on 60 random tables of 5 to 400 rows (NULL and '' in every nullable column, ranges
# covering part of the table, api_key_limit=2), LiteLLM's query on PostgreSQL and this emulation gave
# identical bodies, given PostgreSQL's physical row order. Not emulated, so not PostgreSQL's beyond that:
# * the planner's cost-based choice: from about a thousand rows it may hash every per-key set (a plain
#   HashAggregate over the join, in scan order) or sort other sets;
# * the heap: PostgreSQL fills room left on an earlier page with a later, shorter row, so a sequential
#   scan need not return rows in insertion order; here rows are read in the order they were stored;
# * external sorts and hash-table spills: PostgreSQL sorts in memory while the input fits work_mem (4 MB
#   by default; EXPLAIN ANALYZE reports some 250 bytes per row of this table, so about 15,000 rows). Its
#   quicksort is emulated up to IN_MEMORY_SORT_ROWS rows; larger inputs are sorted with Python's stable
#   sort on the same key (fast), which changes which of the rows with equal keys is added first;
# * the cap nodeAgg puts on a hash table's initial size (half its share of hash_mem), which only a large
#   estimate reaches.
# Hash tables are otherwise sized by the planner's estimate (``estimate_groups``) from statistics as an
# ANALYZE reading every row computes them, with the selection's true size as the restriction's estimate
# (exact when a request covers the whole table, as every golden request does). Outside the emulated range
# the answer stays deterministic, complete and LiteLLM-shaped; only its dict order and the last bits of
# its float sums may differ from a given PostgreSQL's, as they differ between PostgreSQLs.
#
# '' and NULL are two SQL groups but one response bucket (``unknown-model``, ``unknown``,
# ``unknown-model-group``); their metrics are added up, since no golden file shows what LiteLLM does
# with both on one day.

IN_MEMORY_SORT_ROWS = 15_000
_MONEY = tuple(
    METRIC_NAMES.index(name)
    for name in (
        "spend",
        "compression_savings_spend",
        "prompt_caching_savings_spend",
        "gateway_injected_caching_savings_spend",
        "autorouter_savings_spend",
    )
)
# A row's grouping values, by position: date, api_key, model, model group, provider, MCP tool, endpoint;
# and the table columns the planner reads the statistics of each from (COALESCE(...) from its Vars).
_DATE, _API_KEY, _MODEL, _GROUP, _PROVIDER, _MCP, _ENDPOINT = range(7)
_KEY_AT, _MODEL_AT = 1, 2  # in a (date, api_key, model) group key
_STATISTICS = (
    ("date",),
    ("api_key",),
    ("model",),
    ("model_group", "model"),
    ("custom_llm_provider",),
    ("mcp_namespaced_tool_name",),
    ("endpoint",),
)

GroupKey = tuple[Any, ...]
Groups = dict[GroupKey, Vector]


def _grouping_values(row: Row) -> tuple[Any, ...]:
    return (
        row["date"],
        row["api_key"],
        row["model"],
        row["model_group"] or row["model"],  # COALESCE(NULLIF(model_group, ''), model)
        row["custom_llm_provider"],
        row["mcp_namespaced_tool_name"],
        row["endpoint"],
    )


def _key_getter(positions: tuple[int, ...]) -> Callable[[tuple[Any, ...]], GroupKey]:
    if len(positions) > 1:
        return itemgetter(*positions)
    if positions:
        (position,) = positions
        return lambda values: (values[position],)
    return lambda values: ()


@dataclass(frozen=True)
class _Branch:
    """One MixedAggregate of PostgreSQL's plan: its sort key, the grouping sets read off the sorted
    input (in sort order), and the hashed ones (in hash-table order), by grouping-value position."""

    sort_key: tuple[int, ...]
    sorted_sets: tuple[tuple[int, ...], ...]
    hashed_sets: tuple[tuple[int, ...], ...]


_KEY_FREE = _Branch(
    sort_key=(_DATE, _GROUP),
    sorted_sets=((_DATE, _GROUP), (_DATE,), ()),
    hashed_sets=((_DATE, _MODEL), (_DATE, _PROVIDER), (_DATE, _ENDPOINT), (_DATE, _MCP)),
)
_PER_KEY = _Branch(
    sort_key=(_DATE, _API_KEY, _MODEL),
    sorted_sets=((_DATE, _API_KEY, _MODEL), (_DATE, _API_KEY)),
    hashed_sets=(
        (_DATE, _ENDPOINT, _API_KEY),
        (_DATE, _MCP, _API_KEY),
        (_DATE, _PROVIDER, _API_KEY),
        (_DATE, _GROUP, _API_KEY),
    ),
)


def _sum_vector(row: Row) -> Vector:
    vector = _row_vector(row)
    for index in _MONEY:  # double precision columns: their SUM is a float even over integral values
        vector[index] = float(vector[index])
    return vector


def _run_branch(view: StoreView, branch: _Branch, rows: Sequence[Row], selected: int) -> list[Groups]:
    """Every grouping set's groups, each dict in the order PostgreSQL returns them, for ``rows`` in scan
    order. A group's vector sums its rows in the sorted input's order, starting from the first."""
    sort_positions = branch.sort_key
    keyed = []
    for row in rows:
        values = _grouping_values(row)
        sort_key = tuple(part for at in sort_positions for part in (values[at] is None, values[at] or ""))
        keyed.append((sort_key, values, row))
    if len(keyed) <= IN_MEMORY_SORT_ROWS:
        pg_qsort(keyed, lambda left, right: compare_keys(left[0], right[0]))
    else:
        keyed.sort(key=itemgetter(0))

    table_rows = len(view.rows)
    placements: list[HashTablePlacement[GroupKey]] = []
    for positions in branch.hashed_sets:
        columns = dict.fromkeys(name for at in positions for name in _STATISTICS[at])
        ndistincts = [view.ndistinct(name) for name in columns]
        placements.append(HashTablePlacement(estimate_groups(ndistincts, table_rows, selected, len(rows))))

    sets = branch.sorted_sets + branch.hashed_sets
    getters = [_key_getter(positions) for positions in sets]
    groups: list[Groups] = [{} for _ in sets]
    tables: list[HashTablePlacement[GroupKey] | None] = [None] * len(branch.sorted_sets) + placements
    for _, values, row in keyed:
        vector = _sum_vector(row)
        for getter, found_groups, table in zip(getters, groups, tables, strict=True):
            key = getter(values)
            found = found_groups.get(key)
            if found is None:  # a new group starts from its first row's values, as float8pl does
                found_groups[key] = list(vector)
                if table is not None:
                    table.insert(key, tuple_hash(key))
            else:
                found_groups[key] = list(map(add, found, vector))
                if table is not None and table.members >= table.grow_threshold:
                    table.lookup()
    return [
        found_groups if table is None else {key: found_groups[key] for key in table.scan_order()}
        for found_groups, table in zip(groups, tables, strict=True)
    ]


_BUCKET_NAMES: dict[str, Callable[[str | None], str | None]] = {
    "models": lambda value: value or UNKNOWN_MODEL,
    "model_groups": lambda value: value or "unknown-model-group",
    "providers": lambda value: value or "unknown",
    "endpoints": lambda value: value or None,  # rows without an endpoint or MCP tool are left out
    "mcp_servers": lambda value: value or None,
}


def _put(group: dict[str, _Bucket], name: str, metadata: dict[str, Any], vector: Vector) -> _Bucket:
    """``assign_metric_with_metadata``: a new bucket takes the group's metrics; an existing one (the
    other of '' and NULL, or a parent made for a per-key row) adds them."""
    bucket = group.get(name)
    if bucket is None:
        bucket = group[name] = _Bucket(metadata)
        bucket.metrics = list(vector)
    else:
        _add(bucket.metrics, vector)
    return bucket


def aggregated_activity(view: StoreView, selection: Sequence[Row], api_key_limit: int) -> dict[str, Any]:
    """The whole range at once, as LiteLLM's GROUPING SETS query and its dispatcher produce it (see
    above); per-key data limited to the top ``api_key_limit`` keys by spend, ``entities`` left empty
    (``include_entity_breakdown=False`` on the user route)."""
    top_keys, distinct_keys = top_api_keys(selection, api_key_limit)
    scanned = view.in_storage_order(selection)
    per_key_rows = [row for row in scanned if row["api_key"] in top_keys]
    by_date_group, by_date, everything, *key_free = _run_branch(view, _KEY_FREE, scanned, len(scanned))
    by_key_model, by_key, *per_key = _run_branch(view, _PER_KEY, per_key_rows, len(scanned))

    days: dict[str, _Day] = {}
    for (date,), vector in by_date.items():
        day = days[date] = _Day()
        day.metrics = vector
    # LiteLLM's dispatcher gets the key-free branch's rows first, then the per-key branch's; each dict
    # keeps the order its first group arrived in.
    key_free_sets = [("model_groups", by_date_group)]
    key_free_sets += zip(("models", "providers", "endpoints", "mcp_servers"), key_free, strict=True)
    for breakdown, groups in key_free_sets:
        for (date, value), vector in groups.items():
            name = _BUCKET_NAMES[breakdown](value)
            if name is not None:
                _put(days[date].breakdown[breakdown], name, _metadata_of(breakdown, name), vector)
    for (date, api_key), vector in by_key.items():
        _put(days[date].breakdown["api_keys"], api_key, {}, vector)
    # (breakdown, groups, where the bucket's value and the api_key sit in the group key)
    per_key_sets = [("models", by_key_model, _MODEL_AT, _KEY_AT)]
    per_key_sets += [
        (breakdown, groups, 1, 2)
        for breakdown, groups in zip(
            ("endpoints", "mcp_servers", "providers", "model_groups"), per_key, strict=True
        )
    ]
    for breakdown, groups, value_at, key_at in per_key_sets:
        for key, vector in groups.items():
            date, value, api_key = key[0], key[value_at], key[key_at]
            name = _BUCKET_NAMES[breakdown](value)
            if name is None:
                continue
            parent = days[date].breakdown[breakdown]
            bucket = parent.get(name) or _put(parent, name, _metadata_of(breakdown, name), _zero())
            found = bucket.keys.get(api_key)
            if found is None:
                bucket.keys[api_key] = list(vector)
            else:
                _add(found, vector)
    return {
        "results": _render_days(view, days),
        "metadata": _metadata(
            everything.get((), _zero()),
            page=1,
            total_pages=1,
            has_more=False,
            api_key_limit=api_key_limit,
            total_api_keys=distinct_keys,
            entity_total_api_keys=None,
        ),
    }


def _metadata_of(breakdown: str, name: str) -> dict[str, Any]:
    return _PROVIDER_METADATA.get(name, {}) if breakdown == "providers" else {}
