"""A request id for every HTTP request: the caller's ``X-Request-ID`` when it is sane, else a new one.

It is returned as ``X-Request-ID`` on every response and bound in structlog's context variables for the
whole request, so every log line written while it runs carries it as ``request_id``, the data layer's
too (and those of tasks the request starts, which copy the context). A pure ASGI middleware rather than
Starlette's ``BaseHTTPMiddleware``, which runs the app in another task and buffers streamed bodies.
"""

from __future__ import annotations

import re
import uuid

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("usage_gateway.http")

HEADER = "X-Request-ID"
_HEADER_KEY = HEADER.lower().encode()
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_from(given: str | None) -> str:
    """``given`` when it is 1 to 128 characters of ``A-Za-z0-9._:-``, else a new random id."""
    return given if given is not None and _SANE.fullmatch(given) else uuid.uuid4().hex


def _given(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == _HEADER_KEY:
            return str(value.decode("latin-1"))
    return None


class RequestIdMiddleware:
    """Puts the request id in ``request.state.request_id``, the log context and the response headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_from(_given(scope))
        scope.setdefault("state", {})["request_id"] = rid
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[HEADER] = rid
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(request_id=rid)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            log.error("http.unhandled_error", path=scope["path"], error=type(exc).__name__)
            if not started:  # Starlette's own 500 would not pass through here: answer it with the id
                await send_with_id(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                    }
                )
                await send({"type": "http.response.body", "body": b"Internal Server Error"})
            raise
        finally:
            structlog.contextvars.reset_contextvars(**tokens)
