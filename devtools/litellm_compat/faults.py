"""Fault injection for the LiteLLM-compatible server: slow, failing, hanging and garbled answers, a
"live" day whose numbers keep growing between requests (as LiteLLM's upserts make today's rows do), and
``/aggregated`` totals that disagree with the pages for chosen dates (a day nobody can verify), and a
host clock that is off (every answer's ``Date`` header).

The last one rewrites response bodies: :class:`BodyFaults`, which ``create_litellm_app`` installs
whenever it is given faults."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields
from email.utils import formatdate
from typing import Any

import orjson
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from usage_gateway.devtools.litellm_compat.activity import empty_day
from usage_gateway.devtools.litellm_compat.store import LiteLLMStore

AGGREGATED_PATH = "/user/daily/activity/aggregated"
ACTIVITY_PATHS = frozenset({"/user/daily/activity", AGGREGATED_PATH})
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
# What /aggregated claims beyond the truth on a skewed date: (SpendMetrics field, metadata total, amount).
SKEW: tuple[tuple[str, str, int | float], ...] = (
    ("spend", "total_spend", 0.5),
    ("prompt_tokens", "total_prompt_tokens", 10),
    ("total_tokens", "total_tokens", 10),
    ("successful_requests", "total_successful_requests", 1),
    ("api_requests", "total_api_requests", 1),
)


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
    ``fail_paths``/``fail_dates`` restrict every fault except ``mutate_day`` and
    ``skew_aggregated_dates`` to requests whose path / ``start_date`` is listed.

    ``skew_aggregated_dates``: ``/aggregated`` reports these dates' totals (``metrics`` and the metadata
    totals) off by :data:`SKEW`, a date without rows included, while its breakdowns and every page of
    ``/user/daily/activity`` stay true; applied by :class:`BodyFaults`.

    ``clock_skew_seconds``: every answer's ``Date`` header is this far from the real time (negative:
    behind), as from a LiteLLM whose host clock is off; every path, ``fail_paths`` or not."""

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
    skew_aggregated_dates: Collection[str] | None = None
    clock_skew_seconds: float = 0.0
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

    def date_header(self) -> bytes:
        """The ``Date`` header of an answer sent now, by the skewed clock."""
        return formatdate(time.time() + self.clock_skew_seconds, usegmt=True).encode()

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

    def rewrite_body(self, path: str, params: Mapping[str, str], body: bytes) -> bytes:
        """The body a successful request answers with: ``body``, or for ``/aggregated`` over a skewed date
        the same body with that date's totals (and the query's) off by :data:`SKEW`."""
        with self._lock:
            dates = frozenset(self.skew_aggregated_dates or ())
        start, end = params.get("start_date", "\uffff"), params.get("end_date", "")
        skewed = sorted(day for day in dates if start <= day <= end)
        if path != AGGREGATED_PATH or not skewed:
            return body
        try:
            answer = orjson.loads(body)
            results = {result["date"]: result for result in answer["results"]}
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return body  # not an answer to skew (a garbled one, say)
        for day in skewed:
            result = results.setdefault(day, empty_day(day))
            for field_name, total_name, amount in SKEW:
                result["metrics"][field_name] += amount
                answer["metadata"][total_name] += amount
        answer["results"] = [results[day] for day in sorted(results, reverse=True)]
        return orjson.dumps(answer)


class BodyFaults:
    """ASGI middleware around the LiteLLM-compatible app that applies :meth:`Faults.rewrite_body` to
    every successful response (the app's own fault middleware cannot change a body)."""

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        skewing = bool(self.faults.skew_aggregated_dates)
        if scope["type"] != "http" or scope["path"] != AGGREGATED_PATH or not skewing:
            await self.app(scope, receive, send)
            return
        params = dict(QueryParams(scope["query_string"]))
        start: Message | None = None
        chunks: list[bytes] = []

        async def hold(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            if start["status"] == 200:
                body = self.faults.rewrite_body(scope["path"], params, body)
            headers = [(name, value) for name, value in start["headers"] if name.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, hold)
