"""The enums of the contract. Where the data layer has the same notion, its member is the value, or the
data layer's enum is the contract's (registered here, so importing them from here finds them ready)."""

from __future__ import annotations

from enum import Enum

import strawberry

from usage_gateway.datasources.exports.records import ExportDimension as ExportDimension
from usage_gateway.datasources.exports.records import ExportFormat as ExportFormat
from usage_gateway.datasources.exports.records import ExportStatus as ExportStatus
from usage_gateway.datasources.facts import aggregates as facts
from usage_gateway.resolvers import viewer


@strawberry.enum(
    description="A time bucket: a day, an ISO week (from Monday), a calendar month. A series' first and last"
    " WEEK or MONTH buckets hold only the days inside the range, though `UsagePoint.date` names the bucket's"
    " first day (for the first bucket possibly before the range): `UsagePoint.from` and `to` are the days"
    " held."
)
class Granularity(Enum):
    DAY = facts.Granularity.DAY
    WEEK = facts.Granularity.WEEK
    MONTH = facts.Granularity.MONTH


@strawberry.enum(description="A metric breakdowns can be ordered by.")
class UsageMetric(Enum):
    SPEND = facts.OrderMetric.SPEND
    REQUESTS = facts.OrderMetric.REQUESTS
    SUCCESSFUL_REQUESTS = facts.OrderMetric.SUCCESSFUL_REQUESTS
    FAILED_REQUESTS = facts.OrderMetric.FAILED_REQUESTS
    TOTAL_TOKENS = facts.OrderMetric.TOTAL_TOKENS
    PROMPT_TOKENS = facts.OrderMetric.PROMPT_TOKENS
    COMPLETION_TOKENS = facts.OrderMetric.COMPLETION_TOKENS


@strawberry.enum
class SortDirection(Enum):
    ASC = facts.Direction.ASC
    DESC = facts.Direction.DESC


@strawberry.enum
class Role(Enum):
    ADMIN = viewer.Role.ADMIN
    ADMIN_READONLY = viewer.Role.ADMIN_READONLY
    USER = viewer.Role.USER


# The data layer's enums themselves: a field or argument typed with them takes and gives their members.
strawberry.enum(
    ExportDimension,
    name="ExportDimension",
    description="A column an export groups its rows by. MODEL_GROUP, ENDPOINT and MCP_SERVER are LiteLLM's"
    " roll-ups of `byModelGroup`, `byEndpoint` and `byMcpServer`: one of them per export, under the filters"
    " those fields take, crossed with DATE, API_KEY, MODEL, USER or TEAM only (PROVIDER, TAG and another"
    " roll-up are refused).",
)
strawberry.enum(ExportFormat, name="ExportFormat")
strawberry.enum(ExportStatus, name="ExportStatus")
