"""The HTTP face of the LiteLLM-compatible server: routes, auth, fault injection, request log, and a
helper that runs it with uvicorn on a loopback port in a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from usage_gateway.devtools.litellm_compat.activity import aggregated_activity, paginated_activity
from usage_gateway.devtools.litellm_compat.auth import (
    Caller,
    activity_user_scope,
    authenticate,
    require_admin,
)
from usage_gateway.devtools.litellm_compat.directory import key_list, user_list
from usage_gateway.devtools.litellm_compat.errors import ApiError, detail_error
from usage_gateway.devtools.litellm_compat.faults import BodyFaults, FaultPlan, Faults
from usage_gateway.devtools.litellm_compat.params import (
    adjust_end_for_timezone,
    parse_activity_query,
    parse_key_list_query,
    parse_user_list_query,
    require_dates,
)
from usage_gateway.devtools.litellm_compat.store import LiteLLMStore, RequestRecord
from usage_gateway.devtools.litellm_compat.tags import tag_activity
from usage_gateway.devtools.litellm_compat.teams import team_list
from usage_gateway.devtools.litellm_compat.view import StoreView
from usage_gateway.devtools.local_services import serving

_log = logging.getLogger(__name__)
_Handler = Callable[[StoreView, Caller, dict[str, str], datetime], bytes | dict[str, Any]]


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


class _Routes:
    def __init__(self, store: LiteLLMStore) -> None:
        self.store = store

    def endpoint(self, handler: _Handler) -> Callable[[Request], Any]:
        async def serve(request: Request) -> Response:
            now = datetime.now(UTC)
            try:
                view = self.store.view()
                caller = authenticate(request.headers, view, self.store.master_key, now)
                body = handler(view, caller, dict(request.query_params), now)
            except ApiError as exc:
                return _json(exc.body, exc.status)
            except Exception as exc:  # LiteLLM answers unexpected failures with its 500 body
                _log.exception("LiteLLM-compatible server failed on %s", request.url.path)
                error = detail_error(500, f"Failed to fetch analytics: {exc}")
                return _json(error.body, error.status)
            if isinstance(body, bytes):
                return Response(body, media_type="application/json")
            return _json(body)

        return serve

    def daily_activity(self, view: StoreView, caller: Caller, params: dict[str, str], now: datetime) -> bytes:
        return self._activity(view, caller, params, now, aggregated=False)

    def daily_activity_aggregated(
        self, view: StoreView, caller: Caller, params: dict[str, str], now: datetime
    ) -> bytes:
        return self._activity(view, caller, params, now, aggregated=True)

    def _activity(
        self, view: StoreView, caller: Caller, params: dict[str, str], now: datetime, *, aggregated: bool
    ) -> bytes:
        query = parse_activity_query(params, aggregated=aggregated)
        if query.start_date is None or query.end_date is None:
            raise detail_error(400, "Please provide start_date and end_date")
        user_id = activity_user_scope(caller, query.user_id)
        start, end = require_dates(query)
        end = adjust_end_for_timezone(query, end, now)
        selection = view.select(start, end, api_key=query.api_key, model=query.model, user_id=user_id)
        if not aggregated:
            return orjson.dumps(paginated_activity(view, selection, query.page, query.page_size))
        cache_key = (
            self.store.values_version,
            start,
            end,
            query.api_key,
            query.model,
            user_id,
            query.api_key_limit,
        )
        body = view.bodies.get(cache_key)
        if body is None:
            body = orjson.dumps(aggregated_activity(view, selection, query.api_key_limit))
            view.remember_body(cache_key, body)
        return body

    def tag_activity(self, view: StoreView, caller: Caller, params: dict[str, str], now: datetime) -> bytes:
        return orjson.dumps(tag_activity(self.store.tag_view(), caller, params, aggregated=False))

    def tag_activity_aggregated(
        self, view: StoreView, caller: Caller, params: dict[str, str], now: datetime
    ) -> bytes:
        return orjson.dumps(tag_activity(self.store.tag_view(), caller, params, aggregated=True))

    def key_list(
        self, view: StoreView, caller: Caller, params: dict[str, str], now: datetime
    ) -> dict[str, Any]:
        scope = None if caller.is_admin else caller.user_id or ""
        return key_list(view, parse_key_list_query(params), scoped_user_id=scope, now=now)

    def team_list(self, view: StoreView, caller: Caller, params: dict[str, str], now: datetime) -> bytes:
        return orjson.dumps(team_list(view, self.store.teams(), caller, params))

    def user_list(
        self, view: StoreView, caller: Caller, params: dict[str, str], now: datetime
    ) -> dict[str, Any]:
        require_admin(caller, "/user/list")
        return user_list(view, parse_user_list_query(params))


class _ServiceMiddleware:
    """Applies the fault plan, records every request in the store's log and grows the live day. Both
    happen before the response is sent, so a client that has its answer sees them done. With faults, it
    also writes each answer's ``Date`` header (by :meth:`Faults.date_header`), which uvicorn then must
    not (``running_litellm`` turns its own off)."""

    def __init__(
        self, app: ASGIApp, store: LiteLLMStore, faults: Faults | None, stopping: threading.Event
    ) -> None:
        self.app = app
        self.store = store
        self.faults = faults
        self.stopping = stopping

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        params = dict(QueryParams(scope["query_string"]))
        if self.faults is not None:
            send = self._dated(send, self.faults)
        plan = self.faults.plan(path, params.get("start_date")) if self.faults else FaultPlan()
        await self._pause(plan.latency_seconds)
        await self._pause(plan.hang_seconds)
        if plan.fail_status is not None:
            self._finish(path, params, plan.fail_status)
            body = {"detail": {"error": "Failed to fetch analytics: injected fault"}}
            await _json(body, plan.fail_status)(scope, receive, send)
            return

        started = False
        held: list[Message] = []

        async def forward(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                self._finish(path, params, message["status"])
            if not plan.malformed:
                await send(message)
                return
            held.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                await self._send_truncated(held, send)

        try:
            await self.app(scope, receive, forward)
        except Exception:
            if not started:
                self._finish(path, params, 500)
            raise

    @staticmethod
    def _dated(send: Send, faults: Faults) -> Send:
        async def dated(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(name, value) for name, value in message["headers"] if name.lower() != b"date"]
                message = {**message, "headers": [*headers, (b"date", faults.date_header())]}
            await send(message)

        return dated

    def _finish(self, path: str, params: dict[str, str], status: int) -> None:
        self.store.log_request(RequestRecord(path=path, params=params, status=status))
        if self.faults is not None:
            self.faults.after_response(self.store, path, params, status)

    async def _pause(self, seconds: float) -> None:
        # Sleeps in slices so that a hanging request ends promptly when the server shuts down: `stopping`
        # is a threading.Event, set from the thread that stops the server, so it cannot be awaited.
        deadline = time.monotonic() + seconds
        while not self.stopping.is_set() and (remaining := deadline - time.monotonic()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(min(remaining, 0.05))

    @staticmethod
    async def _send_truncated(held: list[Message], send: Send) -> None:
        start, *chunks = held
        body = b"".join(chunk.get("body", b"") for chunk in chunks)
        body = body[: max(1, len(body) // 2)]  # a cut JSON document never parses
        headers = [(name, value) for name, value in start["headers"] if name.lower() != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


async def _liveliness(_: Request) -> Response:
    """LiteLLM's unprotected liveness probe (``/health/liveliness``, and ``/health/liveness``)."""
    return _json("I'm alive!")


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _json({"detail": exc.detail}, exc.status_code, dict(exc.headers or {}))


def create_litellm_app(store: LiteLLMStore, faults: Faults | None = None) -> Starlette:
    routes = _Routes(store)
    stopping = threading.Event()
    app = Starlette(
        routes=[
            Route("/user/daily/activity", routes.endpoint(routes.daily_activity), methods=["GET"]),
            Route(
                "/user/daily/activity/aggregated",
                routes.endpoint(routes.daily_activity_aggregated),
                methods=["GET"],
            ),
            Route("/tag/daily/activity", routes.endpoint(routes.tag_activity), methods=["GET"]),
            Route(
                "/tag/daily/activity/aggregated",
                routes.endpoint(routes.tag_activity_aggregated),
                methods=["GET"],
            ),
            Route("/key/list", routes.endpoint(routes.key_list), methods=["GET"]),
            Route("/user/list", routes.endpoint(routes.user_list), methods=["GET"]),
            Route("/team/list", routes.endpoint(routes.team_list), methods=["GET"]),
            Route("/health/liveliness", _liveliness, methods=["GET"]),
            Route("/health/liveness", _liveliness, methods=["GET"]),
        ],
        middleware=[
            Middleware(_ServiceMiddleware, store=store, faults=faults, stopping=stopping),
            *([Middleware(BodyFaults, faults=faults)] if faults is not None else []),
        ],
        exception_handlers={HTTPException: _http_exception},
    )
    app.state.stopping = stopping
    return app


@contextlib.contextmanager
def running_litellm(store: LiteLLMStore, faults: Faults | None = None) -> Iterator[str]:
    """Serve the app on 127.0.0.1 in a background thread; yields the base URL, stops on exit."""
    app = create_litellm_app(store, faults)
    # With faults the app writes the Date header itself (it may be skewed): uvicorn must not add one.
    with serving(app, on_stop=app.state.stopping.set, date_header=faults is None) as url:
        yield url
