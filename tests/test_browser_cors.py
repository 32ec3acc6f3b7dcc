"""CORS in headless Chromium: a front end on another origin calls the gateway as a browser really does,
preflight included (``tests/test_cors.py`` checks the headers themselves)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.browser import admin_token, launched_chromium, served_gateway
from usage_gateway.devtools.local_services import serving

# Runs in the front end's page: a POST with a bearer token and JSON, which needs a preflight.
CALL_THE_GATEWAY = """async ([url, token]) => {
  try {
    const response = await fetch(url + "/graphql", {
      method: "POST",
      headers: {"Authorization": "Bearer " + token, "Content-Type": "application/json"},
      body: JSON.stringify({query: "{ viewer { id roles } }"}),
    });
    return {status: response.status, body: await response.json(),
            requestId: response.headers.get("X-Request-ID")};
  } catch (error) {
    return {refused: String(error)};
  }
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def front_end() -> Iterator[str]:
    """A page on its own origin (another port), as a separately hosted front end is."""

    async def page(_: Any) -> HTMLResponse:
        return HTMLResponse("<!doctype html><title>front end</title><p>front end</p>")

    with serving(Starlette(routes=[Route("/", page)])) as url:
        yield url


def call_from(browser: Browser, front_end: str, gateway: str) -> dict[str, Any]:
    page: Page = browser.new_page()
    try:
        page.goto(front_end + "/")
        result: dict[str, Any] = page.evaluate(CALL_THE_GATEWAY, [gateway, admin_token()])
        return result
    finally:
        page.close()


def test_a_listed_origin_calls_the_gateway_from_the_browser(
    browser: Browser, front_end: str, database_url: str
) -> None:
    with served_gateway(database_url, cors_origins=front_end) as gateway:
        assert front_end != gateway
        result = call_from(browser, front_end, gateway)
    assert result.get("refused") is None, result
    assert result["status"] == 200
    assert result["body"]["data"] == {"viewer": {"id": "admin", "roles": ["ADMIN"]}}
    assert result["requestId"]  # an exposed header the page can read


def test_an_unlisted_origin_is_stopped_by_the_browser(
    browser: Browser, front_end: str, database_url: str
) -> None:
    with served_gateway(database_url, cors_origins="https://app.example.com") as gateway:
        listed_elsewhere = call_from(browser, front_end, gateway)
    with served_gateway(database_url) as gateway:
        cors_off = call_from(browser, front_end, gateway)
    for result in (listed_elsewhere, cors_off):
        assert "Failed to fetch" in result["refused"], result
