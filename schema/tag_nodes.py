"""``TagUsage``: one LiteLLM tag's usage (``Usage.byTag``)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from usage_gateway.resolvers.context import Context
from usage_gateway.resolvers.slices import Node
from usage_gateway.schema.enums import Granularity
from usage_gateway.schema.fields import described
from usage_gateway.schema.metrics import UsageMetrics, UsagePoint
from usage_gateway.schema.nodes import SERIES, _points

TAG_SHARE = (
    "Fraction of the filtered total spend. A request with several tags counts in each of them, so the"
    " shares of all tags can add up to more than 1."
)


@strawberry.type(description="One LiteLLM tag: the requests carrying it (LiteLLM's tag activity).")
class TagUsage:
    tag: str
    metrics: UsageMetrics
    share: float = strawberry.field(description=TAG_SHARE)
    _node: strawberry.Private[Node]

    @classmethod
    def of(cls, node: Node) -> TagUsage:
        return cls(tag=node.row.key, metrics=UsageMetrics.of(node.row.totals), share=node.share, _node=node)

    @described(SERIES)
    async def time_series(
        self, info: Info[Context, None], granularity: Granularity = Granularity.DAY
    ) -> list[UsagePoint]:
        return await _points(info, self._node, granularity)
