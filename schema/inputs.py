"""The input types: a usage filter and a breakdown order."""

from __future__ import annotations

from datetime import date

import strawberry

from usage_gateway.datasources.facts.aggregates import Order
from usage_gateway.resolvers.filters import RequestedFilter
from usage_gateway.schema.enums import SortDirection, UsageMetric


@strawberry.input(
    description="Which usage counts. Dates are inclusive UTC days; a null list means any value, an empty"
    " list none. All conditions combine with AND and apply to every field of `Usage`."
)
class UsageFilter:
    from_: date = strawberry.field(name="from")
    to: date
    user_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Directory user ids, or the pseudo-users `litellm:<id>` and `unattributed`."
    )
    api_key_ids: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="Directory key ids, or for keys outside the directory the `apiKeyId` of `ApiKeyUsage`.",
    )
    models: list[str] | None = None
    providers: list[str] | None = None
    team_ids: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="LiteLLM team ids, or `no-team`: the usage of keys while they were in these teams.",
    )

    tag: str | None = strawberry.field(
        default=None,
        description="One LiteLLM tag (e.g. `User-Agent:claude-code`): only the requests carrying it, read"
        " from LiteLLM's tag activity, crossed exactly with the other conditions. LiteLLM records tags only"
        " for requests that have some (by default every request has its `User-Agent:` tags). Several tags"
        " are refused: a request is counted once per tag it carries.",
    )

    def requested(self) -> RequestedFilter:
        return RequestedFilter(
            self.from_,
            self.to,
            self.user_ids,
            self.api_key_ids,
            self.models,
            self.providers,
            self.team_ids,
            self.tag,
        )


@strawberry.input(description="Breakdown order; ties are broken by the group's key, ascending.")
class UsageOrder:
    metric: UsageMetric = UsageMetric.SPEND
    direction: SortDirection = SortDirection.DESC


def to_order(order: UsageOrder | None) -> Order:
    if order is None:
        return Order()
    return Order(order.metric.value, order.direction.value)
