"""The vocabulary of :mod:`~usage_gateway.datasources.facts.aggregates`: dimensions, orderings, filters
and the numbers it returns.

Counting rules, shared by every aggregate (a group, a bucket, the totals), over the facts matching the filter:

- ``requests`` is the sum of LiteLLM's ``api_requests``; every other counter is the sum of its column;
- ``spend`` is the exact ``numeric`` sum, as a :class:`~decimal.Decimal`;
- ``active_users`` counts distinct attributed ``user_id`` values except ``'unattributed'`` (pseudo-users
  ``'litellm:<id>'`` count), ``active_api_keys`` distinct ``api_key`` buckets except ``'unattributed'``
  (``'raw:…'`` buckets count), ``active_models`` distinct ``model`` values.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar


class Dimension(StrEnum):
    """A column of ``usage_facts`` facts can be grouped and filtered by (the value is the column)."""

    USER = "user_id"
    API_KEY = "api_key"
    MODEL = "model"
    PROVIDER = "provider"
    TEAM = "team_id"  # the key's team on the fact's day (migration 0007), 'no-team' without one
    # A LiteLLM tag (migration 0008). Only tag facts have it: a query that groups or filters by it reads
    # them (aggregates.source_for), where a request with N tags counts N times across tags.
    TAG = "tag"


# The dimensions of usage facts themselves (every one but the tag, which only tag facts have).
USAGE_DIMENSIONS: tuple[Dimension, ...] = tuple(d for d in Dimension if d is not Dimension.TAG)


class Granularity(StrEnum):
    """A time bucket; the value is its ``date_trunc`` unit (``week`` is the ISO week, from Monday)."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class OrderMetric(StrEnum):
    """A metric groups can be ordered by (the value is the :class:`UsageTotals` field)."""

    SPEND = "spend"
    REQUESTS = "requests"
    SUCCESSFUL_REQUESTS = "successful_requests"
    FAILED_REQUESTS = "failed_requests"
    TOTAL_TOKENS = "total_tokens"
    PROMPT_TOKENS = "prompt_tokens"
    COMPLETION_TOKENS = "completion_tokens"


class Direction(StrEnum):
    ASC = "asc"
    DESC = "desc"


class InvalidCursor(ValueError):
    """A pagination cursor that is malformed or was made for another dimension or ordering."""


@dataclass(frozen=True)
class FactFilter:
    """Which facts count: dates inclusive; ``None`` means no filter, an empty tuple matches nothing.

    ``user_ids`` are attributed users (``usage_facts.user_id``, pseudo ids included); ``api_keys`` are
    LiteLLM key buckets (``usage_facts.api_key``: sha256 hex, ``'unattributed'``, ``'raw:…'``).
    All conditions combine with AND.
    """

    date_from: date
    date_to: date
    user_ids: tuple[str, ...] | None = None
    api_keys: tuple[str, ...] | None = None
    models: tuple[str, ...] | None = None
    providers: tuple[str, ...] | None = None
    team_ids: tuple[str, ...] | None = None  # LiteLLM team ids, or 'no-team'
    tags: tuple[str, ...] | None = None  # LiteLLM tags: at most one, a tag's requests (tag facts)

    def values_for(self, dimension: Dimension) -> tuple[str, ...] | None:
        """The filter's allowed values for ``dimension``."""
        return {
            Dimension.USER: self.user_ids,
            Dimension.API_KEY: self.api_keys,
            Dimension.MODEL: self.models,
            Dimension.PROVIDER: self.providers,
            Dimension.TEAM: self.team_ids,
            Dimension.TAG: self.tags,
        }[dimension]


@dataclass(frozen=True)
class UsageTotals:
    """The aggregate of a set of facts (see the module docstring for what each count counts)."""

    spend: Decimal
    requests: int
    successful_requests: int
    failed_requests: int
    prompt_tokens: int
    completion_tokens: int
    cache_read_input_tokens: int
    cache_creation_input_tokens: int
    total_tokens: int
    total_response_time_ms: int
    timed_requests: int
    active_users: int
    active_api_keys: int
    active_models: int

    ZERO: ClassVar[UsageTotals]

    @property
    def success_rate(self) -> float | None:
        """Successful over all requests; ``None`` without requests."""
        return self.successful_requests / self.requests if self.requests else None

    @property
    def average_latency_ms(self) -> float | None:
        """Mean response time of the requests LiteLLM timed; ``None`` when none was timed."""
        return self.total_response_time_ms / self.timed_requests if self.timed_requests else None

    def metric(self, metric: OrderMetric) -> Decimal | int:
        value: Decimal | int = getattr(self, metric.value)
        return value

    @classmethod
    def from_values(cls, values: Sequence[Any]) -> UsageTotals:
        """Build from SQL values in field order; ``NULL`` (no facts) reads as zero."""
        spend, *counts = values
        return cls(
            spend if type(spend) is Decimal else Decimal(0) if spend is None else Decimal(spend),
            *[value if type(value) is int else 0 if value is None else int(value) for value in counts],
        )


UsageTotals.ZERO = UsageTotals.from_values([None] * len(fields(UsageTotals)))


@dataclass(frozen=True)
class Order:
    """Groups by ``metric`` in ``direction``; ties always break by the group key, ascending."""

    metric: OrderMetric = OrderMetric.SPEND
    direction: Direction = Direction.DESC


@dataclass(frozen=True)
class GroupRow:
    """One group of a breakdown.

    ``related`` (sorted, distinct, over the matching facts): for a MODEL its providers, for a PROVIDER its
    models; for an API_KEY or a USER nothing.
    """

    key: str
    totals: UsageTotals
    last_active: date | None
    related: tuple[str, ...]


@dataclass(frozen=True)
class GroupPage:
    """A page of groups; ``total_count`` counts every matching group, whatever the cursor."""

    total_count: int
    rows: list[GroupRow]
    has_next_page: bool
    end_cursor: str | None


# --- Cursors --------------------------------------------------------------------------------------------

_INTEGER = re.compile(r"-?[0-9]{1,100}")
# A spend is an exact sum of doubles' shortest decimals: down to 5e-324, so up to 330 decimal places
# (and a double's 309 integer digits); the cursor's 4096-character cap bounds the rest.
_DECIMAL = re.compile(r"-?[0-9]{1,310}(\.[0-9]{1,340})?")


def encode_cursor(dimension: Dimension, order: Order, row: GroupRow) -> str:
    """The opaque cursor after ``row``: unpadded URL-safe base64 of JSON ``{d, m, o, v, k}`` (dimension,
    metric, direction, the row's metric value as an exact decimal string, the row's key)."""
    value = row.totals.metric(order.metric)
    payload = {
        "d": dimension.value,
        "m": order.metric.value,
        "o": order.direction.value,
        "v": format(value, "f") if isinstance(value, Decimal) else str(value),
        "k": row.key,
    }
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, dimension: Dimension, order: Order) -> tuple[str, str]:
    """The (metric value, key) a cursor points after; InvalidCursor unless made for this ordering."""
    try:
        if len(cursor) > 4096:
            raise ValueError("too long")
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        payload = json.loads(raw.decode())
    except ValueError as exc:
        raise InvalidCursor("malformed cursor") from exc
    expected = {"d": dimension.value, "m": order.metric.value, "o": order.direction.value}
    if not isinstance(payload, dict) or set(payload) != {*expected, "v", "k"}:
        raise InvalidCursor("malformed cursor")
    if any(payload[name] != value for name, value in expected.items()):
        raise InvalidCursor("cursor was made for another breakdown or ordering")
    value, key = payload["v"], payload["k"]
    number = _DECIMAL if order.metric is OrderMetric.SPEND else _INTEGER
    if not (isinstance(value, str) and number.fullmatch(value)):
        raise InvalidCursor("malformed cursor")
    if not isinstance(key, str) or "\x00" in key:
        raise InvalidCursor("malformed cursor")
    return value, key
