"""Whether an export by model group, endpoint or MCP tool can be written exactly: the checks of the
``byModelGroup``/``byEndpoint``/``byMcpServer`` fields, made for the export's filter and grouping before any
export row or file exists (``exportUsage`` and ``usage-gateway export`` both call :func:`check_side_export`).
"""

from __future__ import annotations

from collections.abc import Sequence

from usage_gateway.datasources.db import Database
from usage_gateway.datasources.exports.query import ExportDimension
from usage_gateway.datasources.facts.side_breakdowns import side_breakdown
from usage_gateway.datasources.facts.vocabulary import FactFilter, Order
from usage_gateway.resolvers.side_breakdowns import check_days_known
from usage_gateway.resolvers.side_rules import check_export, refuse_ambiguous, used_filters


async def check_side_export(db: Database, f: FactFilter, group_by: Sequence[ExportDimension]) -> None:
    """BadUserInput, as the fields give it, when the export groups by a side roll-up it cannot answer
    exactly: a refused filter or crossing (:func:`~usage_gateway.resolvers.side_rules.check_export`), a day
    stored before the roll-ups were kept, or, under a user filter (a ``user``'s scope included) or grouped
    by USER, a key bucket that served several users on a day. ``f`` is the resolved filter, its days
    present."""
    rollup = check_export(group_by, used_filters(f))
    if rollup is None:
        return
    await check_days_known(db, f, rollup)
    by_user = f.user_ids is not None
    grouped = ExportDimension.USER in group_by
    if by_user or grouped:
        # The field's own query says whether a matching key bucket is shared (``active_users`` asks it of
        # every matching bucket, as a grouping by user needs; a user filter, of the buckets it reaches).
        found = await side_breakdown(db, f, rollup, order=Order(), first=1, after=None, active_users=grouped)
        if found.ambiguous:
            raise refuse_ambiguous(rollup, by_user, grouped=grouped)
