"""``Usage.movers``: its enums, node and connection."""

from __future__ import annotations

from decimal import Decimal
from enum import Enum

import strawberry

from usage_gateway.datasources.facts.vocabulary import Dimension, OrderMetric
from usage_gateway.datasources.insights import movers as found
from usage_gateway.resolvers.context import Context
from usage_gateway.resolvers.insights import movers as resolve
from usage_gateway.resolvers.insights.movers import MoverNode, MoverPage
from usage_gateway.resolvers.usage import UsageRequest
from usage_gateway.schema.enums import UsageMetric
from usage_gateway.schema.metrics import PageInfo

DESCRIPTION = (
    "The entities whose `metric` changed most between the range and `previousPeriod` (the same number of"
    " days right before `from`, under the same filter): `current` and `previous` are exactly the entity's"
    " numbers in the two periods' breakdowns (`byUser`, `byApiKey`, … of each), 0 where it has none."
    " Ordered by the size of the change (|`change`|) descending, then by id (for API_KEY, the key bucket)."
)


@strawberry.enum(description="What movers are listed for: users, API keys, models, providers or teams.")
class MoverDimension(Enum):
    USER = Dimension.USER
    API_KEY = Dimension.API_KEY
    MODEL = Dimension.MODEL
    PROVIDER = Dimension.PROVIDER
    TEAM = Dimension.TEAM


@strawberry.enum(description="NEW: 0 in the previous period, more now; VANISHED: 0 now, more before.")
class MoverChange(Enum):
    CHANGED = found.MoverChange.CHANGED
    NEW = found.MoverChange.NEW
    VANISHED = found.MoverChange.VANISHED


@strawberry.type(description="One entity's metric in the range and in the previous period.")
class Mover:
    dimension: MoverDimension
    id: strawberry.ID = strawberry.field(
        description="The user id, the key's id as `byApiKey` gives it (`apiKeyId`), the model, the"
        " provider or the team id."
    )
    name: str | None = strawberry.field(
        description="The user's username (else e-mail), the key's alias (else name), the team's alias; null"
        " otherwise."
    )
    metric: UsageMetric
    current: float = strawberry.field(description="Over the filter's range.")
    previous: float = strawberry.field(
        description="Over the previous period of equal length (as `previousPeriod`)."
    )
    change: float = strawberry.field(description="`current` − `previous`.")
    change_relative: float | None = strawberry.field(
        description="`change` / `previous`; null when `previous` is 0."
    )
    status: MoverChange
    current_exact: Decimal | None = strawberry.field(description="`current`, exact: for SPEND only.")
    previous_exact: Decimal | None = strawberry.field(description="`previous`, exact: for SPEND only.")
    change_exact: Decimal | None = strawberry.field(description="`change`, exact: for SPEND only.")

    @classmethod
    def of(cls, dimension: Dimension, metric: OrderMetric, node: MoverNode) -> Mover:
        m = node.mover
        spend = metric is OrderMetric.SPEND
        return cls(
            dimension=MoverDimension(dimension),
            id=strawberry.ID(node.id),
            name=node.name,
            metric=UsageMetric(metric),
            current=float(m.current),
            previous=float(m.previous),
            change=float(m.change),
            change_relative=m.change_relative,
            status=MoverChange(m.status),
            current_exact=Decimal(m.current) if spend else None,
            previous_exact=Decimal(m.previous) if spend else None,
            change_exact=Decimal(m.change) if spend else None,
        )


@strawberry.type(description="A page of movers.")
class MoverConnection:
    total_count: int
    page_info: PageInfo
    nodes: list[Mover]

    @classmethod
    def of(cls, dimension: Dimension, metric: OrderMetric, page: MoverPage) -> MoverConnection:
        return cls(
            total_count=page.total_count,
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
            nodes=[Mover.of(dimension, metric, node) for node in page.nodes],
        )


async def mover_connection(
    ctx: Context,
    request: UsageRequest,
    dimension: MoverDimension,
    first: int,
    after: str | None,
    metric: UsageMetric,
) -> MoverConnection:
    page = await resolve.movers(ctx, request, dimension.value, first=first, after=after, metric=metric.value)
    return MoverConnection.of(dimension.value, metric.value, page)
