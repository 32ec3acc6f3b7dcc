"""``Budget``, ``BudgetConnection`` and their enums: LiteLLM budgets and where their periods stand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import Enum

import strawberry

from usage_gateway.datasources.directory import budgets as settings
from usage_gateway.datasources.insights import budgets as data
from usage_gateway.resolvers.context import Context
from usage_gateway.resolvers.insights import budgets as resolve
from usage_gateway.resolvers.insights.budgets import BudgetPage
from usage_gateway.resolvers.usage import UsageRequest
from usage_gateway.schema.metrics import PageInfo
from usage_gateway.schema.nodes import Connection


@strawberry.enum(description="What a LiteLLM budget is set on.")
class BudgetEntity(Enum):
    API_KEY = "API_KEY"
    USER = "USER"
    TEAM = "TEAM"

    def to_data(self) -> settings.BudgetEntity:
        return settings.BudgetEntity(self.value)


@strawberry.enum(description="Where a budget stands in its current period.")
class BudgetStatus(Enum):
    OK = strawberry.enum_value(
        "OK", description="Below its limit, and not projected to reach it this period."
    )
    AT_RISK = strawberry.enum_value(
        "AT_RISK", description="Below its limit, but projected to reach it by `periodTo` (`projectedRunOut`)."
    )
    EXCEEDED = strawberry.enum_value("EXCEEDED", description="The period's spend has reached the limit.")

    def to_data(self) -> data.BudgetStatus:
        return data.BudgetStatus(self.name)


BUDGETS = (
    "The LiteLLM budgets (`max_budget` and `budget_duration` of keys, users and teams, as syncDirectory last"
    " read them) related to the filter's `userIds`, `apiKeyIds` and `teamIds` (a key to its owner and team,"
    " a user or team through their keys), and where each stands as of the filter's `to` (today if later)."
    " The spend is the stored facts' sum over the current period: a key's facts, a user's attributed facts,"
    " a team's facts by each key's team on the day. Refused under `models`, `providers` or `tag` (a budget is"
    " on all of an entity's spend). A `user` sees their own user budget and their keys' budgets, not their"
    " teams' (a team's spend is other people's usage). Ordered by `shareUsed` descending, then entity, id."
)


@strawberry.type(
    description="A LiteLLM budget (max_budget / budget_duration of a key, user or team) and where its current"
    " period stands."
)
class Budget:
    entity: BudgetEntity
    id: strawberry.ID = strawberry.field(
        description="The key's id as `byApiKey`'s `apiKeyId`, the directory user id, or the team id."
    )
    name: str | None = strawberry.field(
        description="The key alias, the user's alias or email, the team alias."
    )
    limit: float = strawberry.field(description="LiteLLM's `max_budget` (USD).")
    limit_exact: Decimal = strawberry.field(description="`limit`, exact.")
    duration: str | None = strawberry.field(
        description="LiteLLM's `budget_duration` as set, e.g. `30d`, `1mo`; null: never reset (a lifetime"
        " budget)."
    )
    period_from: date = strawberry.field(
        description="First day (UTC) of the current period, the one holding `asOf`, as LiteLLM resets"
        " budgets: `Nd` are N-day windows ending at LiteLLM's `budget_reset_at` (without one: from"
        " 1970-01-01, `7d` from Mondays); `30d` and `1mo` the calendar month (LiteLLM resets both on"
        " the 1st); `Nmo` N calendar months. A unit finer than a day (`s`, `m`, `h`) cannot be told from"
        " daily facts: the period is `asOf` alone and `complete` is false. A lifetime budget starts on"
        " the first stored day."
    )
    period_to: date = strawberry.field(
        description="Last day of the current period (inclusive); for a lifetime budget the end of `asOf`'s"
        " month, so that `status` says whether it runs out this month."
    )
    as_of: date = strawberry.field(
        description="The day the budget is judged on: the filter's `to`, or today."
    )
    spend: float = strawberry.field(
        description="Spend from `periodFrom` to `asOf` (open days included), summed from the stored facts."
    )
    spend_exact: Decimal = strawberry.field(description="`spend`, exact.")
    share_used: float = strawberry.field(description="`spend / limit` (1 for a limit of 0).")
    daily_rate: float = strawberry.field(
        description="Mean daily spend over the 7 most recent closed, verified days up to `asOf` (within the"
        " 35 days before it; `rateDays` says how many were found; open and unverified days are never used)."
    )
    daily_rate_exact: Decimal = strawberry.field(description="`dailyRate`, exact.")
    rate_days: int = strawberry.field(
        description="How many days `dailyRate` is the mean of (7 unless fewer)."
    )
    projected_run_out: date | None = strawberry.field(
        description="For an exceeded budget, the day its spend reached the limit; else the first day on which"
        " `spend` plus `dailyRate` for each day after `asOf` reaches the limit, if that is no later than"
        " `periodTo`; else null."
    )
    status: BudgetStatus = strawberry.field(
        description="EXCEEDED: spend >= limit; AT_RISK: projectedRunOut <= periodTo; else OK."
    )
    complete: bool = strawberry.field(
        description="False when some day from `periodFrom` to `asOf` is missing or unverified, when the"
        " period cannot be told from daily facts (a sub-day duration, a reset time not at midnight UTC),"
        " or for a lifetime budget whose entity is older than the first stored day (or a team's)."
    )

    @classmethod
    def of(cls, state: data.BudgetState) -> Budget:
        setting = state.setting
        return cls(
            entity=BudgetEntity(setting.entity.value),
            id=strawberry.ID(setting.public_id),
            name=setting.name,
            limit=float(setting.limit),
            limit_exact=setting.limit,
            duration=setting.duration,
            period_from=state.period.start,
            period_to=state.period.end,
            as_of=state.as_of,
            spend=float(state.spend),
            spend_exact=state.spend,
            share_used=state.share_used,
            daily_rate=float(state.daily_rate),
            daily_rate_exact=state.daily_rate,
            rate_days=state.rate_days,
            projected_run_out=state.run_out,
            status=BudgetStatus(state.status.value),
            complete=state.complete,
        )


def connection(page: BudgetPage) -> Connection[Budget]:
    return Connection(
        total_count=page.total_count,
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        nodes=[Budget.of(state) for state in page.nodes],
    )


async def budgets(
    ctx: Context,
    request: UsageRequest,
    first: int,
    after: str | None,
    entity: BudgetEntity | None,
    status: BudgetStatus | None,
) -> Connection[Budget]:
    page = await resolve.budgets(
        ctx,
        request,
        first=first,
        after=after,
        entity=entity.to_data() if entity is not None else None,
        status=status.to_data() if status is not None else None,
    )
    return connection(page)
