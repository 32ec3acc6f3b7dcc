"""Headless Chromium for the page tests: Debian's ``chromium`` driven by Playwright (no browser download).

Every page runs with every origin but loopback unresolvable (``--host-resolver-rules``) and with each
request the page makes recorded, so a test can show that a page needs nothing beyond the gateway.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Route, sync_playwright

from tests.api_client import SECRET
from usage_gateway.devtools.local_services import serving
from usage_gateway.server.app import create_app
from usage_gateway.server.config import Settings
from usage_gateway.server.tokens import issue_token

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Flags for a root user on a machine with no network beyond loopback (see Chromium's own list of
# switches): no sandbox, no GPU, and none of Chromium's own calls home.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


@contextmanager
def launched_chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed: `make test` installs it (apt-get install chromium)")
    playwright: Playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageLog:
    """What a page asked for and said: requests to the allowed origins, requests refused, console errors."""

    allowed_origins: tuple[str, ...]
    requests: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.route("**/*", self._route)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))

    def _route(self, route: Route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme == "data" or f"{parts.scheme}://{parts.netloc}" in self.allowed_origins:
            self.requests.append(url)
            route.continue_()
        else:
            self.refused.append(url)
            route.abort("addressunreachable")

    def errors_but_unauthenticated(self) -> list[str]:
        """Console errors other than a 401 (what a page without a token yet gets for its schema request)."""
        return [error for error in self.errors if "status of 401" not in error]

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)


@contextmanager
def served_gateway(database_url: str, redis_url: str | None = None, **overrides: Any) -> Iterator[str]:
    """The gateway on a real port (its lifespan opens its own resources); yields its base URL."""
    settings = Settings(
        **{
            "database_url": database_url,
            "redis_url": redis_url,
            "jwt_secret": SECRET,
            "answer_cache_ttl_seconds": 0,
            **overrides,
        }
    )
    with serving(create_app(settings), lifespan="on") as url:
        yield url


def admin_token() -> str:
    return issue_token(SECRET, "admin", ["admin"])
