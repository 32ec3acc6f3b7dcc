"""``Usage.budgets``: the budgets a filter shows, where they stand, ordered and paged.

A budget is on all of an entity's spend, so a filter that narrows the facts (``models``, ``providers``,
``tag``) cannot be answered and is refused; ``userIds``, ``apiKeyIds`` and ``teamIds`` choose which budgets
are shown (:class:`datasources.insights.budgets.Scope`). A plain ``user`` sees their own user budget and
their keys' budgets, never a team's: a team budget's spend is the whole team's, other people's usage.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import date

from usage_gateway.datasources.directory.budgets import BudgetEntity
from usage_gateway.datasources.facts.aggregates import FactFilter
from usage_gateway.datasources.insights import budgets as data
from usage_gateway.datasources.insights.budgets import BudgetState, BudgetStatus, Scope
from usage_gateway.errors import BadUserInput
from usage_gateway.resolvers.context import Context
from usage_gateway.resolvers.filters import RequestedFilter
from usage_gateway.resolvers.insights import cursors
from usage_gateway.resolvers.permissions import reads_everyone
from usage_gateway.resolvers.usage import UsageRequest, ensure_days

_CURSOR = "budgets"
_SortKey = tuple[float, str, str]


@dataclass(frozen=True)
class BudgetPage:
    total_count: int
    nodes: list[BudgetState]
    has_next_page: bool
    end_cursor: str | None


def _sort_key(state: BudgetState) -> _SortKey:
    return (-state.share_used, state.setting.entity.value, state.setting.public_id)


def encode_cursor(key: _SortKey) -> str:
    share, entity, entity_id = key
    return cursors.encode(_CURSOR, {"share": repr(share), "entity": entity, "id": entity_id})


def decode_cursor(after: str) -> _SortKey:
    position = cursors.decode(after, _CURSOR, ("share", "entity", "id"))
    try:
        share = float(position["share"])
    except ValueError:
        raise BadUserInput("`after` is not a cursor of this connection: malformed cursor") from None
    return share, position["entity"], position["id"]


def check_arguments(under: RequestedFilter | None, after: str | None) -> None:
    """BAD_USER_INPUT for a filter a budget cannot follow, or a foreign cursor (before anything runs)."""
    if after is not None:
        decode_cursor(after)
    if under is None:
        return
    narrowing = [
        name
        for name, value in (("models", under.models), ("providers", under.providers), ("tag", under.tag))
        if value is not None
    ]
    if narrowing:
        raise BadUserInput(
            f"`budgets` cannot be answered under {', '.join(f'`{n}`' for n in narrowing)}: a budget is on all"
            " of a key's, user's or team's spend; filter budgets by `userIds`, `apiKeyIds` or `teamIds`"
        )


async def _judge(ctx: Context, f: FactFilter, scope: Scope, as_of: date, today: date) -> list[BudgetState]:
    """Every budget ``scope`` shows, judged as of ``as_of`` (the days it reads made present first)."""
    found = await data.settings(ctx.db, scope) if scope.entities else []
    if found:
        start = data.reads_from(found, as_of, ctx.limits.max_range_days)
        await ensure_days(ctx, replace(f, tags=None), start, as_of)
    return await data.states(ctx.db, found, as_of, today)


async def budgets(
    ctx: Context,
    request: UsageRequest,
    *,
    first: int,
    after: str | None,
    entity: BudgetEntity | None,
    status: BudgetStatus | None,
) -> BudgetPage:
    f = request.filter
    check_arguments(
        RequestedFilter(
            f.date_from,
            f.date_to,
            models=f.models,
            providers=f.providers,
            tag=f.tags[0] if f.tags else None,
        ),
        after,
    )
    entities = (entity,) if entity is not None else tuple(BudgetEntity)
    if not reads_everyone(ctx.viewer):
        entities = tuple(e for e in entities if e is not BudgetEntity.TEAM)
    scope = Scope(f.user_ids, f.api_keys, f.team_ids, entities)
    today = ctx.days.today()
    as_of = min(f.date_to, today)
    # A page asking for budgets several times (aliases: the list, and counts by status) judges them once:
    # sibling fields resolve concurrently, so the first one's task is shared.
    judging = ctx.budget_states.get((scope, as_of, today))
    if judging is None:
        judging = asyncio.ensure_future(_judge(ctx, f, scope, as_of, today))
        ctx.budget_states[(scope, as_of, today)] = judging
    states = [state for state in await judging if status is None or state.status is status]
    states.sort(key=_sort_key)
    if after is not None:
        cursor = decode_cursor(after)
        states_after = [state for state in states if _sort_key(state) > cursor]
    else:
        states_after = states
    page = states_after[:first]
    has_next = len(states_after) > first
    return BudgetPage(
        total_count=len(states),
        nodes=page,
        has_next_page=has_next,
        end_cursor=encode_cursor(_sort_key(page[-1])) if page else None,
    )
