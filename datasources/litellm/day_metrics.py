"""The additive metrics LiteLLM records per row, and their sum."""

from __future__ import annotations

import operator
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, NamedTuple


class DayMetrics(NamedTuple):
    """Every field is additive, so any grouping of LiteLLM rows sums field by field exactly.

    A named tuple rather than a dataclass: a cold load makes one per LiteLLM row, and a tuple is made
    several times faster than a frozen dataclass. ``+`` and ``-`` are field by field, not tuple concatenation.
    """

    spend: Decimal = Decimal(0)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    total_tokens: int = 0
    api_requests: int = 0
    successful_requests: int = 0
    failed_requests: int = 0
    total_response_time_ms: int = 0
    timed_requests: int = 0

    def __add__(self, other: tuple[Any, ...]) -> DayMetrics:
        return DayMetrics._make(map(operator.add, self, other))

    def __sub__(self, other: tuple[Any, ...]) -> DayMetrics:
        return DayMetrics._make(map(operator.sub, self, other))

    def is_zero(self) -> bool:
        """No usage at all: every counter and the spend are zero."""
        return not any(self)

    def counters_negative(self) -> bool:
        return any(n < 0 for n in self[1:])

    @classmethod
    def from_litellm(cls, metrics: Mapping[str, Any]) -> DayMetrics:
        """LiteLLM's JSON holds the shortest repr of a double; its Decimal is exactly that text."""
        values = {n: metrics[n] for n in cls._fields}
        values["spend"] = Decimal(repr(float(values["spend"])))
        return cls(**values)

    def as_tuple(self) -> tuple[Decimal | int, ...]:
        return tuple(self)

    def matches(self, other: DayMetrics, rel_tol: float = 1e-9) -> bool:
        """Counters equal exactly; spend equal up to floating-point noise."""
        if self[1:] != other[1:]:
            return False
        scale = max(abs(self.spend), abs(other.spend), Decimal("1e-12"))
        return abs(self.spend - other.spend) <= Decimal(repr(rel_tol)) * scale


NAMES: tuple[str, ...] = DayMetrics._fields
