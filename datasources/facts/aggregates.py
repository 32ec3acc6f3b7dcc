"""SQL aggregation over ``usage_facts`` and its daily rollups: totals, time series, keyset-paged breakdowns,
per-group detail.

Every public function runs one SQL statement (none when asked about no keys), whatever the number of
groups it returns, so a GraphQL request costs a constant number of statements. Postgres does the
aggregation; Python only reshapes rows. Identifiers come from the enums' fixed values and every value is
a bound parameter. Group keys sort byte-wise (``COLLATE "C"``, which is code point order in UTF-8), so the
order does not depend on the database's locale and matches Python's ``sorted``. What each number counts
is in :mod:`usage_gateway.datasources.facts.vocabulary`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import date
from decimal import Decimal
from typing import Any

from psycopg import sql

from usage_gateway.datasources.db import Database
from usage_gateway.datasources.facts.grain import (
    METRIC_COLUMNS,
    MonthGrain,
    MonthRollup,
    filter_clause,
    month_relation,
    month_rollup_for,
    presence_count,
)
from usage_gateway.datasources.facts.vocabulary import (
    Dimension,
    Direction,
    FactFilter,
    Granularity,
    GroupPage,
    GroupRow,
    InvalidCursor,
    Order,
    OrderMetric,
    UsageTotals,
    decode_cursor,
    encode_cursor,
)

__all__ = [
    "Dimension",
    "Direction",
    "FactFilter",
    "Granularity",
    "GroupPage",
    "GroupRow",
    "InvalidCursor",
    "Order",
    "OrderMetric",
    "UsageTotals",
    "breakdown",
    "distinct_values",
    "series_by_group",
    "time_series",
    "top_within",
    "totals",
]

# UsageTotals field -> the usage_facts column it sums.
_SUMS = {
    "spend": "spend",
    "requests": "api_requests",
    "successful_requests": "successful_requests",
    "failed_requests": "failed_requests",
    "prompt_tokens": "prompt_tokens",
    "completion_tokens": "completion_tokens",
    "cache_read_input_tokens": "cache_read_input_tokens",
    "cache_creation_input_tokens": "cache_creation_input_tokens",
    "total_tokens": "total_tokens",
    "total_response_time_ms": "total_response_time_ms",
    "timed_requests": "timed_requests",
}
# Each active count (a UsageTotals field): the dimension whose distinct values it counts, and the one value
# it leaves out. Totals count each from the smallest relation holding it.
_COUNTED: dict[str, tuple[Dimension, str | None]] = {
    "active_users": (Dimension.USER, "unattributed"),
    "active_api_keys": (Dimension.API_KEY, "unattributed"),
    "active_models": (Dimension.MODEL, None),
}
# UsageTotals field -> its count, valid over usage_facts and over the partial sums of _aggregate.
_ACTIVE = {
    name: f"count(DISTINCT {dim.value})" + ("" if out is None else f" FILTER (WHERE {dim.value} <> '{out}')")
    for name, (dim, out) in _COUNTED.items()
}
# In UsageTotals field order, so a row slice builds UsageTotals positionally.
_METRICS = tuple(f.name for f in fields(UsageTotals))
_N = len(_METRICS)
if set(_METRICS) != {*_SUMS, *_ACTIVE}:
    raise RuntimeError("every UsageTotals field needs exactly one SQL aggregate")
if set(_SUMS.values()) != set(METRIC_COLUMNS):
    raise RuntimeError("the month rollups must keep every column a sum reads")

# What GroupRow.related lists for a group of each dimension: a model's providers and a provider's models.
# Users and keys list nothing (the schema shows no such list, and it would cost a sort per group).
_RELATED: dict[Dimension, Dimension | None] = {
    Dimension.MODEL: Dimension.PROVIDER,
    Dimension.PROVIDER: Dimension.MODEL,
    Dimension.API_KEY: None,
    Dimension.USER: None,
    Dimension.TEAM: None,
    Dimension.TAG: None,
}
_STEPS = {Granularity.DAY: "1 day", Granularity.WEEK: "1 week", Granularity.MONTH: "1 month"}
_DIRECTIONS = {Direction.ASC: sql.SQL("ASC"), Direction.DESC: sql.SQL("DESC")}
_C = sql.SQL('COLLATE "C"')
_TRUE = sql.SQL("true")
_DEFAULT_ORDER = Order()

Key = tuple[str, sql.Composable]  # (output column, expression over usage_facts)

_FACTS = sql.Identifier("usage_facts")
# Tag facts (migration 0008) shaped as usage_facts plus their tag: the user and team of each are its key's
# attributed ones on its day, by the same functions as usage facts' (attributed_user, attributed_team); the
# LiteLLM user the attribution falls back to is the key's owner in LiteLLM's key metadata (litellm_keys).
TAG_FACTS = sql.SQL(
    "(SELECT t.date, t.tag, t.api_key, coalesce(k.user_id, '') AS litellm_user_id, t.model, t.provider,"
    " attributed_user(t.api_key, t.date, coalesce(k.user_id, '')) AS user_id,"
    " attributed_team(t.api_key, t.date) AS team_id, t.spend, t.prompt_tokens, t.completion_tokens,"
    " t.cache_read_input_tokens, t.cache_creation_input_tokens, t.total_tokens, t.api_requests,"
    " t.successful_requests, t.failed_requests, t.total_response_time_ms, t.timed_requests"
    " FROM tag_facts t LEFT JOIN litellm_keys k ON k.api_key = t.api_key) AS usage_facts"
)
# The daily rollups of migrations 0004 and 0013 and the dimensions each keeps (every metric, summed, and
# the date).
_ROLLUPS = (
    (frozenset({Dimension.MODEL, Dimension.PROVIDER}), sql.Identifier("usage_model_days")),
    (frozenset({Dimension.USER}), sql.Identifier("usage_user_days")),
    (frozenset({Dimension.TEAM}), sql.Identifier("usage_team_days")),
)


# --- SQL builders ---------------------------------------------------------------------------------------


def source_for(f: FactFilter, dims: Iterable[Dimension], *, active_counts: bool) -> sql.Composable:
    """The smallest relation holding every column a query reads: a rollup when one keeps all of
    ``dims`` (grouped by, pinned or listed) and the filter's dimensions, else ``usage_facts``.

    Active counts need the user, the key and the model of each fact: only the facts have all three.
    """
    needed = {*dims, *(d for d in Dimension if f.values_for(d) is not None)}
    if Dimension.TAG in needed:
        return TAG_FACTS
    if active_counts:
        needed |= {Dimension.USER, Dimension.API_KEY, Dimension.MODEL}
    for kept, table in _ROLLUPS:
        if needed <= kept:
            return table
    return _FACTS


def _list(items: Iterable[sql.Composable]) -> sql.Composed:
    return sql.SQL(", ").join(items)


def _ordinals(count: int) -> sql.Composed:
    return _list(sql.SQL(str(n)) for n in range(1, count + 1))


def _aggregate(
    keys: Sequence[Key],
    where: sql.Composable,
    *,
    source: sql.Composable = _FACTS,
    active_counts: bool,
    pre_aggregate: bool,
    describe: bool = False,
    related: Dimension | None = None,
    having: sql.Composable = _TRUE,
    present: bool = False,
) -> sql.Composed:
    """``SELECT`` the keys, the metrics (named as UsageTotals fields) and, with ``describe``,
    ``last_active`` and the sorted ``related`` values (none without ``related``) of the facts matching
    ``where``, grouped by the keys, over ``source`` (see :func:`source_for`).

    Without ``active_counts`` the active counts read 0. With them and ``pre_aggregate``, facts are first
    summed per keys × user × api key × model (see :func:`_partial_sums`), so that the ``count(DISTINCT …)``
    sorts run over those few partial sums rather than over every fact.

    With ``present``, ``source`` is a :func:`~usage_gateway.datasources.facts.grain.month_relation`: a group
    is kept only if it is present, its related values are those of its present rows, and ``last_active``
    reads null (the month rows do not say it: :func:`breakdown` looks it up for the page).
    """
    named_keys = [sql.SQL("{} AS {}").format(expr, sql.Identifier(alias)) for alias, expr in keys]
    if active_counts and pre_aggregate:
        source = _partial_sums(named_keys, where, related, source)
        sums, last_active, where = {name: name for name in _SUMS}, "max(last_active)", _TRUE
        select: list[sql.Composable] = [sql.Identifier(alias) for alias, _ in keys]
    else:
        sums, last_active, select = _SUMS, "max(date)", [*named_keys]
    select += [_metric(name, sums, active_counts) for name in _METRICS]
    if present:
        last_active, having = "NULL::date", sql.SQL("bool_or(present) AND {}").format(having)
    if describe:
        select.append(sql.SQL(last_active + " AS last_active"))
        select.append(
            sql.SQL("'{}'::text[] AS related")
            if related is None
            else sql.SQL("array_agg(DISTINCT {r} {c} ORDER BY {r} {c}){only} AS related").format(
                r=sql.Identifier(related.value),
                c=_C,
                only=sql.SQL(" FILTER (WHERE present)" if present else ""),
            )
        )
    query = sql.SQL("SELECT {} FROM {} WHERE {}").format(_list(select), source, where)
    if keys:
        query = sql.SQL("{} GROUP BY {} HAVING {}").format(query, _ordinals(len(keys)), having)
    return query


def _partial_sums(
    named_keys: list[sql.Composed],
    where: sql.Composable,
    related: Dimension | None,
    source: sql.Composable = _FACTS,
) -> sql.Composed:
    """The matching facts summed per keys × user × api key × model (× ``related``), with their last day.

    This shrinks the input many times over (a key bucket uses few models and has one owner a day) unless
    a key is the day itself, which is why time series do not use it.
    """
    dimensions = [Dimension.USER, Dimension.API_KEY, Dimension.MODEL]
    if related is not None and related not in dimensions:
        dimensions.append(related)
    grouped = [*named_keys, *(sql.Identifier(dimension.value) for dimension in dimensions)]
    sums = _list(
        sql.SQL("sum({}) AS {}").format(sql.Identifier(column), sql.Identifier(name))
        for name, column in _SUMS.items()
    )
    return sql.SQL(
        "(SELECT {}, {}, max(date) AS last_active FROM {} WHERE {} GROUP BY {}) AS partial"
    ).format(_list(grouped), sums, source, where, _ordinals(len(grouped)))


def _metric(name: str, sums: Mapping[str, str], active_counts: bool) -> sql.Composed:
    """``name``'s aggregate, ``sums`` naming the column each sum adds up."""
    if name in sums:
        # Postgres sums bigints as numeric; cast back, so rows arrive as ints rather than Decimals that
        # Python must convert (a tenth of a dashboard's time went there). Spend stays numeric.
        cast = "" if name == "spend" else "::bigint"
        expression: sql.Composable = sql.SQL("sum({}){}").format(sql.Identifier(sums[name]), sql.SQL(cast))
    else:
        expression = sql.SQL(_ACTIVE[name] if active_counts else "0")
    return sql.SQL("{} AS {}").format(expression, sql.Identifier(name))


def _columns(alias: str) -> sql.Composable:
    """The metric columns of a relation built with :func:`_aggregate`."""
    return _list(sql.Identifier(alias, name) for name in _METRICS)


def where_clause(f: FactFilter, params: dict[str, Any]) -> sql.Composable:
    """The filter as a condition on ``usage_facts``; adds its values to ``params``."""
    params["date_from"], params["date_to"] = f.date_from, f.date_to
    return sql.SQL("date BETWEEN %(date_from)s AND %(date_to)s AND {}").format(filter_clause(f, params))


def _listed(related: Dimension | None) -> tuple[Dimension, ...]:
    return () if related is None else (related,)


def _any(dimension: Dimension, param: str) -> sql.Composable:
    return sql.SQL("{} = ANY({}::text[])").format(sql.Identifier(dimension.value), sql.Placeholder(param))


def _bucket(granularity: Granularity) -> sql.Composable:
    """The first day of the bucket holding a fact."""
    return sql.SQL("date_trunc({}, date::timestamp)::date").format(sql.Literal(granularity.value))


def _buckets(granularity: Granularity) -> sql.Composable:
    """Every bucket from the one holding ``date_from`` to the one holding ``date_to``."""
    return sql.SQL(
        "SELECT generate_series(date_trunc({unit}, %(date_from)s::timestamp),"
        " date_trunc({unit}, %(date_to)s::timestamp), {step}::interval)::date AS bucket"
    ).format(unit=sql.Literal(granularity.value), step=sql.Literal(_STEPS[granularity]))


def _group_columns(alias: str) -> sql.Composable:
    """The columns of a GroupRow in a relation built with :func:`_aggregate` with ``describe``."""
    return sql.SQL("{}, {}, {}, {}").format(
        sql.Identifier(alias, "key"),
        _columns(alias),
        sql.Identifier(alias, "last_active"),
        sql.Identifier(alias, "related"),
    )


def _order_by(order: Order) -> sql.Composable:
    return sql.SQL("{} {}, key {} ASC").format(
        sql.Identifier(order.metric.value), _DIRECTIONS[order.direction], _C
    )


def _group_row(values: Sequence[Any]) -> GroupRow:
    """A GroupRow from the columns of :func:`_group_columns`."""
    key, *rest = values
    return GroupRow(key, UsageTotals.from_values(rest[:_N]), rest[_N], tuple(rest[_N + 1]))


# --- Queries --------------------------------------------------------------------------------------------
# ``active_counts=False`` skips the three ``count(DISTINCT …)`` (they read 0), the costly part of an
# aggregate: pass it when the caller was not asked for active users, keys or models.


async def totals(db: Database, f: FactFilter, *, active_counts: bool = True) -> UsageTotals:
    """The aggregate of every fact matching ``f``.

    The sums and each active count are separate subqueries, each over the smallest relation that can
    answer it (users from the user rollup, models from the model rollup), all in one statement.
    """
    params: dict[str, Any] = {}
    where = where_clause(f, params)
    sums = _aggregate([], where, source=source_for(f, (), active_counts=False), active_counts=False,
                      pre_aggregate=False)  # fmt: skip
    if not active_counts:
        row = await db.fetch_one(sums, params)
        return UsageTotals.ZERO if row is None else UsageTotals.from_values(row)
    grain = MonthGrain.of(f.date_from, f.date_to)
    counts = [
        sql.SQL("{} AS {}").format(_active_count(f, name, grain, where, params), sql.Identifier(name))
        for name in _COUNTED
    ]
    columns = [sql.Identifier("s", name) for name in _METRICS if name in _SUMS]
    query = sql.SQL("SELECT {}, {} FROM ({}) AS s").format(_list(columns), _list(counts), sums)
    row = await db.fetch_one(query, params)
    return UsageTotals.ZERO if row is None else UsageTotals.from_values(row)


def _active_count(
    f: FactFilter, name: str, grain: MonthGrain, where: sql.Composable, params: dict[str, Any]
) -> sql.Composable:
    """The subquery of active count ``name``: from the month rollups' active days when the range reads
    whole months and a month rollup keeps its dimension and the filter's, else from the smallest day
    relation."""
    dimension, excluded = _COUNTED[name]
    rollup = month_rollup_for(f, (dimension,))
    if grain.worth_it and rollup is not None:
        return presence_count(f, rollup, grain, dimension, excluded, params)
    return sql.SQL("(SELECT {} FROM {} WHERE {})").format(
        sql.SQL(_ACTIVE[name]), source_for(f, (dimension,), active_counts=False), where
    )


async def time_series(
    db: Database, f: FactFilter, granularity: Granularity, *, active_counts: bool = True
) -> list[tuple[date, UsageTotals]]:
    """One point per bucket from the bucket of ``date_from`` to that of ``date_to``, empty ones zero.

    A point's date is the first day of its bucket (Monday for WEEK, the 1st for MONTH); active counts are
    per bucket.
    """
    granularity = Granularity(granularity)
    params: dict[str, Any] = {}
    aggregate = _aggregate(
        [("bucket", _bucket(granularity))],
        where_clause(f, params),
        source=source_for(f, (), active_counts=active_counts),
        active_counts=active_counts,
        pre_aggregate=False,
    )
    query = sql.SQL(
        "WITH buckets AS ({buckets}), agg AS ({aggregate})"
        " SELECT b.bucket, {columns} FROM buckets b LEFT JOIN agg a USING (bucket) ORDER BY b.bucket"
    ).format(buckets=_buckets(granularity), aggregate=aggregate, columns=_columns("a"))
    rows = await db.fetch_all(query, params)
    return [(row[0], UsageTotals.from_values(row[1:])) for row in rows]


async def breakdown(
    db: Database,
    f: FactFilter,
    dimension: Dimension,
    *,
    order: Order,
    first: int,
    after: str | None,
    min_spend: Decimal | None = None,
    max_spend: Decimal | None = None,
    active_counts: bool = True,
) -> GroupPage:
    """Groups of ``dimension`` in ``order`` (ties by key ascending), keyset-paged.

    ``after`` is an ``end_cursor`` of an earlier page of the same dimension and order (else
    InvalidCursor); the page starts strictly after it. ``min_spend``/``max_spend`` keep the groups whose
    spend lies within them (inclusive), and ``total_count`` counts those; the cursor does not matter to
    it. ``first`` is trusted to be in 0..500; 0 returns no rows and the right ``total_count``.
    """
    dimension, order = Dimension(dimension), Order(OrderMetric(order.metric), Direction(order.direction))
    params: dict[str, Any] = {"limit": first + 1}
    having = [_TRUE]
    if min_spend is not None:
        params["min_spend"] = min_spend
        having.append(sql.SQL("sum(spend) >= %(min_spend)s"))
    if max_spend is not None:
        params["max_spend"] = max_spend
        having.append(sql.SQL("sum(spend) <= %(max_spend)s"))
    start: sql.Composable = _TRUE
    if after is not None:
        params["after_value"], params["after_key"] = decode_cursor(after, dimension, order)
        beyond = sql.SQL(">" if order.direction is Direction.ASC else "<")
        start = sql.SQL(
            "({metric} {beyond} %(after_value)s::numeric OR ({metric} = %(after_value)s::numeric"
            " AND key {c} > %(after_key)s))"
        ).format(metric=sql.Identifier(order.metric.value), beyond=beyond, c=_C)
    related = _RELATED[dimension]
    dims = (dimension, *_listed(related))
    where = where_clause(f, params)
    grain = MonthGrain.of(f.date_from, f.date_to)
    rollup = month_rollup_for(f, dims)
    if grain.worth_it and rollup is not None and not active_counts:
        query = _month_page(f, dimension, rollup, grain, order, sql.SQL(" AND ").join(having), start, params)
    else:
        groups = _aggregate(
            [("key", sql.Identifier(dimension.value))],
            where,
            source=source_for(f, dims, active_counts=active_counts),
            active_counts=active_counts,
            pre_aggregate=True,
            describe=True,
            related=related,
            having=sql.SQL(" AND ").join(having),
        )
        # Aggregate once; the count and the page both read the materialized CTE. The LEFT JOIN keeps one
        # row (carrying the count) when the page is empty.
        query = sql.SQL(
            "WITH groups AS MATERIALIZED ({groups})"
            " SELECT total.n, {columns} FROM (SELECT count(*) AS n FROM groups) total"
            " LEFT JOIN LATERAL (SELECT * FROM groups WHERE {start} ORDER BY {order} LIMIT %(limit)s) page"
            " ON true ORDER BY {order}"
        ).format(groups=groups, columns=_group_columns("page"), start=start, order=_order_by(order))
    result = await db.fetch_all(query, params)
    total_count = int(result[0][0]) if result else 0
    rows = [_group_row(row[1:]) for row in result if row[1] is not None]
    page = rows[:first]
    end_cursor = encode_cursor(dimension, order, page[-1]) if page else None
    return GroupPage(total_count, page, len(rows) > first, end_cursor)


def _month_page(
    f: FactFilter,
    dimension: Dimension,
    rollup: MonthRollup,
    grain: MonthGrain,
    order: Order,
    having: sql.Composable,
    start: sql.Composable,
    params: dict[str, Any],
) -> sql.Composed:
    """:func:`breakdown`'s statement over the month rollups, in two passes: every group summed on the
    order's metric alone (what ranking and counting need), then every metric summed for the page's groups
    only, read through the rollup's key. ``last_active``, which month rows do not hold, is looked up in
    the day rows for the page's groups."""
    key = sql.Identifier(dimension.value)
    ranked = sql.SQL(
        "SELECT {key} AS key, sum({column}) AS {metric} FROM {relation} GROUP BY 1"
        " HAVING bool_or(present) AND {having}"
    ).format(
        key=key,
        column=sql.Identifier(_SUMS[order.metric.value]),
        metric=sql.Identifier(order.metric.value),
        relation=month_relation(f, rollup, grain, params),
        having=having,
    )
    only_page = sql.SQL("{} = ANY(ARRAY(SELECT key FROM page))").format(key)
    detail = _aggregate(
        [("key", key)],
        _TRUE,
        source=month_relation(f, rollup, grain, params, only=only_page),
        active_counts=False,
        pre_aggregate=False,
        describe=True,
        related=_RELATED[dimension],
        present=True,
    )
    last_active = sql.SQL("(SELECT max(date) FROM {} WHERE {} AND {} = detail.key)").format(
        source_for(f, (dimension,), active_counts=False), where_clause(f, params), key
    )
    return sql.SQL(
        "WITH ranked AS MATERIALIZED ({ranked}),"
        " page AS MATERIALIZED (SELECT key FROM ranked WHERE {start} ORDER BY {order} LIMIT %(limit)s),"
        " detail AS ({detail})"
        " SELECT total.n, detail.key, {metrics}, {last_active}, detail.related"
        " FROM (SELECT count(*) AS n FROM ranked) total LEFT JOIN detail ON true ORDER BY {order}"
    ).format(
        ranked=ranked,
        start=start,
        order=_order_by(order),
        detail=detail,
        metrics=_columns("detail"),
        last_active=last_active,
    )


async def series_by_group(
    db: Database,
    f: FactFilter,
    dimension: Dimension,
    keys: Sequence[str],
    granularity: Granularity,
    *,
    active_counts: bool = True,
) -> dict[str, list[tuple[date, UsageTotals]]]:
    """The :func:`time_series` of each group in ``keys``, in one statement (none for no keys).

    Every key is answered, with zeros where it has no matching facts.
    """
    if not keys:
        return {}
    dimension, granularity = Dimension(dimension), Granularity(granularity)
    params: dict[str, Any] = {"keys": list(keys)}
    aggregate = _aggregate(
        [("key", sql.Identifier(dimension.value)), ("bucket", _bucket(granularity))],
        sql.SQL("{} AND {}").format(where_clause(f, params), _any(dimension, "keys")),
        source=source_for(f, (dimension,), active_counts=active_counts),
        active_counts=active_counts,
        pre_aggregate=False,
    )
    query = sql.SQL(
        "WITH buckets AS ({buckets}), keys AS (SELECT DISTINCT unnest(%(keys)s::text[]) AS key),"
        " agg AS ({aggregate})"
        " SELECT k.key, b.bucket, {columns} FROM keys k CROSS JOIN buckets b"
        " LEFT JOIN agg a ON a.key = k.key AND a.bucket = b.bucket ORDER BY k.key, b.bucket"
    ).format(buckets=_buckets(granularity), aggregate=aggregate, columns=_columns("a"))
    series: dict[str, list[tuple[date, UsageTotals]]] = {key: [] for key in keys}
    for row in await db.fetch_all(query, params):
        series[row[0]].append((row[1], UsageTotals.from_values(row[2:])))
    return series


async def top_within(
    db: Database,
    f: FactFilter,
    outer: Dimension,
    outer_keys: Sequence[str],
    inner: Dimension,
    *,
    first: int,
    order: Order = _DEFAULT_ORDER,
    active_counts: bool = True,
) -> dict[str, list[GroupRow]]:
    """For each outer key, its first ``first`` inner groups in ``order`` (ties by key ascending).

    E.g. each user's top models, each model's top users; one statement (none for no keys). Every outer
    key is answered, [] when it has no matching facts. Rows (``related`` too) count only the facts of
    their outer key.
    """
    if not outer_keys:
        return {}
    outer, inner = Dimension(outer), Dimension(inner)
    order = Order(OrderMetric(order.metric), Direction(order.direction))
    params: dict[str, Any] = {"outer_keys": list(outer_keys), "first": first}
    groups = _aggregate(
        [("outer_key", sql.Identifier(outer.value)), ("key", sql.Identifier(inner.value))],
        sql.SQL("{} AND {}").format(where_clause(f, params), _any(outer, "outer_keys")),
        source=source_for(f, (outer, inner, *_listed(_RELATED[inner])), active_counts=active_counts),
        active_counts=active_counts,
        pre_aggregate=True,
        describe=True,
        related=_RELATED[inner],
    )
    query = sql.SQL(
        "WITH groups AS ({groups}),"
        " ranked AS (SELECT *, row_number() OVER (PARTITION BY outer_key ORDER BY {order}) AS rn"
        " FROM groups)"
        " SELECT r.outer_key, {columns} FROM ranked r WHERE r.rn <= %(first)s ORDER BY r.outer_key, r.rn"
    ).format(groups=groups, order=_order_by(order), columns=_group_columns("r"))
    result: dict[str, list[GroupRow]] = {key: [] for key in outer_keys}
    for row in await db.fetch_all(query, params):
        result[row[0]].append(_group_row(row[1:]))
    return result


async def distinct_values(db: Database, f: FactFilter, dimension: Dimension) -> list[str]:
    """The values of ``dimension`` among the facts matching ``f``, sorted (pseudo ids included)."""
    dimension = Dimension(dimension)
    params: dict[str, Any] = {}
    query = sql.SQL("SELECT {dim} FROM {source} WHERE {where} GROUP BY {dim} ORDER BY {dim} {c}").format(
        dim=sql.Identifier(dimension.value),
        source=source_for(f, (dimension,), active_counts=False),
        where=where_clause(f, params),
        c=_C,
    )
    return [row[0] for row in await db.fetch_all(query, params)]
