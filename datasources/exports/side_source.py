"""The facts an export by model group, endpoint or MCP tool reads: one roll-up of ``usage_breakdown_facts``
(migration 0009) shaped like ``usage_facts``, so the export's grouped query and filter apply unchanged.

Each row is a part of a roll-up bucket per LiteLLM key bucket and model, with the additive metrics of
``usage_facts``; no provider and no tag (LiteLLM does not cross these roll-ups with them: the caller
refuses such exports, see ``resolvers/side_rules.py``). Its user and team are those of its key bucket on
its day, read from ``usage_facts`` as ``Usage.byModelGroup`` reads them
(:mod:`~usage_gateway.datasources.facts.side_breakdowns`): the key bucket's first user, which is its only
one unless the caller has refused the export (a key bucket shared by several users that day), and its one
team of the day. They are joined only when a filter or a column needs them.
"""

from __future__ import annotations

from psycopg import sql

from usage_gateway.datasources.facts.grain import METRIC_COLUMNS
from usage_gateway.datasources.facts.side_breakdowns import SideRollup

# The column of usage_facts each side roll-up's bucket becomes in the relation.
BUCKET_COLUMN = {
    SideRollup.MODEL_GROUP: "model_group",
    SideRollup.ENDPOINT: "endpoint",
    SideRollup.MCP_SERVER: "mcp_tool",
}


def side_facts(rollup: SideRollup, *, owners: bool) -> sql.Composable:
    """The relation ``usage_facts`` of ``rollup``'s parts; with ``owners``, each part's ``user_id`` and
    ``team_id`` (else NULL). Reads the ``date_from`` and ``date_to`` parameters of the filter's clause."""
    metrics = sql.SQL(", ").join(sql.Identifier("b", name) for name in METRIC_COLUMNS)
    people: sql.Composable
    if owners:
        people = sql.SQL("o.users[1] AS user_id, o.team_id")
        joined = sql.SQL(
            " LEFT JOIN (SELECT date, api_key, array_agg(DISTINCT user_id ORDER BY user_id) AS users,"
            " min(team_id) AS team_id FROM usage_facts"
            " WHERE date BETWEEN %(date_from)s AND %(date_to)s GROUP BY 1, 2) o USING (date, api_key)"
        )
    else:
        people = sql.SQL("NULL::text AS user_id, NULL::text AS team_id")
        joined = sql.SQL("")
    return sql.SQL(
        "(SELECT b.date, b.bucket AS {bucket}, b.api_key, b.model, {people}, {metrics}"
        " FROM usage_breakdown_facts b{joined} WHERE b.rollup = {rollup}) AS usage_facts"
    ).format(
        bucket=sql.Identifier(BUCKET_COLUMN[rollup]),
        people=people,
        metrics=metrics,
        joined=joined,
        rollup=sql.Literal(SideRollup(rollup).value),
    )
