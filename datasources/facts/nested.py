"""Per-group detail below the first level: groups identified by a *path* of several dimensions.

``series_by_group`` and ``top_within`` (:mod:`~usage_gateway.datasources.facts.aggregates`) answer
for groups of one dimension (each user's series, each user's top models). A node two levels down, such
as a model inside a user (``byUser.nodes.models``), is the group (user, model); its series and its own
top groups need the same queries over a tuple of dimensions. Each function here runs one statement
whatever the number of paths, so nested GraphQL fields stay batched at any depth. The SQL is built with
the builders of ``aggregates``, so both count alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from psycopg import sql

from usage_gateway.datasources.db import Database
from usage_gateway.datasources.facts.aggregates import (  # its private builders: over more keys
    _RELATED,
    Dimension,
    FactFilter,
    Granularity,
    GroupRow,
    Key,
    Order,
    UsageTotals,
    _aggregate,
    _bucket,
    _buckets,
    _columns,
    _group_columns,
    _group_row,
    _listed,
    _order_by,
    source_for,
    where_clause,
)

Path = tuple[str, ...]


def _names(size: int) -> list[str]:
    return [f"k{i}" for i in range(size)]


def _path_keys(dims: Sequence[Dimension]) -> list[Key]:
    return [(name, sql.Identifier(d.value)) for name, d in zip(_names(len(dims)), dims, strict=True)]


def _columns_of(alias: str, size: int) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(alias, name) for name in _names(size))


def _paths(dims: Sequence[Dimension], paths: Sequence[Path], params: dict[str, Any]) -> sql.Composable:
    """A ``paths`` relation (columns k0, k1, …) holding the distinct paths."""
    names = _names(len(dims))
    for i, name in enumerate(names):
        params[f"path_{name}"] = [path[i] for path in paths]
    return sql.SQL("paths AS (SELECT DISTINCT * FROM unnest({arrays}) AS p({names}))").format(
        arrays=sql.SQL(", ").join(sql.SQL("{}::text[]").format(sql.Placeholder(f"path_{n}")) for n in names),
        names=sql.SQL(", ").join(map(sql.Identifier, names)),
    )


def _on_path(f: FactFilter, dims: Sequence[Dimension], params: dict[str, Any]) -> sql.Composable:
    """The filter, and the facts' values of ``dims`` forming one of the paths."""
    return sql.SQL("{where} AND ({dims}) IN (SELECT {names} FROM paths)").format(
        where=where_clause(f, params),
        dims=sql.SQL(", ").join(sql.Identifier(d.value) for d in dims),
        names=sql.SQL(", ").join(map(sql.Identifier, _names(len(dims)))),
    )


def _check(dims: Sequence[Dimension], paths: Sequence[Path]) -> list[Dimension]:
    if not dims or any(len(path) != len(dims) for path in paths):
        raise ValueError("every path needs one value per dimension")
    return [Dimension(d) for d in dims]


async def series_by_paths(
    db: Database,
    f: FactFilter,
    dims: Sequence[Dimension],
    paths: Sequence[Path],
    granularity: Granularity,
    *,
    active_counts: bool = True,
) -> dict[Path, list[tuple[date, UsageTotals]]]:
    """The time series (as ``aggregates.time_series``) of each path's group, all answered."""
    dims = _check(dims, paths)
    if not paths:
        return {}
    granularity, size = Granularity(granularity), len(dims)
    params: dict[str, Any] = {}
    aggregate = _aggregate(
        [*_path_keys(dims), ("bucket", _bucket(granularity))],
        _on_path(f, dims, params),
        source=source_for(f, dims, active_counts=active_counts),
        active_counts=active_counts,
        pre_aggregate=False,
    )
    joined = sql.SQL(" AND ").join(sql.SQL("a.{k} = p.{k}").format(k=sql.Identifier(n)) for n in _names(size))
    query = sql.SQL(
        "WITH buckets AS ({buckets}), {paths}, agg AS ({aggregate})"
        " SELECT {path_columns}, b.bucket, {columns} FROM paths p CROSS JOIN buckets b"
        " LEFT JOIN agg a ON {joined} AND a.bucket = b.bucket ORDER BY {path_columns}, b.bucket"
    ).format(
        buckets=_buckets(granularity),
        paths=_paths(dims, paths, params),
        aggregate=aggregate,
        path_columns=_columns_of("p", size),
        columns=_columns("a"),
        joined=joined,
    )
    series: dict[Path, list[tuple[date, UsageTotals]]] = {tuple(path): [] for path in paths}
    for row in await db.fetch_all(query, params):
        series[tuple(row[:size])].append((row[size], UsageTotals.from_values(row[size + 1 :])))
    return series


async def top_within_paths(
    db: Database,
    f: FactFilter,
    dims: Sequence[Dimension],
    paths: Sequence[Path],
    inner: Dimension,
    *,
    first: int,
    order: Order = Order(),  # noqa: B008  # frozen, so a shared default is safe
    active_counts: bool = True,
) -> dict[Path, list[GroupRow]]:
    """For each path, its first ``first`` groups of ``inner`` (as ``aggregates.top_within``)."""
    dims = _check(dims, paths)
    if not paths:
        return {}
    inner, size = Dimension(inner), len(dims)
    params: dict[str, Any] = {"first": first}
    groups = _aggregate(
        [*_path_keys(dims), ("key", sql.Identifier(inner.value))],
        _on_path(f, dims, params),
        source=source_for(f, (*dims, inner, *_listed(_RELATED[inner])), active_counts=active_counts),
        active_counts=active_counts,
        pre_aggregate=True,
        describe=True,
        related=_RELATED[inner],
    )
    query = sql.SQL(
        "WITH {paths}, groups AS ({groups}),"
        " ranked AS (SELECT *, row_number() OVER (PARTITION BY {partition} ORDER BY {order}) AS rn"
        " FROM groups)"
        " SELECT {path_columns}, {columns} FROM ranked r WHERE r.rn <= %(first)s"
        " ORDER BY {path_columns}, r.rn"
    ).format(
        paths=_paths(dims, paths, params),
        groups=groups,
        partition=sql.SQL(", ").join(map(sql.Identifier, _names(size))),
        order=_order_by(order),
        path_columns=_columns_of("r", size),
        columns=_group_columns("r"),
    )
    result: dict[Path, list[GroupRow]] = {tuple(path): [] for path in paths}
    for row in await db.fetch_all(query, params):
        result[tuple(row[:size])].append(_group_row(row[size:]))
    return result
