"""Numbers: the metrics of any set of facts, a series point, a page's info."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import strawberry

from usage_gateway.datasources.facts.aggregates import UsageTotals
from usage_gateway.schema.scalars import BigInt


@strawberry.type(description="The aggregate of the facts a filter (or a node) stands for.")
class UsageMetrics:
    spend: float
    requests: BigInt
    successful_requests: BigInt
    failed_requests: BigInt
    success_rate: float | None = strawberry.field(description="Null without requests.")
    prompt_tokens: BigInt
    completion_tokens: BigInt
    cache_read_input_tokens: BigInt
    cache_creation_input_tokens: BigInt
    total_tokens: BigInt
    average_latency_ms: float | None = strawberry.field(description="Null when no request was timed.")
    active_users: int = strawberry.field(
        description="Distinct users, pseudo-users included, except `unattributed`."
    )
    active_api_keys: int
    active_models: int

    @classmethod
    def of(cls, t: UsageTotals) -> UsageMetrics:
        return cls(
            spend=float(t.spend),
            requests=BigInt(t.requests),
            successful_requests=BigInt(t.successful_requests),
            failed_requests=BigInt(t.failed_requests),
            success_rate=t.success_rate,
            prompt_tokens=BigInt(t.prompt_tokens),
            completion_tokens=BigInt(t.completion_tokens),
            cache_read_input_tokens=BigInt(t.cache_read_input_tokens),
            cache_creation_input_tokens=BigInt(t.cache_creation_input_tokens),
            total_tokens=BigInt(t.total_tokens),
            average_latency_ms=t.average_latency_ms,
            active_users=t.active_users,
            active_api_keys=t.active_api_keys,
            active_models=t.active_models,
        )


@strawberry.type
class UsagePoint:
    date: dt.date = strawberry.field(description="The first day of the bucket.")
    metrics: UsageMetrics


def points(series: Iterable[tuple[dt.date, UsageTotals]]) -> list[UsagePoint]:
    return [UsagePoint(date=day, metrics=UsageMetrics.of(t)) for day, t in series]


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None
