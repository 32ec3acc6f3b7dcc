"""``Usage``: everything about one filter, each field computed only when selected."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

import strawberry
from strawberry.types import Info

from usage_gateway.datasources.facts.aggregates import Dimension
from usage_gateway.datasources.facts.side_breakdowns import SideRollup
from usage_gateway.datasources.insights.forecast import Horizon
from usage_gateway.resolvers import breakdowns, teams
from usage_gateway.resolvers import usage as resolve
from usage_gateway.resolvers.breakdowns import NodePage
from usage_gateway.resolvers.context import Context
from usage_gateway.resolvers.side_breakdowns import SideNodePage, side_page
from usage_gateway.resolvers.usage import UsageRequest
from usage_gateway.schema.enums import Granularity, UsageMetric
from usage_gateway.schema.fields import described
from usage_gateway.schema.inputs import UsageOrder, to_order
from usage_gateway.schema.insights import anomalies as anomaly_types
from usage_gateway.schema.insights import budgets as budget_types
from usage_gateway.schema.insights import forecast as forecasts
from usage_gateway.schema.insights import movers as mover_types
from usage_gateway.schema.metrics import UsageMetrics, UsagePoint, points
from usage_gateway.schema.nodes import (
    ApiKeyUsage,
    Connection,
    ModelUsage,
    ProviderUsage,
    TeamUsage,
    UserUsage,
)
from usage_gateway.schema.selection import ACTIVE_COUNTS, selects_any, site
from usage_gateway.schema.side_nodes import ACTIVE_USERS, EndpointUsage, McpServerUsage, ModelGroupUsage
from usage_gateway.schema.side_nodes import page_info as side_page_info
from usage_gateway.schema.tag_nodes import TagUsage


@strawberry.type(description="How complete and how fresh the days behind an answer are.")
class Freshness:
    complete: bool = strawberry.field(
        description="Every day up to today is present, fresh, and equal to LiteLLM's own totals for it."
    )
    days: int = strawberry.field(description="Days of the range up to today (future days hold nothing).")
    closed_days: int = strawberry.field(description="Days that will not change any more.")
    open_days: list[date] = strawberry.field(description="Days that may still change (today, recent days).")
    missing_days: list[date] = strawberry.field(description="Days LiteLLM could not deliver: not counted.")
    unverified_days: list[date] = strawberry.field(
        description="Days counted, but whose numbers did not add up to LiteLLM's own totals for the day"
        " (it changed while being read, or could not be split exactly): read again by the next request."
    )
    as_of: datetime | None = strawberry.field(
        description="When the oldest data that could still change was fetched."
    )
    unattributed_spend: float = strawberry.field(description="Spend of the `unattributed` pseudo-user.")
    unattributed_spend_exact: Decimal = strawberry.field(description="`unattributedSpend`, exact.")


@strawberry.type(description="Usage under one filter. Every field honours the whole filter.")
class Usage:
    from_: date = strawberry.field(name="from")
    to: date
    _request: strawberry.Private[UsageRequest]

    @classmethod
    def of(cls, request: UsageRequest) -> Usage:
        return cls(from_=request.filter.date_from, to=request.filter.date_to, _request=request)

    def _asked(self, info: Info[Context, None]) -> UsageRequest:
        """The request, computing the costly active counts only if this field's selection wants them."""
        return replace(self._request, active_counts=selects_any(info, ACTIVE_COUNTS))

    @strawberry.field
    async def totals(self, info: Info[Context, None]) -> UsageMetrics:
        return UsageMetrics.of(await resolve.totals(info.context, self._asked(info)))

    @described("The same number of days right before `from`, under the same filter.")
    async def previous_period(self, info: Info[Context, None]) -> UsageMetrics:
        return UsageMetrics.of(await resolve.previous_period(info.context, self._asked(info)))

    @described(
        "One point per bucket from `from` to `to`; empty buckets are zeros. WEEK (ISO, from Monday) and MONTH"
        " buckets are clipped to the range: the first may be labelled (`date`) with a Monday or a 1st before"
        " `from` while holding only the days from `from` on, and the last holds only the days up to `to`;"
        " each point's `from` and `to` say which days it holds."
    )
    async def time_series(
        self, info: Info[Context, None], granularity: Granularity = Granularity.DAY
    ) -> list[UsagePoint]:
        series = await resolve.time_series(info.context, self._asked(info), granularity.value)
        return points(series, granularity.value, self.from_, self.to)

    @strawberry.field
    async def by_user(
        self,
        info: Info[Context, None],
        first: int = 50,
        after: str | None = None,
        order_by: UsageOrder | None = None,
        min_spend: float | None = None,
        max_spend: float | None = None,
    ) -> Connection[UserUsage]:
        page = await self._page(info, Dimension.USER, first, after, order_by, min_spend, max_spend)
        return Connection.of(page, UserUsage.of)

    @strawberry.field
    async def by_model(
        self,
        info: Info[Context, None],
        first: int = 50,
        after: str | None = None,
        order_by: UsageOrder | None = None,
    ) -> Connection[ModelUsage]:
        page = await self._page(info, Dimension.MODEL, first, after, order_by)
        return Connection.of(page, ModelUsage.of)

    @strawberry.field
    async def by_provider(
        self,
        info: Info[Context, None],
        first: int = 50,
        after: str | None = None,
        order_by: UsageOrder | None = None,
    ) -> Connection[ProviderUsage]:
        page = await self._page(info, Dimension.PROVIDER, first, after, order_by)
        return Connection.of(page, ProviderUsage.of)

    @strawberry.field
    async def by_api_key(
        self,
        info: Info[Context, None],
        first: int = 50,
        after: str | None = None,
        order_by: UsageOrder | None = None,
    ) -> Connection[ApiKeyUsage]:
        page = await self._page(info, Dimension.API_KEY, first, after, order_by)
        return Connection.of(page, ApiKeyUsage.of)

    @described(
        "Usage by LiteLLM team: the team of each key on each day, `no-team` for the rest; the nodes sum to"
        " the totals."
    )
    async def by_team(
        self,
        info: Info[Context, None],
        first: int = 50,
        after: str | None = None,
        order_by: UsageOrder | None = None,
    ) -> Connection[TeamUsage]:
        page = await self._page(info, Dimension.TEAM, first, after, order_by)
        found = await teams.records(info.context, [node.key for node in page.nodes])
        return Connection.of(page, lambda node: TeamUsage.of(node, found.get(node.key)))

    @described(
        "Usage by LiteLLM tag, from LiteLLM's tag activity (fetched only for queries that ask for tags)."
        " A request with several tags counts once in each, so the nodes can sum to more than the totals;"
        " tag numbers are never added into them. Requests without any tag are in no node (by default"
        " LiteLLM gives every request its `User-Agent:` tags)."
    )
    async def by_tag(
        self,
        info: Info[Context, None],
        first: int = 50,
        after: str | None = None,
        order_by: UsageOrder | None = None,
    ) -> Connection[TagUsage]:
        await resolve.ensure_tag_days(info.context, self._request)
        page = await self._page(info, Dimension.TAG, first, after, order_by)
        return Connection.of(page, TagUsage.of)

    async def _page(
        self,
        info: Info[Context, None],
        dimension: Dimension,
        first: int,
        after: str | None,
        order_by: UsageOrder | None,
        min_spend: float | None = None,
        max_spend: float | None = None,
    ) -> NodePage:
        return await breakdowns.breakdown(
            info.context,
            self._asked(info),
            dimension,
            first=first,
            after=after,
            order=to_order(order_by),
            min_spend=min_spend,
            max_spend=max_spend,
            site=site(info),
        )

    @described(
        "Usage by LiteLLM model group. Every request has one, so the nodes sum to the totals. Exact under"
        " `apiKeyIds`, `models`, `teamIds` (each key's team on each day) and `userIds` (each key's attributed"
        " user on each day; refused when a key was used by several users that day); refused under"
        " `providers`, `tag` and any other filter (LiteLLM does not cross them with model groups)."
    )
    async def by_model_group(
        self,
        info: Info[Context, None],
        first: int = 50,
        after: str | None = None,
        order_by: UsageOrder | None = None,
    ) -> Connection[ModelGroupUsage]:
        page = await self._side(info, SideRollup.MODEL_GROUP, first, after, order_by)
        return Connection(
            total_count=page.total_count,
            page_info=side_page_info(page),
            nodes=[ModelGroupUsage.of(n) for n in page.nodes],
        )

    @described(
        "Usage by the endpoint LiteLLM recorded. Only requests with an endpoint are counted, so the nodes may"
        " sum to less than the totals (never added to them). Filters as `byModelGroup`."
    )
    async def by_endpoint(
        self,
        info: Info[Context, None],
        first: int = 50,
        after: str | None = None,
        order_by: UsageOrder | None = None,
    ) -> Connection[EndpointUsage]:
        page = await self._side(info, SideRollup.ENDPOINT, first, after, order_by)
        return Connection(
            total_count=page.total_count,
            page_info=side_page_info(page),
            nodes=[EndpointUsage.of(n) for n in page.nodes],
        )

    @described(
        "Usage by MCP tool (LiteLLM's `mcp_servers` breakdown). Only requests through an MCP tool are"
        " counted, so the nodes may sum to less than the totals (never added to them). Filters as"
        " `byModelGroup`."
    )
    async def by_mcp_server(
        self,
        info: Info[Context, None],
        first: int = 50,
        after: str | None = None,
        order_by: UsageOrder | None = None,
    ) -> Connection[McpServerUsage]:
        page = await self._side(info, SideRollup.MCP_SERVER, first, after, order_by)
        return Connection(
            total_count=page.total_count,
            page_info=side_page_info(page),
            nodes=[McpServerUsage.of(n) for n in page.nodes],
        )

    async def _side(
        self,
        info: Info[Context, None],
        rollup: SideRollup,
        first: int,
        after: str | None,
        order_by: UsageOrder | None,
    ) -> SideNodePage:
        return await side_page(
            info.context,
            self._request,
            rollup,
            first=first,
            after=after,
            order=to_order(order_by),
            active_users=selects_any(info, ACTIVE_USERS),
        )

    @described(
        "Projected spend and requests to the end of the month or over the next 30 days, with a band."
        f" {forecasts.METHOD}"
    )
    async def forecast(
        self, info: Info[Context, None], horizon: Horizon = Horizon.MONTH_END
    ) -> forecasts.Forecast:
        return await forecasts.forecast(info.context, self._request, horizon)

    @described(budget_types.BUDGETS)
    async def budgets(
        self,
        info: Info[Context, None],
        first: int = 50,
        after: str | None = None,
        entity: budget_types.BudgetEntity | None = None,
        status: budget_types.BudgetStatus | None = None,
    ) -> Connection[budget_types.Budget]:
        return await budget_types.budgets(info.context, self._request, first, after, entity, status)

    @described(anomaly_types.DESCRIPTION)
    async def anomalies(
        self,
        info: Info[Context, None],
        dimension: anomaly_types.AnomalyDimension,
        first: int = 50,
        after: str | None = None,
        min_spend: float | None = None,
        metric: anomaly_types.AnomalyMetric | None = None,
    ) -> anomaly_types.AnomalyConnection:
        return await anomaly_types.anomaly_connection(
            info.context, self._request, dimension, first, after, min_spend, metric
        )

    @described(mover_types.DESCRIPTION)
    async def movers(
        self,
        info: Info[Context, None],
        dimension: mover_types.MoverDimension,
        first: int = 20,
        after: str | None = None,
        metric: UsageMetric = UsageMetric.SPEND,
    ) -> mover_types.MoverConnection:
        return await mover_types.mover_connection(
            info.context, self._request, dimension, first, after, metric
        )

    @strawberry.field
    async def freshness(self, info: Info[Context, None]) -> Freshness:
        found = await resolve.freshness(info.context, replace(self._request, active_counts=False))
        report = found.report
        return Freshness(
            complete=report.complete,
            days=len(report.days),
            closed_days=len(report.closed),
            open_days=list(report.open),
            missing_days=sorted({*report.missing, *report.failures}),
            unverified_days=sorted(report.unverified),
            as_of=report.as_of,
            unattributed_spend=float(found.unattributed_spend),
            unattributed_spend_exact=found.unattributed_spend,
        )
