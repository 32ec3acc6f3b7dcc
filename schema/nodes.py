"""Breakdown nodes and their connections.

A node's numbers are plain attributes, filled when the node is built; only fields that need more data
(series, top groups, directory records) resolve, each through a request-wide DataLoader.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Generic, TypeVar

import strawberry
from strawberry.types import Info

from usage_gateway.datasources.directory.lookups import TeamRecord
from usage_gateway.datasources.facts.aggregates import Dimension
from usage_gateway.resolvers import nodes
from usage_gateway.resolvers.breakdowns import NodePage
from usage_gateway.resolvers.context import Context
from usage_gateway.resolvers.slices import Node
from usage_gateway.schema.directory import ApiKey, User
from usage_gateway.schema.enums import Granularity
from usage_gateway.schema.fields import described
from usage_gateway.schema.metrics import PageInfo, UsageMetrics, UsagePoint, points
from usage_gateway.schema.selection import site

TOKEN_HASH_PREFIX = 12
T = TypeVar("T")
SERIES = (
    "One point per bucket of the filter's range, empty buckets zeros; WEEK and MONTH buckets are clipped to"
    " the range, as in `Usage.timeSeries`: see each point's `from` and `to`."
)
SHARE = "Fraction of the parent's spend: of the filtered total for top-level nodes, else of the parent node."


async def _points(info: Info[Context, None], node: Node, granularity: Granularity) -> list[UsagePoint]:
    series = await nodes.series(info.context, node, granularity.value)
    return points(series, granularity.value, node.slice.base.date_from, node.slice.base.date_to)


@strawberry.type(description="A user's usage: a directory user, `litellm:<id>` or `unattributed`.")
class UserUsage:
    user_id: strawberry.ID
    metrics: UsageMetrics
    share: float = strawberry.field(description=SHARE)
    last_active_date: date | None
    _node: strawberry.Private[Node]

    @classmethod
    def of(cls, node: Node) -> UserUsage:
        row = node.row
        return cls(
            user_id=strawberry.ID(row.key),
            metrics=UsageMetrics.of(row.totals),
            share=node.share,
            last_active_date=row.last_active,
            _node=node,
        )

    @described("The directory user; null for pseudo-users.")
    async def user(self, info: Info[Context, None]) -> User | None:
        return User.maybe(await nodes.user(info.context, self._node))

    @described(SERIES)
    async def time_series(
        self, info: Info[Context, None], granularity: Granularity = Granularity.DAY
    ) -> list[UsagePoint]:
        return await _points(info, self._node, granularity)

    @described("The user's top models by spend, with metrics of this user only.")
    async def models(self, info: Info[Context, None], first: int = 10) -> list[ModelUsage]:
        found = await nodes.top(info.context, self._node, Dimension.MODEL, first, site(info))
        return [ModelUsage.of(node) for node in found]

    @described("The user's top keys by spend, with metrics of this user only.")
    async def api_keys(self, info: Info[Context, None], first: int = 10) -> list[ApiKeyUsage]:
        found = await nodes.top(info.context, self._node, Dimension.API_KEY, first, site(info))
        return [ApiKeyUsage.of(node) for node in found]


@strawberry.type
class ModelUsage:
    model: str
    providers: list[str]
    metrics: UsageMetrics
    share: float = strawberry.field(description=SHARE)
    _node: strawberry.Private[Node]

    @classmethod
    def of(cls, node: Node) -> ModelUsage:
        row = node.row
        return cls(
            model=row.key,
            providers=list(row.related),
            metrics=UsageMetrics.of(row.totals),
            share=node.share,
            _node=node,
        )

    @described(SERIES)
    async def time_series(
        self, info: Info[Context, None], granularity: Granularity = Granularity.DAY
    ) -> list[UsagePoint]:
        return await _points(info, self._node, granularity)

    @described("The model's top users by spend, with metrics of this model only.")
    async def top_users(self, info: Info[Context, None], first: int = 5) -> list[UserUsage]:
        found = await nodes.top(info.context, self._node, Dimension.USER, first, site(info))
        return [UserUsage.of(node) for node in found]


@strawberry.type
class ProviderUsage:
    provider: str
    models: list[str]
    metrics: UsageMetrics
    share: float = strawberry.field(description=SHARE)
    _node: strawberry.Private[Node]

    @classmethod
    def of(cls, node: Node) -> ProviderUsage:
        row = node.row
        return cls(
            provider=row.key,
            models=list(row.related),
            metrics=UsageMetrics.of(row.totals),
            share=node.share,
            _node=node,
        )

    @described(SERIES)
    async def time_series(
        self, info: Info[Context, None], granularity: Granularity = Granularity.DAY
    ) -> list[UsagePoint]:
        return await _points(info, self._node, granularity)


@strawberry.type(description="A LiteLLM key bucket: a key's token hash, `unattributed` or `raw:…`.")
class ApiKeyUsage:
    token_hash_prefix: str
    metrics: UsageMetrics
    share: float = strawberry.field(description=SHARE)
    last_active_date: date | None
    _node: strawberry.Private[Node]

    @classmethod
    def of(cls, node: Node) -> ApiKeyUsage:
        row = node.row
        return cls(
            token_hash_prefix=row.key[:TOKEN_HASH_PREFIX],
            metrics=UsageMetrics.of(row.totals),
            share=node.share,
            last_active_date=row.last_active,
            _node=node,
        )

    @described(
        "The directory key's id; for a bucket outside the directory, the bucket itself"
        " (usable in `UsageFilter.apiKeyIds`)."
    )
    async def api_key_id(self, info: Info[Context, None]) -> strawberry.ID | None:
        record = await nodes.api_key(info.context, self._node)
        return strawberry.ID(record.id if record is not None else self._node.key)

    @described("The directory key; null outside the directory.")
    async def api_key(self, info: Info[Context, None]) -> ApiKey | None:
        record = await nodes.api_key(info.context, self._node)
        return None if record is None else ApiKey.of(record)

    @described("The key's owner in the directory; null outside the directory.")
    async def user(self, info: Info[Context, None]) -> User | None:
        record = await nodes.api_key(info.context, self._node)
        return None if record is None else User.maybe(record.user)

    @described(SERIES)
    async def time_series(
        self, info: Info[Context, None], granularity: Granularity = Granularity.DAY
    ) -> list[UsagePoint]:
        return await _points(info, self._node, granularity)


@strawberry.type(
    description="A LiteLLM team: the team of each key on each day (a key that moved keeps its earlier usage"
    " under its earlier team), or `no-team` for keys without one, keys outside the directory and spend"
    " without a key. Teams partition the facts: the nodes sum to the totals."
)
class TeamUsage:
    team_id: strawberry.ID
    team_alias: str | None = strawberry.field(
        description="LiteLLM's alias; kept for a team LiteLLM has deleted. Null for `no-team` and for a team"
        " never listed by LiteLLM's team list."
    )
    deleted: bool = strawberry.field(description="LiteLLM no longer lists the team.")
    metrics: UsageMetrics
    share: float = strawberry.field(description=SHARE)
    last_active_date: date | None
    _node: strawberry.Private[Node]

    @classmethod
    def of(cls, node: Node, record: TeamRecord | None) -> TeamUsage:
        row = node.row
        return cls(
            team_id=strawberry.ID(row.key),
            team_alias=None if record is None else record.alias,
            deleted=False if record is None else record.deleted,
            metrics=UsageMetrics.of(row.totals),
            share=node.share,
            last_active_date=row.last_active,
            _node=node,
        )

    @described(SERIES)
    async def time_series(
        self, info: Info[Context, None], granularity: Granularity = Granularity.DAY
    ) -> list[UsagePoint]:
        return await _points(info, self._node, granularity)

    @described("The team's top users by spend, with metrics of this team only.")
    async def top_users(self, info: Info[Context, None], first: int = 5) -> list[UserUsage]:
        found = await nodes.top(info.context, self._node, Dimension.USER, first, site(info))
        return [UserUsage.of(node) for node in found]


def page_info(page: NodePage) -> PageInfo:
    return PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor)


@strawberry.type
class Connection(Generic[T]):
    """A page of a breakdown. Strawberry names each use after its node type: ``Connection[UserUsage]`` is
    ``UserUsageConnection`` in the schema."""

    total_count: int
    page_info: PageInfo
    nodes: list[T]

    @classmethod
    def of(cls, page: NodePage, node: Callable[[Node], T]) -> Connection[T]:
        return cls(total_count=page.total_count, page_info=page_info(page), nodes=list(map(node, page.nodes)))
