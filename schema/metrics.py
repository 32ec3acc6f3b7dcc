"""Numbers: the metrics of any set of facts, a series point, a page's info."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

import strawberry

from usage_gateway.datasources.facts.aggregates import Granularity, UsageTotals
from usage_gateway.schema.scalars import BigInt


@strawberry.type(description="The aggregate of the facts a filter (or a node) stands for.")
class UsageMetrics:
    spend: float = strawberry.field(description="The nearest double to `spendExact`.")
    spend_exact: Decimal = strawberry.field(
        description="The exact sum of the stored spend, as the export files write it."
    )
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
            spend_exact=t.spend,  # formatted by the Decimal scalar, only when selected
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


@strawberry.type(
    description="One bucket of a series. A WEEK bucket is an ISO week (Monday to Sunday) and a MONTH bucket a"
    " calendar month, so the first and last buckets may reach outside the range: `date` is then the bucket's"
    " first day (a Monday, or the 1st, before `from`), while `metrics` and `from`/`to` cover only the days"
    " inside the range."
)
class UsagePoint:
    date: dt.date = strawberry.field(
        description="The first day of the whole bucket, which may be before the range's `from`."
    )
    from_: dt.date = strawberry.field(
        name="from", description="The bucket's first day inside the range: the later of `date` and `from`."
    )
    to: dt.date = strawberry.field(
        description="The bucket's last day inside the range: the earlier of its last day and the range's"
        " `to`."
    )
    metrics: UsageMetrics = strawberry.field(description="The facts of the days `from` to `to`.")


_WEEK_LAST = dt.timedelta(days=6)


def _month_last(first: dt.date) -> dt.date:
    following = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return following - dt.timedelta(days=1)


def points(
    series: Iterable[tuple[dt.date, UsageTotals]],
    granularity: Granularity,
    date_from: dt.date,
    date_to: dt.date,
) -> list[UsagePoint]:
    """The points of a series of ``date_from..date_to``: one per bucket, in order, from the bucket holding
    ``date_from`` to the one holding ``date_to``, so only the first and the last can reach outside the range.
    Each point's bounds are plain attributes (a dashboard builds thousands of points)."""
    if granularity is Granularity.DAY:
        result = [UsagePoint(date=day, from_=day, to=day, metrics=UsageMetrics.of(t)) for day, t in series]
    elif granularity is Granularity.WEEK:
        result = [
            UsagePoint(date=day, from_=day, to=day + _WEEK_LAST, metrics=UsageMetrics.of(t))
            for day, t in series
        ]
    else:
        result = [
            UsagePoint(date=day, from_=day, to=_month_last(day), metrics=UsageMetrics.of(t))
            for day, t in series
        ]
    if result:
        result[0].from_ = max(result[0].from_, date_from)
        result[-1].to = min(result[-1].to, date_to)
    return result


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None
