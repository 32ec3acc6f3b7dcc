"""Model groups, endpoints and MCP tools: keyset-paged groups of ``usage_breakdown_facts`` (migration 0009).

LiteLLM rolls each day up by these apart from users and providers, with a part per key bucket; the gateway
reads every day model by model, so the parts are known per key bucket and model. Which filters can apply
is :mod:`usage_gateway.resolvers.side_rules`'s to say; this module answers the ones that can: the range,
key buckets, models, and users and teams through the key's attributed user and team on the day
(``usage_facts.user_id``, ``usage_facts.team_id``).
A key bucket whose facts of a day belong to several users cannot be split between them: such rows are
reported (``ambiguous``) so the caller refuses rather than guesses.

One statement per page, as in :mod:`~usage_gateway.datasources.facts.aggregates`; the usage facts are read
only when users matter (a user filter, or active users asked for); active keys and models are always
counted (from the breakdown rows themselves).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, cast

from psycopg import sql

from usage_gateway.datasources.db import Database
from usage_gateway.datasources.facts.vocabulary import (
    Dimension,
    Direction,
    FactFilter,
    GroupPage,
    GroupRow,
    Order,
    UsageTotals,
    decode_cursor,
    encode_cursor,
)


class SideRollup(StrEnum):
    """A roll-up of ``usage_breakdown_facts`` (the value is its ``rollup`` column)."""

    MODEL_GROUP = "model_group"
    ENDPOINT = "endpoint"
    MCP_SERVER = "mcp_server"


@dataclass(frozen=True)
class SidePage:
    page: GroupPage
    # Some matching rows' key bucket served several users that day: a user filter or active users over
    # them cannot be exact.
    ambiguous: bool


_SUMS = (
    ("spend", "spend", ""),
    ("requests", "api_requests", "::bigint"),
    ("successful_requests", "successful_requests", "::bigint"),
    ("failed_requests", "failed_requests", "::bigint"),
    ("prompt_tokens", "prompt_tokens", "::bigint"),
    ("completion_tokens", "completion_tokens", "::bigint"),
    ("cache_read_input_tokens", "cache_read_input_tokens", "::bigint"),
    ("cache_creation_input_tokens", "cache_creation_input_tokens", "::bigint"),
    ("total_tokens", "total_tokens", "::bigint"),
    ("total_response_time_ms", "total_response_time_ms", "::bigint"),
    ("timed_requests", "timed_requests", "::bigint"),
)
_C = sql.SQL('COLLATE "C"')


def cursor_dimension(rollup: SideRollup) -> Dimension:
    """The cursors of :mod:`vocabulary` only read the dimension's value: a roll-up's cursor names it."""
    return cast(Dimension, rollup)


def _metrics(users_known: bool) -> sql.Composable:
    sums = [
        sql.SQL("sum({}){} AS {}").format(sql.Identifier(column), sql.SQL(cast_to), sql.Identifier(name))
        for name, column, cast_to in _SUMS
    ]
    active_users = (
        "count(DISTINCT users[1]) FILTER (WHERE users[1] <> 'unattributed')" if users_known else "0"
    )
    counts = [
        sql.SQL(f"{active_users} AS active_users"),
        sql.SQL("count(DISTINCT api_key) FILTER (WHERE api_key <> 'unattributed') AS active_api_keys"),
        sql.SQL("count(DISTINCT model) AS active_models"),
    ]
    return sql.SQL(", ").join([*sums, *counts])


def _columns(alias: str) -> sql.Composable:
    names = [name for name, _, _ in _SUMS] + ["active_users", "active_api_keys", "active_models"]
    return sql.SQL(", ").join(sql.Identifier(alias, name) for name in names)


async def side_breakdown(
    db: Database,
    f: FactFilter,
    rollup: SideRollup,
    *,
    order: Order,
    first: int,
    after: str | None,
    active_users: bool,
) -> SidePage:
    """Buckets of ``rollup`` in ``order`` (ties by bucket ascending), keyset-paged like
    :func:`~usage_gateway.datasources.facts.aggregates.breakdown`. ``f`` must hold only filters
    :mod:`side_rules` allows (its providers are not read)."""
    rollup = SideRollup(rollup)
    params: dict[str, Any] = {
        "rollup": rollup.value,
        "date_from": f.date_from,
        "date_to": f.date_to,
        "limit": first + 1,
    }
    where = [sql.SQL("b.rollup = %(rollup)s AND b.date BETWEEN %(date_from)s AND %(date_to)s")]
    owners_where = [sql.SQL("date BETWEEN %(date_from)s AND %(date_to)s")]
    if f.api_keys is not None:
        params["api_keys"] = list(f.api_keys)
        where.append(sql.SQL("b.api_key = ANY(%(api_keys)s::text[])"))
        owners_where.append(sql.SQL("api_key = ANY(%(api_keys)s::text[])"))
    if f.models is not None:
        params["models"] = list(f.models)
        where.append(sql.SQL("b.model = ANY(%(models)s::text[])"))
    users_known = f.user_ids is not None or f.team_ids is not None or active_users
    if f.user_ids is not None:
        params["user_ids"] = list(f.user_ids)
        where.append(sql.SQL("o.users && %(user_ids)s::text[]"))
    if f.team_ids is not None:
        # A key bucket's team is one per day (attributed_team, migration 0007): never ambiguous.
        params["team_ids"] = list(f.team_ids)
        where.append(sql.SQL("o.team_id = ANY(%(team_ids)s::text[])"))
    start: sql.Composable = sql.SQL("true")
    if after is not None:
        params["after_value"], params["after_key"] = decode_cursor(after, cursor_dimension(rollup), order)
        beyond = sql.SQL(">" if order.direction is Direction.ASC else "<")
        start = sql.SQL(
            "({m} {beyond} %(after_value)s::numeric"
            " OR ({m} = %(after_value)s::numeric AND key {c} > %(after_key)s))"
        ).format(m=sql.Identifier(order.metric.value), beyond=beyond, c=_C)
    direction = sql.SQL("ASC" if order.direction is Direction.ASC else "DESC")
    order_by = sql.SQL("{} {}, key {} ASC").format(sql.Identifier(order.metric.value), direction, _C)
    source: sql.Composable
    if users_known:
        # The users of each key bucket and day, sorted (one user is the bucket's whole day), and its team.
        source = sql.SQL(
            "usage_breakdown_facts b LEFT JOIN (SELECT date, api_key,"
            " array_agg(DISTINCT user_id ORDER BY user_id) AS users, min(team_id) AS team_id"
            " FROM usage_facts WHERE {}"
            " GROUP BY 1, 2) o USING (date, api_key)"
        ).format(sql.SQL(" AND ").join(owners_where))
        ambiguous = sql.SQL(
            "(SELECT coalesce(bool_or(cardinality(users) > 1), false) FROM matching)"
            if f.user_ids is not None or active_users
            else "false"
        )
    else:
        source = sql.SQL("usage_breakdown_facts b")
        ambiguous = sql.SQL("false")
    query = sql.SQL(
        "WITH matching AS MATERIALIZED (SELECT b.*, {users} FROM {source} WHERE {where}),"
        " groups AS MATERIALIZED (SELECT bucket AS key, {metrics}, max(date) AS last_active,"
        " array_agg(DISTINCT model {c} ORDER BY model {c}) AS related FROM matching GROUP BY 1)"
        " SELECT total.n, total.ambiguous, page.key, {columns}, page.last_active, page.related"
        " FROM (SELECT (SELECT count(*) FROM groups) AS n, {ambiguous} AS ambiguous)"
        " total LEFT JOIN LATERAL (SELECT * FROM groups WHERE {start} ORDER BY {order} LIMIT %(limit)s) page"
        " ON true ORDER BY {order}"
    ).format(
        users=sql.SQL("o.users" if users_known else "NULL::text[] AS users"),
        source=source,
        where=sql.SQL(" AND ").join(where),
        metrics=_metrics(users_known),
        c=_C,
        columns=_columns("page"),
        ambiguous=ambiguous,
        start=start,
        order=order_by,
    )
    result = await db.fetch_all(query, params)
    total_count = int(result[0][0]) if result else 0
    is_ambiguous = bool(result[0][1]) if result else False
    rows = [
        GroupRow(row[2], UsageTotals.from_values(row[3:17]), row[17], tuple(row[18]))
        for row in result
        if row[2] is not None
    ]
    page = rows[:first]
    end_cursor = encode_cursor(cursor_dimension(rollup), order, page[-1]) if page else None
    return SidePage(GroupPage(total_count, page, len(rows) > first, end_cursor), is_ambiguous)


async def days_without_side_facts(db: Database, f: FactFilter) -> list[date]:
    """Days of the range holding usage but none of its model groups: stored before migration 0009 (every
    fact has a model group, so such a day's roll-ups are unknown until it is read again)."""
    rows = await db.fetch_all(
        "SELECT d.date FROM usage_days d WHERE d.date BETWEEN %s AND %s AND d.fact_count > 0"
        " AND NOT EXISTS (SELECT 1 FROM usage_breakdown_facts b"
        " WHERE b.date = d.date AND b.rollup = 'model_group') ORDER BY d.date",
        (f.date_from, f.date_to),
    )
    return [row[0] for row in rows]
