"""Which filters ``byModelGroup``, ``byEndpoint`` and ``byMcpServer`` answer exactly: the one table.

LiteLLM rolls a day up by model group, by endpoint and by MCP tool apart from users and providers, each
with a part per key bucket (CONTRACT §2.4–2.6), and the gateway reads each day model by model (``model=``),
so these parts are known per key bucket and model, and nothing finer:

- ``apiKeyIds``: exact, the per-key parts;
- ``models``: exact, the parts of each ``model=`` read;
- ``userIds`` (and a ``user``'s own scope): exact through the key's attributed user on the day, when the
  key bucket's usage that day is one user's; a key bucket shared that day (LiteLLM's ``Unassigned`` rows
  next to a named user, several LiteLLM users on one key outside the directory) is refused when reached,
  since its part cannot be split between them (:func:`refuse_ambiguous`);
- ``teamIds``: exact through the key's team on the day (one per key bucket and day);
- ``providers``: refused, the parts are not crossed with providers (a model can be served by several);
- ``tag`` and any other filter: refused (tag rows are LiteLLM's other table, not crossed with these).

Exports (``exportUsage``, ``usage-gateway export``) by ``MODEL_GROUP``, ``ENDPOINT`` or ``MCP_SERVER``
take the same filters, and group by another dimension exactly when they could filter by it
(:data:`GROUPED_AS`): ``DATE``, ``API_KEY`` and ``MODEL`` exact, ``USER`` through attribution (refused
where a key bucket served several users on a day), ``TEAM`` through the key's team, ``PROVIDER`` and
``TAG`` refused; and one roll-up per export (each is LiteLLM's own roll-up of the day, not crossed with
the others).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields
from enum import Enum
from typing import Any

from usage_gateway.datasources.exports.query import SIDE_ROLLUPS, ExportDimension
from usage_gateway.datasources.facts.side_breakdowns import SideRollup
from usage_gateway.errors import BadUserInput


class Applies(Enum):
    EXACT = "exact"
    BY_ATTRIBUTION = "exact through the key's attributed user on each day"
    BY_TEAM = "exact through the key's team on each day"
    REFUSED = "refused"


_NOT_CROSSED_PROVIDERS = (
    "LiteLLM's {what} are not crossed with providers (its days roll up by provider and by {what}"
    " separately, and one model may be served by several providers), so no provider filter can be"
    " applied to them exactly"
)
_NOT_CROSSED = "LiteLLM's {what} are read with key and model only; `{name}` cannot be applied to them exactly"
_NOT_IN_TAG_FACTS = (
    "the gateway keeps tag usage by key, model and provider only (LiteLLM's tag rows), without model groups,"
    " endpoints or MCP tools"
)

# Filter (as the GraphQL UsageFilter names it) -> how it applies, per roll-up.
RULES: dict[SideRollup, dict[str, Applies]] = {
    rollup: {
        "apiKeyIds": Applies.EXACT,
        "models": Applies.EXACT,
        "userIds": Applies.BY_ATTRIBUTION,
        "teamIds": Applies.BY_TEAM,
        "providers": Applies.REFUSED,
    }
    for rollup in SideRollup
}
FIELDS = {
    "byModelGroup": SideRollup.MODEL_GROUP,
    "byEndpoint": SideRollup.ENDPOINT,
    "byMcpServer": SideRollup.MCP_SERVER,
}
WHAT = {
    SideRollup.MODEL_GROUP: "model groups",
    SideRollup.ENDPOINT: "endpoints",
    SideRollup.MCP_SERVER: "MCP tools",
}
# Python attribute (RequestedFilter or FactFilter) -> the UsageFilter field it comes from.
_GRAPHQL_NAMES = {
    "user_ids": "userIds",
    "api_key_ids": "apiKeyIds",
    "api_keys": "apiKeyIds",
    "models": "models",
    "providers": "providers",
    "team_ids": "teamIds",
    "tags": "tag",
    "tag": "tag",
}
_RANGE = {"date_from", "date_to"}
# Export dimension -> the filter whose rule above says whether a roll-up's rows can be grouped by it too:
# a column the parts can be filtered by exactly, they can be grouped by exactly. DATE always: parts are daily.
GROUPED_AS = {
    ExportDimension.USER: "userIds",
    ExportDimension.API_KEY: "apiKeyIds",
    ExportDimension.MODEL: "models",
    ExportDimension.PROVIDER: "providers",
    ExportDimension.TEAM: "teamIds",
    ExportDimension.TAG: "tag",
}


def used_filters(filter_value: Any) -> list[str]:
    """The UsageFilter fields a RequestedFilter or FactFilter sets (``None`` is unset)."""
    return sorted(
        _GRAPHQL_NAMES.get(f.name, f.name)
        for f in fields(filter_value)
        if f.name not in _RANGE and getattr(filter_value, f.name) is not None
    )


def check_filters(rollup: SideRollup, used: Iterable[str]) -> None:
    """BadUserInput naming the first filter ``rollup`` cannot answer exactly, with why."""
    for name in used:
        if RULES[rollup].get(name, Applies.REFUSED) is Applies.REFUSED:
            raise BadUserInput(f"`{name}` cannot filter {WHAT[rollup]}: {_why_refused(rollup, name)}")


def _why_refused(rollup: SideRollup, name: str) -> str:
    reason = {"providers": _NOT_CROSSED_PROVIDERS, "tag": _NOT_IN_TAG_FACTS}.get(name, _NOT_CROSSED)
    return reason.format(what=WHAT[rollup], name=name)


def check_export(group_by: Sequence[ExportDimension], used: Iterable[str]) -> SideRollup | None:
    """The side roll-up an export groups by (None if it groups by none), after BadUserInput for a second
    roll-up, a dimension it cannot be crossed with exactly, or a filter it refuses (as the fields do)."""
    sides = [d for d in group_by if d in SIDE_ROLLUPS]
    if not sides:
        return None
    rollup = SIDE_ROLLUPS[sides[0]]
    if len(sides) > 1:
        other = SIDE_ROLLUPS[sides[1]]
        raise BadUserInput(
            f"`groupBy` can hold only one of {', '.join(SIDE_ROLLUPS)}: LiteLLM rolls each day up by"
            f" {WHAT[rollup]} and by {WHAT[other]} separately, so they are not crossed"
        )
    check_filters(rollup, used)
    for dimension in group_by:
        if dimension in SIDE_ROLLUPS or dimension is ExportDimension.DATE:
            continue
        name = GROUPED_AS.get(dimension, dimension.value)
        if RULES[rollup].get(name, Applies.REFUSED) is Applies.REFUSED:
            raise BadUserInput(
                f"`groupBy` cannot cross {sides[0]} with {dimension}: {_why_refused(rollup, name)}"
            )
    return rollup


def refuse_ambiguous(rollup: SideRollup, by_user: bool, *, grouped: bool = False) -> BadUserInput:
    """The refusal when a matching key bucket served several users on a day; ``grouped``: an export grouped
    by USER (without a user filter) asked for each part's user."""
    what = WHAT[rollup]
    if by_user:
        asked, instead = "a user filter (or a `user`'s own scope)", "leave out `activeUsers`"
    elif grouped:
        asked, instead = "an export grouped by USER", "group by API_KEY instead of USER"
    else:
        asked, instead = "`activeUsers`", "leave out `activeUsers`"
    return BadUserInput(
        f"{what} cannot be answered exactly under {asked}: a key bucket in the range was used by several"
        f" users on one day (e.g. LiteLLM rows without a user next to a named user's), and LiteLLM's {what}"
        f" are split by key, not by user; filter by `apiKeyIds`, or {instead}"
    )
