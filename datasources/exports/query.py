"""The rows of an export as SQL: dimensions, columns, the grouped query and its count; filters as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from enum import StrEnum
from typing import Any

from psycopg import sql

from usage_gateway.datasources.exports.columns import Column, Kind
from usage_gateway.datasources.exports.side_source import BUCKET_COLUMN, side_facts
from usage_gateway.datasources.facts.aggregates import TAG_FACTS, where_clause
from usage_gateway.datasources.facts.side_breakdowns import SideRollup
from usage_gateway.datasources.facts.vocabulary import FactFilter


class ExportDimension(StrEnum):
    DATE = "DATE"
    USER = "USER"
    API_KEY = "API_KEY"
    MODEL = "MODEL"
    PROVIDER = "PROVIDER"
    TEAM = "TEAM"  # the key's team on the day (migration 0007), 'no-team' without one
    # A LiteLLM tag (migration 0008): rows come from tag facts, and a request with N tags is in N rows.
    TAG = "TAG"
    # LiteLLM's roll-ups by model group, endpoint and MCP tool (migration 0009): rows come from their parts,
    # one roll-up per export, crossed only with what resolvers/side_rules.py allows.
    MODEL_GROUP = "MODEL_GROUP"
    ENDPOINT = "ENDPOINT"
    MCP_SERVER = "MCP_SERVER"


SIDE_ROLLUPS = {
    ExportDimension.MODEL_GROUP: SideRollup.MODEL_GROUP,
    ExportDimension.ENDPOINT: SideRollup.ENDPOINT,
    ExportDimension.MCP_SERVER: SideRollup.MCP_SERVER,
}

# The default grouping: the five dimensions exports had before teams (TEAM is asked for by name).
ALL_DIMENSIONS = (
    ExportDimension.DATE,
    ExportDimension.USER,
    ExportDimension.API_KEY,
    ExportDimension.MODEL,
    ExportDimension.PROVIDER,
)


# --- Filters as JSON ------------------------------------------------------------------------------------


def filter_to_json(f: FactFilter) -> dict[str, Any]:
    """The filter as stored in ``exports.filter`` and shown in export metadata."""
    data: dict[str, Any] = {
        "from": f.date_from.isoformat(),
        "to": f.date_to.isoformat(),
        "userIds": None if f.user_ids is None else list(f.user_ids),
        "apiKeys": None if f.api_keys is None else list(f.api_keys),
        "models": None if f.models is None else list(f.models),
        "providers": None if f.providers is None else list(f.providers),
    }
    if f.team_ids is not None:  # only when set: exports made without it keep their stored shape
        data["teamIds"] = list(f.team_ids)
    if f.tags is not None:
        data["tags"] = list(f.tags)
    return data


def filter_from_json(data: dict[str, Any]) -> FactFilter:
    def values(name: str) -> tuple[str, ...] | None:
        found = data.get(name)
        return None if found is None else tuple(found)

    return FactFilter(
        date.fromisoformat(data["from"]),
        date.fromisoformat(data["to"]),
        user_ids=values("userIds"),
        api_keys=values("apiKeys"),
        models=values("models"),
        providers=values("providers"),
        team_ids=values("teamIds"),
        tags=values("tags"),
    )


def normalise_group_by(group_by: Sequence[ExportDimension | str] | None) -> tuple[ExportDimension, ...]:
    """The dimensions in the order given, each once; None means the five of :data:`ALL_DIMENSIONS`."""
    if group_by is None:
        return ALL_DIMENSIONS
    return tuple(dict.fromkeys(ExportDimension(d) for d in group_by))


# --- SQL ------------------------------------------------------------------------------------------------

_METRICS = (
    ("requests", "api_requests"),
    ("successful_requests", "successful_requests"),
    ("failed_requests", "failed_requests"),
    ("prompt_tokens", "prompt_tokens"),
    ("completion_tokens", "completion_tokens"),
    ("cache_read_input_tokens", "cache_read_input_tokens"),
    ("cache_creation_input_tokens", "cache_creation_input_tokens"),
    ("total_tokens", "total_tokens"),
    ("total_response_time_ms", "total_response_time_ms"),
    ("timed_requests", "timed_requests"),
)
_FACT_COLUMN = {
    ExportDimension.DATE: "date",
    ExportDimension.USER: "user_id",
    ExportDimension.API_KEY: "api_key",
    ExportDimension.MODEL: "model",
    ExportDimension.PROVIDER: "provider",
    ExportDimension.TEAM: "team_id",
    ExportDimension.TAG: "tag",
    **{d: BUCKET_COLUMN[rollup] for d, rollup in SIDE_ROLLUPS.items()},
}
# What each dimension adds to a row: (select expression over the group g and its joins, column).
_DIMENSION_SELECT: dict[ExportDimension, tuple[tuple[str, Column], ...]] = {
    ExportDimension.DATE: (("g.date", Column("date", Kind.DATE)),),
    ExportDimension.USER: (
        ("g.user_id", Column("user_id", Kind.TEXT)),
        ("u.username", Column("username", Kind.TEXT)),
        ("u.email", Column("user_email", Kind.TEXT)),
    ),
    ExportDimension.API_KEY: (
        ("g.api_key", Column("api_key", Kind.TEXT)),
        ("k.id", Column("api_key_id", Kind.TEXT)),
        ("COALESCE(k.key_alias, lk.key_alias)", Column("key_alias", Kind.TEXT)),
        ("k.name", Column("key_name", Kind.TEXT)),
    ),
    ExportDimension.MODEL: (("g.model", Column("model", Kind.TEXT)),),
    ExportDimension.PROVIDER: (("g.provider", Column("provider", Kind.TEXT)),),
    ExportDimension.TEAM: (
        ("g.team_id", Column("team_id", Kind.TEXT)),
        ("t.alias", Column("team_alias", Kind.TEXT)),
    ),
    ExportDimension.TAG: (("g.tag", Column("tag", Kind.TEXT)),),
    **{
        d: ((f"g.{BUCKET_COLUMN[rollup]}", Column(BUCKET_COLUMN[rollup], Kind.TEXT)),)
        for d, rollup in SIDE_ROLLUPS.items()
    },
}
_JOINS = {
    ExportDimension.USER: "LEFT JOIN users u ON u.id = g.user_id",
    ExportDimension.TEAM: "LEFT JOIN teams t ON t.id = g.team_id",
    ExportDimension.API_KEY: (
        "LEFT JOIN api_keys k ON k.token_hash = g.api_key LEFT JOIN litellm_keys lk ON lk.api_key = g.api_key"
    ),
}
_METRIC_COLUMNS = (Column("spend", Kind.DECIMAL), *(Column(name, Kind.INT) for name, _ in _METRICS))


def reads_tags(f: FactFilter, group_by: Sequence[ExportDimension]) -> bool:
    """Whether an export reads tag facts: it filters or groups by a tag."""
    return f.tags is not None or ExportDimension.TAG in group_by


def side_rollup(group_by: Sequence[ExportDimension]) -> SideRollup | None:
    """The side roll-up an export reads (its first, the only one an export may have), if any."""
    return next((SIDE_ROLLUPS[d] for d in group_by if d in SIDE_ROLLUPS), None)


def _source(f: FactFilter, group_by: Sequence[ExportDimension]) -> sql.Composable:
    rollup = side_rollup(group_by)
    if rollup is not None:
        owners = (
            f.user_ids is not None
            or f.team_ids is not None
            or ExportDimension.USER in group_by
            or ExportDimension.TEAM in group_by
        )
        return side_facts(rollup, owners=owners)
    return TAG_FACTS if reads_tags(f, group_by) else sql.Identifier("usage_facts")


def export_columns(group_by: Sequence[ExportDimension]) -> list[Column]:
    return [column for d in group_by for _, column in _DIMENSION_SELECT[d]] + list(_METRIC_COLUMNS)


def _group_clause(group_by: Sequence[ExportDimension]) -> sql.Composable:
    if not group_by:
        return sql.SQL("")
    return sql.SQL(" GROUP BY ") + sql.SQL(", ").join(sql.Identifier(_FACT_COLUMN[d]) for d in group_by)


def export_query(f: FactFilter, group_by: Sequence[ExportDimension]) -> tuple[sql.Composed, dict[str, Any]]:
    """The rows of an export, in :func:`export_columns` order, sorted by the group columns."""
    params: dict[str, Any] = {}
    keys = [sql.Identifier(_FACT_COLUMN[d]) for d in group_by]
    # COALESCE: without dimensions the one totals row exists even when nothing matches.
    sums: list[sql.Composable] = [sql.SQL("trim_scale(COALESCE(sum(spend), 0)) AS spend")] + [
        sql.SQL("COALESCE(sum({}), 0)::bigint AS {}").format(sql.Identifier(column), sql.Identifier(name))
        for name, column in _METRICS
    ]
    select: list[sql.Composable] = [
        sql.SQL(expression) for d in group_by for expression, _ in _DIMENSION_SELECT[d]
    ]
    select += [sql.SQL("g.spend::text")] + [sql.SQL("g.{}").format(sql.Identifier(n)) for n, _ in _METRICS]
    joins = [sql.SQL(_JOINS[d]) for d in group_by if d in _JOINS]
    order = [
        sql.SQL("g.{}{}").format(key, sql.SQL("") if d is ExportDimension.DATE else sql.SQL(' COLLATE "C"'))
        for d, key in zip(group_by, keys, strict=True)
    ]
    query = sql.SQL(
        "SELECT {select} FROM (SELECT {keys}{sums} FROM {source} WHERE {where}{group}) g {joins}{order}"
    ).format(
        select=sql.SQL(", ").join(select),
        source=_source(f, group_by),
        keys=sql.SQL("").join(sql.SQL("{}, ").format(key) for key in keys),
        sums=sql.SQL(", ").join(sums),
        where=where_clause(f, params),
        group=_group_clause(group_by),
        joins=sql.SQL(" ").join(joins),
        order=sql.SQL(" ORDER BY ") + sql.SQL(", ").join(order) if order else sql.SQL(""),
    )
    return query, params


def copy_statement(query: sql.Composed) -> sql.Composed:
    """The rows of ``query`` as Postgres' CSV, one ``\n``-ended line per row: NULL an unquoted empty field,
    the empty string ``""``, fields quoted when they hold a comma, a quote, CR or LF."""
    return sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(query)


def count_query(
    f: FactFilter, group_by: Sequence[ExportDimension]
) -> tuple[sql.SQL | sql.Composed, dict[str, Any]]:
    params: dict[str, Any] = {}
    if not group_by:
        return sql.SQL("SELECT 1"), params
    query = sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {source} WHERE {where}{group}) g").format(
        source=_source(f, group_by), where=where_clause(f, params), group=_group_clause(group_by)
    )
    return query, params


def facts_count_query(
    f: FactFilter, group_by: Sequence[ExportDimension] = ()
) -> tuple[sql.Composed, dict[str, Any]]:
    params: dict[str, Any] = {}
    query = sql.SQL("SELECT count(*) FROM {} WHERE {}").format(_source(f, group_by), where_clause(f, params))
    return query, params
