"""Nodes of ``byModelGroup``, ``byEndpoint`` and ``byMcpServer``: LiteLLM's roll-ups by model group,
endpoint and MCP tool, apart from users and providers (see ``resolvers/side_rules.py``)."""

from __future__ import annotations

from datetime import date
from typing import Any

import strawberry

from usage_gateway.resolvers.side_breakdowns import SideNode, SideNodePage
from usage_gateway.schema.metrics import PageInfo, UsageMetrics

ACTIVE_USERS = frozenset({"activeUsers"})
SHARE = "Fraction of the filtered total spend (`Usage.totals`)."
MODELS = "The LiteLLM models (the facts' `model`) of the bucket's usage under the filter, sorted."


def _measures(node: SideNode) -> dict[str, Any]:
    """The fields every side node has beside its bucket's name."""
    row = node.row
    return {
        "models": list(row.related),
        "metrics": UsageMetrics.of(row.totals),
        "share": node.share,
        "last_active_date": row.last_active,
    }


@strawberry.type(
    description="A LiteLLM model group (`model_group`, else the model, else `unknown-model-group`). Every"
    " request has one, so the nodes of `byModelGroup` together sum to `Usage.totals`."
)
class ModelGroupUsage:
    model_group: str
    models: list[str] = strawberry.field(description=MODELS)
    metrics: UsageMetrics
    share: float = strawberry.field(description=SHARE)
    last_active_date: date | None

    @classmethod
    def of(cls, node: SideNode) -> ModelGroupUsage:
        return cls(model_group=node.row.key, **_measures(node))


@strawberry.type(
    description="An endpoint LiteLLM recorded (e.g. `/chat/completions`). Rows without one are in no node,"
    " so the nodes of `byEndpoint` may sum to less than `Usage.totals`."
)
class EndpointUsage:
    endpoint: str
    models: list[str] = strawberry.field(description=MODELS)
    metrics: UsageMetrics
    share: float = strawberry.field(description=SHARE)
    last_active_date: date | None

    @classmethod
    def of(cls, node: SideNode) -> EndpointUsage:
        return cls(endpoint=node.row.key, **_measures(node))


@strawberry.type(
    description="An MCP tool as LiteLLM names it (`mcp_namespaced_tool_name`, the keys of its `mcp_servers`"
    " breakdown). Only requests through an MCP tool are in a node, so the nodes of `byMcpServer` usually"
    " sum to much less than `Usage.totals`."
)
class McpServerUsage:
    mcp_tool: str = strawberry.field(description="LiteLLM's `mcp_namespaced_tool_name`.")
    models: list[str] = strawberry.field(description=MODELS)
    metrics: UsageMetrics
    share: float = strawberry.field(description=SHARE)
    last_active_date: date | None

    @classmethod
    def of(cls, node: SideNode) -> McpServerUsage:
        return cls(mcp_tool=node.row.key, **_measures(node))


def page_info(page: SideNodePage) -> PageInfo:
    return PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor)
