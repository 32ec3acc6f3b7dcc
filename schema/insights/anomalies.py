"""``Usage.anomalies``: its enums, node, link filter and connection."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import Enum

import strawberry

from usage_gateway.datasources.facts.vocabulary import Dimension
from usage_gateway.datasources.insights import anomalies as found
from usage_gateway.resolvers.context import Context
from usage_gateway.resolvers.insights import anomalies as resolve
from usage_gateway.resolvers.insights.anomalies import AnomalyNode, AnomalyPage, LinkFilter
from usage_gateway.resolvers.usage import UsageRequest
from usage_gateway.schema.metrics import PageInfo
from usage_gateway.schema.scalars import BigInt

RULE = found.RULE
DESCRIPTION = (
    "Days of the range on which an entity's spend or failure rate left its own rolling baseline:"
    f" {RULE.describe()}."
    " Open, unverified and missing days are never baseline inputs nor checked (see `skippedDays`); the"
    f" baseline may look back up to {RULE.window_days} days before `from`. The filter's conditions apply to"
    " the facts (a tag filter is refused); `minSpend` leaves out anomalies whose day's spend is below it;"
    " `metric` null gives both metrics. Ordered by `size` descending, then date, id and metric."
)


@strawberry.enum(
    description="What anomalies are found for: users, API keys, models or teams (each key's team on the day)."
)
class AnomalyDimension(Enum):
    USER = Dimension.USER
    API_KEY = Dimension.API_KEY
    MODEL = Dimension.MODEL
    TEAM = Dimension.TEAM


@strawberry.enum(
    description="What an anomaly is about: the day's spend, or its failure rate (failed / requests)."
)
class AnomalyMetric(Enum):
    SPEND = found.AnomalyMetric.SPEND
    FAILURE_RATE = found.AnomalyMetric.FAILURE_RATE


@strawberry.type(
    description="The `UsageFilter` that shows the anomaly's entity on its day, under the request's other"
    " conditions: pass it as `usage(filter:)`."
)
class AnomalyFilter:
    from_: date = strawberry.field(name="from")
    to: date
    user_ids: list[strawberry.ID] | None
    api_key_ids: list[strawberry.ID] | None
    models: list[str] | None
    team_ids: list[strawberry.ID] | None
    providers: list[str] | None

    @classmethod
    def of(cls, link: LinkFilter) -> AnomalyFilter:
        def ids(values: tuple[str, ...] | None) -> list[strawberry.ID] | None:
            return None if values is None else [strawberry.ID(v) for v in values]

        return cls(
            from_=link.date_from,
            to=link.date_to,
            user_ids=ids(link.user_ids),
            api_key_ids=ids(link.api_key_ids),
            models=None if link.models is None else list(link.models),
            team_ids=ids(link.team_ids),
            providers=None if link.providers is None else list(link.providers),
        )


@strawberry.type(description=f"One entity-day above its baseline. The rule: {RULE.describe()}.")
class Anomaly:
    dimension: AnomalyDimension
    id: strawberry.ID = strawberry.field(
        description="The user id, the key's id as `byApiKey` gives it (`apiKeyId`), the model, or the team"
        " id."
    )
    name: str | None = strawberry.field(
        description="The user's username (else e-mail), the key's alias (else name), the team's alias; null"
        " for models and for what the directory does not know."
    )
    date: date
    metric: AnomalyMetric
    value: float = strawberry.field(description="The day's spend, or its failure rate (0 to 1).")
    baseline: float = strawberry.field(
        description=f"The median of the entity's values on its baseline days: the closed, verified days among"
        f" the {RULE.window_days} days before `date` (spend 0 on a day without usage; a failure rate only on"
        f" days with at least {RULE.min_requests} requests)."
    )
    mad: float = strawberry.field(
        description="The median absolute deviation from `baseline` over the same days."
    )
    spread: float = strawberry.field(
        description="`mad`, but at least the mean absolute deviation from `baseline` (an entity idle on most"
        f" days has a median and a MAD of 0), at least {RULE.relative_floor:.0%} of `baseline`, and at least"
        f" {RULE.spend_floor:g} of spend or {RULE.rate_floor:.0%} of failure rate (so a flat history does"
        " not flag every cent): never 0."
    )
    threshold: float = strawberry.field(
        description=f"`baseline` + {RULE.k:g} × `spread`; `value` is above it."
    )
    size: float = strawberry.field(
        description="(`value` − `baseline`) / `spread`: how many spreads above the baseline."
    )
    baseline_days: int = strawberry.field(
        description=f"How many days the baseline used (at least {RULE.min_baseline_days})."
    )
    spend: float = strawberry.field(
        description="The entity's spend on the day (under the filter), whatever the metric."
    )
    spend_exact: Decimal = strawberry.field(description="`spend`, exact.")
    requests: BigInt
    failed_requests: BigInt
    filter: AnomalyFilter

    @classmethod
    def of(cls, node: AnomalyNode) -> Anomaly:
        a = node.anomaly
        return cls(
            dimension=AnomalyDimension(a.dimension),
            id=strawberry.ID(node.id),
            name=node.name,
            date=a.date,
            metric=AnomalyMetric(a.metric),
            value=a.value,
            baseline=a.baseline,
            mad=a.mad,
            spread=a.spread,
            threshold=a.threshold,
            size=a.size,
            baseline_days=a.baseline_days,
            spend=float(a.spend),
            spend_exact=a.spend,
            requests=BigInt(a.requests),
            failed_requests=BigInt(a.failed_requests),
            filter=AnomalyFilter.of(node.link),
        )


@strawberry.type(description="A page of anomalies.")
class AnomalyConnection:
    total_count: int
    page_info: PageInfo
    nodes: list[Anomaly]
    complete: bool = strawberry.field(
        description="Every day of the range up to today was checked: none open, unverified or missing."
    )
    skipped_days: list[date] = strawberry.field(
        description="Days of the range that were not checked (open, unverified or missing): their anomalies,"
        " if any, are not listed."
    )

    @classmethod
    def of(cls, page: AnomalyPage) -> AnomalyConnection:
        return cls(
            total_count=page.total_count,
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
            nodes=[Anomaly.of(node) for node in page.nodes],
            complete=not page.skipped_days,
            skipped_days=page.skipped_days,
        )


async def anomaly_connection(
    ctx: Context,
    request: UsageRequest,
    dimension: AnomalyDimension,
    first: int,
    after: str | None,
    min_spend: float | None,
    metric: AnomalyMetric | None,
) -> AnomalyConnection:
    page = await resolve.anomalies(
        ctx,
        request,
        dimension.value,
        first=first,
        after=after,
        min_spend=min_spend,
        metric=None if metric is None else metric.value,
    )
    return AnomalyConnection.of(page)
