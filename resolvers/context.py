"""The per-request context every resolver receives (``Info[Context, None]``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from datasources.days import DayCache, RangeReport
from datasources.db import Database
from resolvers.loaders import Loaders
from resolvers.viewer import Viewer

MAX_FIRST = 500


@dataclass(frozen=True)
class Limits:
    max_range_days: int = 400
    max_first: int = MAX_FIRST


@dataclass(frozen=True)
class UpstreamNotice:
    """Days a request needed that LiteLLM could not deliver; the answer goes out without them."""

    days: tuple[date, ...]
    reason: str


@dataclass
class Context:
    db: Database
    days: DayCache
    viewer: Viewer
    loaders: Loaders
    request_id: str
    limits: Limits = field(default_factory=Limits)
    notices: list[UpstreamNotice] = field(default_factory=list)

    def note(self, report: RangeReport) -> None:
        """Remember the days of ``report`` that are missing, to tell the client next to the data."""
        missing = tuple(sorted({*report.missing, *report.failures}))
        if missing and all(notice.days != missing for notice in self.notices):
            reasons = sorted(set(report.failures.values())) or ["not stored and not fetched"]
            self.notices.append(UpstreamNotice(missing, "; ".join(reasons)))
