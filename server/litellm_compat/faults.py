"""Fault injection for the LiteLLM-compatible server: slow, failing, hanging and garbled answers, and a
"live" day whose numbers keep growing between requests (as LiteLLM's upserts make today's rows do)."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from server.litellm_compat.store import LiteLLMStore

ACTIVITY_PATHS = frozenset({"/user/daily/activity", "/user/daily/activity/aggregated"})
# What one mutation adds to a row of the live day.
_GROWTH: Mapping[str, int | float] = {
    "spend": 0.00125,
    "prompt_tokens": 120,
    "completion_tokens": 45,
    "api_requests": 1,
    "successful_requests": 1,
    "total_response_time_ms": 640,
    "timed_requests": 1,
}
_INSERT_EVERY = 5  # every fifth mutation inserts a row instead, shifting page offsets


@dataclass(frozen=True, slots=True)
class FaultPlan:
    latency_seconds: float = 0.0
    hang_seconds: float = 0.0
    fail_status: int | None = None
    malformed: bool = False


@dataclass
class Faults:
    """Mutable at run time from the test thread; the server consults it on every request.

    The ``*_next`` counters are consumed one per matching request, in the order timeout, fail,
    malformed (a request consumes at most one); ``failure_rate`` applies when none was consumed.
    ``fail_paths``/``fail_dates`` restrict every fault except ``mutate_day`` to requests whose path /
    ``start_date`` is listed."""

    latency_seconds: float = 0.0
    failure_rate: float = 0.0
    fail_next: int = 0
    fail_status: int = 500
    timeout_next: int = 0
    hang_seconds: float = 30.0
    malformed_next: int = 0
    fail_paths: Collection[str] | None = None
    fail_dates: Collection[str] | None = None
    mutate_day: str | None = None
    mutate_limit: int | None = None
    seed: int = 0
    mutations: int = field(default=0, init=False)  # how many times the live day has grown
    _rng: random.Random = field(init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def reset(self, **changes: Any) -> None:
        """Back to no faults, then apply ``changes``; clears ``mutations`` and restarts the random
        stream from ``seed``."""
        with self._lock:
            for spec in fields(self):
                if spec.init:
                    setattr(self, spec.name, changes.pop(spec.name, spec.default))
            if changes:
                raise TypeError(f"unknown fault settings: {sorted(changes)}")
            self.mutations = 0
            self._rng = random.Random(self.seed)

    def _applies(self, path: str, start_date: str | None) -> bool:
        if self.fail_paths is not None and path not in self.fail_paths:
            return False
        return self.fail_dates is None or start_date in self.fail_dates

    def plan(self, path: str, start_date: str | None) -> FaultPlan:
        with self._lock:
            if not self._applies(path, start_date):
                return FaultPlan()
            hang, fail, malformed = 0.0, None, False
            if self.timeout_next > 0:
                self.timeout_next -= 1
                hang = self.hang_seconds
            elif self.fail_next > 0:
                self.fail_next -= 1
                fail = self.fail_status
            elif self.malformed_next > 0:
                self.malformed_next -= 1
                malformed = True
            elif self.failure_rate > 0 and self._rng.random() < self.failure_rate:
                fail = self.fail_status
            return FaultPlan(self.latency_seconds, hang, fail, malformed)

    def after_response(self, store: LiteLLMStore, path: str, params: Mapping[str, str], status: int) -> None:
        """Grow the live day after a successful activity request whose range contains it."""
        day = self.mutate_day
        if day is None or status != 200 or path not in ACTIVITY_PATHS:
            return
        if not params.get("start_date", "\uffff") <= day <= params.get("end_date", ""):
            return
        with self._lock:
            if self.mutate_limit is not None and self.mutations >= self.mutate_limit:
                return
            self.mutations += 1
            number = self.mutations
            rows = store.rows_on(day)
            if rows and number % _INSERT_EVERY:
                store.increment_row(self._rng.choice(rows)["id"], _GROWTH)
            else:
                store.add_rows([self._new_row(day, self._rng.choice(rows) if rows else None, number)])

    def _new_row(self, day: str, template: dict[str, Any] | None, number: int) -> dict[str, Any]:
        # A new model name keeps the unique (user, date, key, model, provider, tool, endpoint) constraint.
        template = template or {}
        model = f"{template.get('model') or 'live-model'}-live-{number}"
        return {
            "id": str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
            "user_id": template.get("user_id", "live-user"),
            "date": day,
            "api_key": template.get("api_key", ""),
            "model": model,
            "model_group": model,
            "custom_llm_provider": template.get("custom_llm_provider") or "openai",
            "mcp_namespaced_tool_name": template.get("mcp_namespaced_tool_name", ""),
            "endpoint": template.get("endpoint") or "/chat/completions",
            **_GROWTH,
        }
