"""The per-request context every resolver receives (``Info[Context, None]``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal, Protocol

from redis.asyncio import Redis

from usage_gateway.datasources.answer_cache import AnswerCache
from usage_gateway.datasources.daycache.days import DayCache, RangeReport
from usage_gateway.datasources.db import Database
from usage_gateway.datasources.facts.aggregates import FactFilter
from usage_gateway.datasources.insights.budgets import BudgetState, Scope
from usage_gateway.datasources.litellm.client import LiteLLMClient
from usage_gateway.resolvers.download_links import DownloadLinks
from usage_gateway.resolvers.limits import Limits
from usage_gateway.resolvers.loaders import Loaders
from usage_gateway.resolvers.viewer import Viewer


@dataclass(frozen=True)
class UpstreamNotice:
    """Days a request needed that LiteLLM could not deliver; the answer goes out without them."""

    days: tuple[date, ...]
    reason: str


@dataclass(frozen=True)
class AnswerWarning:
    """Something the client should know about an answer that is not an error: ``extensions.warnings``."""

    code: str
    message: str
    days: tuple[date, ...]

    def as_json(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "days": [d.isoformat() for d in self.days]}


UNVERIFIED_DAYS = "UNVERIFIED_DAYS"
UNKNOWN_VIEWER = "UNKNOWN_VIEWER"  # a `user` token whose subject is not in the directory


class RateLimiter(Protocol):
    async def charge(self, subject: str, cost: int) -> int | None:
        """Charge ``cost`` to ``subject``; None if allowed, else the seconds to wait before retrying."""


@dataclass
class Budget:
    """The request's estimated cost (set by the cost limit) and what the rate limit made of it."""

    limiter: RateLimiter | None = None
    cost: int = 0
    retry_after: int | None = None


@dataclass(frozen=True)
class Operations:
    """What the mutations act on beyond the database and the day cache."""

    litellm: LiteLLMClient | None = None
    redis: Redis | None = None  # to invalidate cached answers after a sync
    export_dir: Path = Path("var/exports")
    export_ttl_hours: float = 24
    links: DownloadLinks | None = None  # None: downloadUrl is the bare path (header auth only)


@dataclass
class Context:
    db: Database
    days: DayCache
    viewer: Viewer
    loaders: Loaders
    request_id: str
    limits: Limits = field(default_factory=Limits)
    notices: list[UpstreamNotice] = field(default_factory=list)
    warnings: list[AnswerWarning] = field(default_factory=list)
    operations: Operations = field(default_factory=Operations)
    budget: Budget = field(default_factory=Budget)
    answers: AnswerCache | None = None  # None: this request's answer is neither looked up nor stored
    answer_status: Literal["hit", "miss", "bypass"] = "bypass"
    reports: list[RangeReport] = field(default_factory=list)
    # Filters already checked and scoped in this request (``resolvers.filters.resolve_filter``).
    checked_filters: dict[tuple[object, ...], FactFilter] = field(default_factory=dict)
    # Tag days (/tag/daily/activity): read only by queries that filter or group by a tag.
    tag_days: DayCache | None = None
    # Budgets being judged in this request, by (scope, as-of day, today) (``resolvers.insights.budgets``).
    budget_states: dict[tuple[Scope, date, date], asyncio.Future[list[BudgetState]]] = field(
        default_factory=dict
    )

    def note(self, report: RangeReport) -> None:
        """Remember ``report`` (how fresh the answer is) and tell the client about its missing days (as
        errors: their numbers are left out) and its unverified days (as warnings: their numbers are in
        the answer, but they did not add up to LiteLLM's own totals for the day)."""
        unverified = tuple(sorted(report.unverified))
        if unverified and all(w.days != unverified for w in self.warnings):
            listed = ", ".join(d.isoformat() for d in unverified)
            self.warnings.append(
                AnswerWarning(
                    UNVERIFIED_DAYS,
                    f"{len(unverified)} day(s) did not add up to LiteLLM's totals and may be incomplete:"
                    f" {listed}. They are read again by the next request (or refreshRange).",
                    unverified,
                )
            )
        self.reports.append(report)
        missing = tuple(sorted({*report.missing, *report.failures}))
        if missing and all(notice.days != missing for notice in self.notices):
            reasons = sorted(set(report.failures.values())) or ["not stored and not fetched"]
            self.notices.append(UpstreamNotice(missing, "; ".join(reasons)))
