"""LiteLLM's usage API over HTTP: every page of a day, merged exactly; retries and timeouts.

``/user/daily/activity`` paginates over raw rows, so one date can be spread over several pages, each
carrying that page's part only, and the page metadata totals are page-local (CONTRACT §2.3). We fetch
every page, then sum each date's metrics and every breakdown entry key by key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
import orjson
import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from datasources.errors import UpstreamRejected, UpstreamUnavailable
from datasources.metrics import DayMetrics

log = structlog.get_logger(__name__)

DAILY_ACTIVITY = "/user/daily/activity"
DAILY_AGGREGATED = "/user/daily/activity/aggregated"
KEY_LIST = "/key/list"
USER_LIST = "/user/list"


class _Transient(Exception):
    """A failure worth retrying: timeout, connection error, 5xx, or a body that is not valid JSON."""


@dataclass(frozen=True)
class KeyMetadata:
    key_alias: str | None
    team_id: str | None
    user_id: str | None
    user_email: str | None
    key_exists: bool | None


@dataclass
class BreakdownEntry:
    """One breakdown bucket (a model, a provider, a user…) with its per-key split."""

    metrics: DayMetrics = field(default_factory=DayMetrics)
    by_key: dict[str, DayMetrics] = field(default_factory=dict)


@dataclass
class DayActivity:
    """One UTC day as LiteLLM reports it, merged over every page."""

    date: date
    metrics: DayMetrics = field(default_factory=DayMetrics)
    models: dict[str, BreakdownEntry] = field(default_factory=dict)
    providers: dict[str, BreakdownEntry] = field(default_factory=dict)
    entities: dict[str, BreakdownEntry] = field(default_factory=dict)
    api_keys: dict[str, DayMetrics] = field(default_factory=dict)
    key_metadata: dict[str, KeyMetadata] = field(default_factory=dict)

    def merge_page(self, day: Mapping[str, Any]) -> None:
        self.metrics += DayMetrics.from_litellm(day["metrics"])
        breakdown = day["breakdown"]
        for name, target in (
            ("models", self.models),
            ("providers", self.providers),
            ("entities", self.entities),
        ):
            for bucket, entry in breakdown[name].items():
                merged = target.setdefault(bucket, BreakdownEntry())
                merged.metrics += DayMetrics.from_litellm(entry["metrics"])
                for key, key_entry in entry["api_key_breakdown"].items():
                    merged.by_key[key] = merged.by_key.get(key, DayMetrics()) + DayMetrics.from_litellm(
                        key_entry["metrics"]
                    )
        for key, entry in breakdown["api_keys"].items():
            self.api_keys[key] = self.api_keys.get(key, DayMetrics()) + DayMetrics.from_litellm(
                entry["metrics"]
            )
            meta = entry["metadata"]
            self.key_metadata[key] = KeyMetadata(
                key_alias=meta.get("key_alias"),
                team_id=meta.get("team_id"),
                user_id=meta.get("user_id"),
                user_email=meta.get("user_email"),
                key_exists=meta.get("key_exists"),
            )


@dataclass(frozen=True)
class DayQuery:
    """Filters LiteLLM applies server-side; ``model`` matches the row's model column exactly."""

    model: str | None = None
    user_id: str | None = None

    def params(self) -> dict[str, str]:
        params = {}
        if self.model is not None:
            params["model"] = self.model
        if self.user_id is not None:
            params["user_id"] = self.user_id
        return params


class LiteLLMClient:
    """Async client for the parts of LiteLLM's management API the gateway reads.

    ``concurrency`` bounds the requests in flight to LiteLLM from this client, whatever asks for them.
    """

    def __init__(
        self,
        base_url: str,
        master_key: str,
        *,
        timeout_seconds: float = 30.0,
        retries: int = 4,
        concurrency: int = 8,
        page_size: int = 1000,
        backoff_seconds: float = 0.2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {master_key}"},
            timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 5.0)),
            limits=httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency),
            transport=transport,
        )
        self._slots = asyncio.Semaphore(concurrency)
        self._attempts = retries + 1
        self._backoff = backoff_seconds
        self.page_size = page_size

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> LiteLLMClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def get_json(self, path: str, params: Mapping[str, str]) -> Any:
        """GET with retries on timeouts, connection errors, 5xx and broken JSON; never on 4xx."""
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self._attempts),
                wait=wait_random_exponential(multiplier=self._backoff, max=5.0),
                retry=retry_if_exception_type(_Transient),
                reraise=True,
            ):
                with attempt:
                    return await self._get_once(path, params)
        except _Transient as exc:
            raise UpstreamUnavailable(
                f"LiteLLM {path} failed after {self._attempts} attempts: {exc}"
            ) from None
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    async def _get_once(self, path: str, params: Mapping[str, str]) -> Any:
        async with self._slots:
            try:
                response = await self._http.get(path, params=params)
            except httpx.TimeoutException:
                log.warning("litellm.timeout", path=path)
                raise _Transient("timed out") from None
            except httpx.TransportError as exc:
                log.warning("litellm.connection_error", path=path, error=type(exc).__name__)
                raise _Transient(f"connection error ({type(exc).__name__})") from None
        if response.status_code >= 500:
            log.warning("litellm.server_error", path=path, status=response.status_code)
            raise _Transient(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            raise UpstreamRejected(
                f"LiteLLM {path} answered HTTP {response.status_code}: {_error_detail(response)}",
                response.status_code,
            )
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            log.warning("litellm.malformed_json", path=path, bytes=len(response.content))
            raise _Transient("malformed JSON") from None

    async def daily_activity(
        self, start: date, end: date, query: DayQuery = DayQuery()
    ) -> dict[date, DayActivity]:
        """Every page of ``/user/daily/activity`` for the range, merged by date."""
        base = {
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            **query.params(),
            "page_size": str(self.page_size),
        }
        first = await self.get_json(DAILY_ACTIVITY, {**base, "page": "1"})
        total_pages = _total_pages(first)
        rest = await asyncio.gather(
            *(
                self.get_json(DAILY_ACTIVITY, {**base, "page": str(page)})
                for page in range(2, total_pages + 1)
            )
        )
        days: dict[date, DayActivity] = {}
        for body in (first, *rest):
            _merge_body(days, body)
        return days

    async def day(self, day: date, query: DayQuery = DayQuery()) -> DayActivity:
        return (await self.daily_activity(day, day, query)).get(day, DayActivity(day))

    async def aggregated_totals(self, start: date, end: date) -> dict[date, DayMetrics]:
        """Per-day totals from ``/aggregated`` (one SQL GROUP BY on LiteLLM's side: never page-split)."""
        body = await self.get_json(
            DAILY_AGGREGATED,
            {"start_date": start.isoformat(), "end_date": end.isoformat(), "api_key_limit": "1"},
        )
        try:
            return {
                date.fromisoformat(d["date"]): DayMetrics.from_litellm(d["metrics"]) for d in body["results"]
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise UpstreamUnavailable(
                f"LiteLLM {DAILY_AGGREGATED} returned an unexpected body ({exc!r})"
            ) from None

    async def list_keys(self) -> list[dict[str, Any]]:
        """Every key LiteLLM has, as full objects (``/key/list?return_full_object=true``, all pages)."""
        return await self._all_pages(KEY_LIST, "keys", {"return_full_object": "true", "size": "100"}, "page")

    async def list_deleted_keys(self) -> list[dict[str, Any]]:
        return await self._all_pages(
            KEY_LIST, "keys", {"return_full_object": "true", "size": "100", "status": "deleted"}, "page"
        )

    async def list_users(self) -> list[dict[str, Any]]:
        return await self._all_pages(USER_LIST, "users", {"page_size": "100"}, "page")

    async def _all_pages(
        self, path: str, items: str, params: dict[str, str], page_param: str
    ) -> list[dict[str, Any]]:
        first = await self.get_json(path, {**params, page_param: "1"})
        try:
            pages = int(first["total_pages"])
            rest = await asyncio.gather(
                *(self.get_json(path, {**params, page_param: str(p)}) for p in range(2, pages + 1))
            )
            return [item for body in (first, *rest) for item in body[items]]
        except (KeyError, TypeError, ValueError) as exc:
            raise UpstreamUnavailable(f"LiteLLM {path} returned an unexpected body ({exc!r})") from None


def _total_pages(body: Any) -> int:
    try:
        pages = int(body["metadata"]["total_pages"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UpstreamUnavailable(f"LiteLLM {DAILY_ACTIVITY} returned an unexpected body ({exc!r})") from None
    return max(pages, 1)


def _merge_body(days: dict[date, DayActivity], body: Any) -> None:
    try:
        for day in body["results"]:
            when = date.fromisoformat(day["date"])
            days.setdefault(when, DayActivity(when)).merge_page(day)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UpstreamUnavailable(f"LiteLLM {DAILY_ACTIVITY} returned an unexpected body ({exc!r})") from None


def _error_detail(response: httpx.Response) -> str:
    try:
        detail = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:200]
    return orjson.dumps(detail).decode()[:300]
