"""The request-id middleware on its own: every response carries the id, an unhandled error's 500 too, and
the id is bound for the log lines of that request only."""

from __future__ import annotations

import httpx
import pytest
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.api_client import SECRET
from usage_gateway.server.app import create_app
from usage_gateway.server.config import Settings
from usage_gateway.server.request_id import RequestIdMiddleware, request_id_from

log = structlog.get_logger("tests.request_id")


def test_a_sane_id_is_kept_and_anything_else_replaced() -> None:
    assert request_id_from("abc-123_x.y:z") == "abc-123_x.y:z"
    for insane in (None, "", "a b", "x" * 129, "é", "id\n"):
        fresh = request_id_from(insane)
        assert len(fresh) == 32
        assert int(fresh, 16) >= 0
    assert request_id_from(None) != request_id_from(None)


async def _logs(request: Request) -> Response:
    log.info("inside", state_id=request.state.request_id)
    return PlainTextResponse("ok")


async def _fails(_: Request) -> Response:
    raise RuntimeError("boom")


def _app() -> RequestIdMiddleware:
    return RequestIdMiddleware(Starlette(routes=[Route("/logs", _logs), Route("/fails", _fails)]))


async def test_the_id_is_bound_for_the_request_and_unbound_after() -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://g") as client:
        with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            response = await client.get("/logs", headers={"X-Request-ID": "given-1"})
            log.info("outside")
    assert response.headers["x-request-id"] == "given-1"
    assert logs[0] == {"event": "inside", "state_id": "given-1", "request_id": "given-1", "log_level": "info"}
    assert "request_id" not in logs[1]


async def test_an_unhandled_error_is_a_500_with_the_id() -> None:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://g") as client:
        with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            response = await client.get("/fails", headers={"X-Request-ID": "given-2"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "given-2"
    assert [(e["event"], e["request_id"], e["error"]) for e in logs] == [
        ("http.unhandled_error", "given-2", "RuntimeError")
    ]


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/healthz", {}),
        ("GET", "/metrics", {}),
        ("GET", "/nowhere", {}),
        ("PUT", "/graphql", {}),
        ("POST", "/graphql", {"Content-Type": "application/json"}),  # 401: no token
        (
            "OPTIONS",
            "/graphql",
            {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
        ),
    ],
)
async def test_every_response_of_the_app_carries_the_id(
    method: str, path: str, headers: dict[str, str]
) -> None:
    settings = Settings(jwt_secret=SECRET, cors_origins="https://app.example.com")
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://g") as client:
        given = await client.request(
            method, path, headers={**headers, "X-Request-ID": "trace-9"}, content=b"{}"
        )
        fresh = await client.request(method, path, headers=headers, content=b"{}")
    assert given.headers.get_list("x-request-id") == ["trace-9"]
    assert len(fresh.headers["x-request-id"]) == 32
