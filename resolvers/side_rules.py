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
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from enum import Enum
from typing import Any

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


def used_filters(filter_value: Any) -> list[str]:
    """The UsageFilter fields a RequestedFilter or FactFilter sets (``None`` is unset)."""
    return sorted(
        _GRAPHQL_NAMES.get(f.name, f.name)
        for f in fields(filter_value)
        if f.name not in _RANGE and getattr(filter_value, f.name) is not None
    )


def check_filters(rollup: SideRollup, used: Iterable[str]) -> None:
    """BadUserInput naming the first filter ``rollup`` cannot answer exactly, with why."""
    what = WHAT[rollup]
    for name in used:
        rule = RULES[rollup].get(name, Applies.REFUSED)
        if rule is Applies.REFUSED:
            reason = {"providers": _NOT_CROSSED_PROVIDERS, "tag": _NOT_IN_TAG_FACTS}.get(name, _NOT_CROSSED)
            raise BadUserInput(f"`{name}` cannot filter {what}: " + reason.format(what=what, name=name))


def refuse_ambiguous(rollup: SideRollup, by_user: bool) -> BadUserInput:
    """The refusal when a matching key bucket served several users on a day."""
    what = WHAT[rollup]
    asked = "a user filter (or a `user`'s own scope)" if by_user else "`activeUsers`"
    return BadUserInput(
        f"{what} cannot be answered exactly under {asked}: a key bucket in the range was used by several"
        f" users on one day (e.g. LiteLLM rows without a user next to a named user's), and LiteLLM's {what}"
        " are split by key, not by user; filter by `apiKeyIds`, or leave out `activeUsers`"
    )
