"""The additive metrics LiteLLM records per row, and their sum."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class DayMetrics:
    """Every field is additive, so any grouping of LiteLLM rows sums field by field exactly."""

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

    NAMES: ClassVar[tuple[str, ...]]

    def __add__(self, other: DayMetrics) -> DayMetrics:
        return DayMetrics(*(getattr(self, n) + getattr(other, n) for n in DayMetrics.NAMES))

    def __sub__(self, other: DayMetrics) -> DayMetrics:
        return DayMetrics(*(getattr(self, n) - getattr(other, n) for n in DayMetrics.NAMES))

    def is_zero(self) -> bool:
        """No usage at all: every counter and the spend are zero."""
        return not any(self.as_tuple())

    def counters_negative(self) -> bool:
        return any(getattr(self, n) < 0 for n in DayMetrics.NAMES if n != "spend")

    @classmethod
    def from_litellm(cls, metrics: Mapping[str, Any]) -> DayMetrics:
        """LiteLLM's JSON holds the shortest repr of a double; its Decimal is exactly that text."""
        values = {n: metrics[n] for n in cls.NAMES}
        values["spend"] = Decimal(repr(float(values["spend"])))
        return cls(**values)

    def as_tuple(self) -> tuple[Decimal | int, ...]:
        return tuple(getattr(self, n) for n in DayMetrics.NAMES)

    def matches(self, other: DayMetrics, rel_tol: float = 1e-9) -> bool:
        """Counters equal exactly; spend equal up to floating-point noise."""
        if any(getattr(self, n) != getattr(other, n) for n in DayMetrics.NAMES if n != "spend"):
            return False
        scale = max(abs(self.spend), abs(other.spend), Decimal("1e-12"))
        return abs(self.spend - other.spend) <= Decimal(repr(rel_tol)) * scale


DayMetrics.NAMES = tuple(f.name for f in fields(DayMetrics))
