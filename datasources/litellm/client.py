"""LiteLLM's usage API over HTTP: every page of a range, merged exactly; retries and timeouts.

``/user/daily/activity`` paginates over raw rows, so one date can be spread over several pages, each
carrying that page's part only, and the page metadata totals are page-local (CONTRACT §2.3). We fetch
every page and sum each date's breakdown entries key by key, indexed by key: the split of a key's day
(``day_split``) reads one key at a time. A 1000-row page is megabytes of JSON, so merging is kept cheap:
metrics stay as sent until something reads them.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal, TypeVar

import httpx
import msgspec
import orjson
import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from usage_gateway.datasources.litellm.day_metrics import DayMetrics
from usage_gateway.datasources.litellm.wire import ActivityPage, KeyMetadata, SentDay, SentMetrics, decoder
from usage_gateway.datasources.metrics import litellm_done, litellm_error
from usage_gateway.errors import UpstreamRejected, UpstreamUnavailable

log = structlog.get_logger(__name__)
T = TypeVar("T")

DAILY_ACTIVITY = "/user/daily/activity"
DAILY_AGGREGATED = "/user/daily/activity/aggregated"
KEY_LIST = "/key/list"
USER_LIST = "/user/list"
TEAM_LIST = "/team/list"


class _Transient(Exception):
    """A failure worth retrying: timeout, connection error, 5xx, or a body that is not valid JSON."""


Rollup = Literal["user", "model", "provider"]  # the three ways a key's day is rolled up
SideCell = tuple[str, str, str]  # (breakdown name, bucket, api key bucket)
# One page's metrics as LiteLLM sent them (spend still a float), or the exact sum of several pages'.
# Most are never read, so they become DayMetrics only when read (see _exact).
_Sent = SentMetrics | DayMetrics


def _exact(sent: _Sent) -> DayMetrics:
    """As DayMetrics.from_litellm: spend is the Decimal of the float LiteLLM sent, never a float sum."""
    if isinstance(sent, DayMetrics):
        return sent
    return DayMetrics(
        Decimal(repr(sent.spend)),
        sent.prompt_tokens,
        sent.completion_tokens,
        sent.cache_read_input_tokens,
        sent.cache_creation_input_tokens,
        sent.total_tokens,
        sent.api_requests,
        sent.successful_requests,
        sent.failed_requests,
        sent.total_response_time_ms,
        sent.timed_requests,
    )


def _merged(held: _Sent | None, sent: SentMetrics) -> _Sent:
    return sent if held is None else _exact(held) + _exact(sent)


class KeyActivity:
    """One api key's day, merged over every page: its total, and its split by LiteLLM user (entity), by
    model and by provider — three separate roll-ups of the same rows, never crossed (CONTRACT §2.6)."""

    __slots__ = ("models", "providers", "sent_total", "users")  # a batch holds hundreds of thousands

    def __init__(self) -> None:
        self.sent_total: _Sent | None = None
        self.users: dict[str, _Sent] = {}
        self.models: dict[str, _Sent] = {}
        self.providers: dict[str, _Sent] = {}

    def sent(self, rollup: Rollup) -> dict[str, _Sent]:
        """The key's buckets in one roll-up, metrics as sent: read them with :meth:`split`."""
        if rollup == "user":
            return self.users
        return self.models if rollup == "model" else self.providers

    @property
    def total(self) -> DayMetrics:
        return DayMetrics() if self.sent_total is None else _exact(self.sent_total)

    def split(self, rollup: Rollup) -> list[tuple[str, DayMetrics]]:
        """The key's metrics per bucket of one roll-up."""
        return [(bucket, _exact(sent)) for bucket, sent in self.sent(rollup).items()]


@dataclass
class DayActivity:
    """One UTC day as LiteLLM reports it, merged over every page, by api key bucket."""

    date: date
    keys: dict[str, KeyActivity] = field(default_factory=dict)
    key_metadata: dict[str, KeyMetadata] = field(default_factory=dict)
    # Model groups, endpoints and MCP tools per key bucket: independent roll-ups of the same rows.
    side: dict[SideCell, _Sent] = field(default_factory=dict)

    def side_cells(self) -> list[tuple[SideCell, DayMetrics]]:
        return [(cell, _exact(sent)) for cell, sent in self.side.items()]

    def merge_page(self, day: SentDay) -> None:
        breakdown = day.breakdown
        keys = self.keys
        side = self.side
        for side_name, side_rollup in (
            ("model_groups", breakdown.model_groups),
            ("endpoints", breakdown.endpoints),
            ("mcp_servers", breakdown.mcp_servers),
        ):
            for bucket, entry in side_rollup.items():
                for key, key_entry in entry.api_key_breakdown.items():
                    cell = (side_name, bucket, key)
                    sent = side.get(cell)
                    side[cell] = key_entry.metrics if sent is None else _merged(sent, key_entry.metrics)
        for rollups, rollup in (
            (breakdown.entities, "users"),
            (breakdown.models, "models"),
            (breakdown.providers, "providers"),
        ):
            for bucket, entry in rollups.items():
                for key, key_entry in entry.api_key_breakdown.items():
                    activity = keys.get(key)
                    if activity is None:
                        activity = keys[key] = KeyActivity()
                    buckets: dict[str, _Sent] = getattr(activity, rollup)
                    held = buckets.get(bucket)
                    buckets[bucket] = key_entry.metrics if held is None else _merged(held, key_entry.metrics)
        metadata = self.key_metadata
        for key, total in breakdown.api_keys.items():
            activity = keys.get(key)
            if activity is None:
                activity = keys[key] = KeyActivity()
            held = activity.sent_total
            activity.sent_total = total.metrics if held is None else _merged(held, total.metrics)
            metadata[key] = total.metadata


@dataclass(frozen=True)
class AggregatedDay:
    """One date of ``/aggregated``: its complete totals, and every model bucket that has rows on it."""

    metrics: DayMetrics
    models: dict[str, DayMetrics]


@dataclass(frozen=True)
class DayQuery:
    """Filters LiteLLM applies server-side; ``model`` matches the row's model column exactly, ``api_key``
    takes a key bucket as LiteLLM names it in its answers."""

    model: str | None = None
    user_id: str | None = None
    api_key: str | None = None

    def params(self) -> dict[str, str]:
        params = {}
        if self.model is not None:
            params["model"] = self.model
        if self.user_id is not None:
            params["user_id"] = self.user_id
        if self.api_key is not None:
            params["api_key"] = self.api_key
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
        self.concurrency = concurrency
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
        return await self._get(path, params, functools.partial(_decode_json, path))

    async def activity_page(self, params: Mapping[str, str]) -> ActivityPage:
        """One page of ``/user/daily/activity``, decoded straight into the structs the split reads."""
        return await self._get(DAILY_ACTIVITY, params, _decode_page)

    async def _get(self, path: str, params: Mapping[str, str], decode: Callable[[bytes], T]) -> T:
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self._attempts),
                wait=wait_random_exponential(multiplier=self._backoff, max=5.0),
                retry=retry_if_exception_type(_Transient),
                reraise=True,
            ):
                with attempt:
                    return decode(await self._get_once(path, params))
        except _Transient as exc:
            raise UpstreamUnavailable(
                f"LiteLLM {path} failed after {self._attempts} attempts: {exc}"
            ) from None
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    async def _get_once(self, path: str, params: Mapping[str, str]) -> bytes:
        async with self._slots:
            started = time.perf_counter()
            try:
                response = await self._http.get(path, params=params)
            except httpx.TimeoutException:
                litellm_done(path, started, "timeout")
                log.warning("litellm.timeout", path=path)
                raise _Transient("timed out") from None
            except httpx.TransportError as exc:
                litellm_done(path, started, "connection")
                log.warning("litellm.connection_error", path=path, error=type(exc).__name__)
                raise _Transient(f"connection error ({type(exc).__name__})") from None
            litellm_done(path, started)
        if response.status_code >= 500:
            litellm_error(path, "http_5xx")
            log.warning("litellm.server_error", path=path, status=response.status_code)
            raise _Transient(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            litellm_error(path, "http_4xx")
            raise UpstreamRejected(
                f"LiteLLM {path} answered HTTP {response.status_code}: {_error_detail(response)}",
                response.status_code,
            )
        return response.content

    async def daily_activity(
        self, start: date, end: date, query: DayQuery = DayQuery()
    ) -> dict[date, DayActivity]:
        """Every page of ``/user/daily/activity`` for the range, merged by date.

        Page 1 tells how many pages there are; the rest go at once (the semaphore bounds them). Each page
        is merged as it arrives, so a query holds its merged days, not every page's JSON.
        """
        base = {
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            **query.params(),
            "page_size": str(self.page_size),
        }
        days: dict[date, DayActivity] = {}
        first = await self.activity_page({**base, "page": "1"})
        total_pages = max(first.metadata.total_pages, 1)
        _merge_page(days, first)
        del first

        async def page(number: int) -> None:
            _merge_page(days, await self.activity_page({**base, "page": str(number)}))

        await gather_all(page(number) for number in range(2, total_pages + 1))
        return days

    async def each_row(self, day: date, query: DayQuery) -> list[DayActivity]:
        """Every row the query selects on ``day``, each alone: pages of one row, so a row's key, user,
        model and provider are crossed by construction. A request per row: the split's last resort."""
        when = day.isoformat()
        base = {"start_date": when, "end_date": when, **query.params(), "page_size": "1"}
        first = await self.activity_page({**base, "page": "1"})
        others = await gather_all(
            self.activity_page({**base, "page": str(page)})
            for page in range(2, max(first.metadata.total_pages, 1) + 1)
        )
        return [found for body in (first, *others) for found in _merged_days(body)]

    async def aggregated_days(self, start: date, end: date) -> dict[date, AggregatedDay]:
        """Per date, the complete totals and model buckets, from ``/aggregated`` (CONTRACT §3).

        One SQL GROUPING SETS query on LiteLLM's side: never page-split, so each date's totals and its list
        of models are complete; only per-key lists are truncated (to one key here: we never read them).
        """
        body = await self.get_json(
            DAILY_AGGREGATED,
            {"start_date": start.isoformat(), "end_date": end.isoformat(), "api_key_limit": "1"},
        )
        try:
            return {
                date.fromisoformat(d["date"]): AggregatedDay(
                    DayMetrics.from_litellm(d["metrics"]),
                    {
                        model: DayMetrics.from_litellm(entry["metrics"])
                        for model, entry in d["breakdown"]["models"].items()
                    },
                )
                for d in body["results"]
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

    async def list_teams(self) -> list[dict[str, Any]]:
        """Every team LiteLLM has (``/team/list``: one JSON array, not paged)."""
        body = await self.get_json(TEAM_LIST, {})
        if not isinstance(body, list) or not all(isinstance(team, dict) for team in body):
            raise UpstreamUnavailable(
                f"LiteLLM {TEAM_LIST} returned an unexpected body (not a list of teams)"
            )
        return body

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


async def gather_all(work: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """``asyncio.gather`` that cancels the rest on the first failure and raises that failure itself.

    A failed request dooms its whole batch, so the batch's other requests should stop taking LiteLLM's
    time (and the semaphore's slots) at once rather than finish for nothing.
    """
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(coroutine) for coroutine in work]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


def _decode_json(path: str, content: bytes) -> Any:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        litellm_error(path, "malformed")
        log.warning("litellm.malformed_json", path=path, bytes=len(content))
        raise _Transient("malformed JSON") from None


def _decode_page(content: bytes) -> ActivityPage:
    try:
        return decoder.decode(content)
    except msgspec.ValidationError as exc:
        raise UpstreamUnavailable(f"LiteLLM {DAILY_ACTIVITY} returned an unexpected body ({exc})") from None
    except msgspec.DecodeError:
        litellm_error(DAILY_ACTIVITY, "malformed")
        log.warning("litellm.malformed_json", path=DAILY_ACTIVITY, bytes=len(content))
        raise _Transient("malformed JSON") from None


def _merged_days(page: ActivityPage) -> Iterable[DayActivity]:
    """One page's days, each merged on its own."""
    days: dict[date, DayActivity] = {}
    _merge_page(days, page)
    return days.values()


def _merge_page(days: dict[date, DayActivity], page: ActivityPage) -> None:
    for day in page.results:
        try:
            when = date.fromisoformat(day.date)
        except ValueError as exc:
            raise UpstreamUnavailable(
                f"LiteLLM {DAILY_ACTIVITY} returned an unexpected body ({exc!r})"
            ) from None
        found = days.get(when)
        if found is None:
            found = days[when] = DayActivity(when)
        found.merge_page(day)


def _error_detail(response: httpx.Response) -> str:
    try:
        detail = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:200]
    return orjson.dumps(detail).decode()[:300]
