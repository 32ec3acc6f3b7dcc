"""The admin usage dashboard on ``GET /``: a page built only on the public GraphQL API.

The HTML (``static/dashboard/page.html``) is the page's skeleton; its behaviour lives in the scripts of
``static/dashboard/`` (served by :mod:`~usage_gateway.server.web_assets` with their digests in the links).
A JSON start-up block carries the endpoint and, for the demo's one-time link only, the token to sign in
with: the page moves it to the browser's storage and shows ``/``, so it stays in no address and no log.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from usage_gateway.server.web_assets import DASHBOARD_SCRIPTS, WebAssets

PAGE = Path(__file__).resolve().parent / "static" / "dashboard" / "page.html"
# Scripts and styles from the gateway only; GraphQL (connect-src) and downloads from the gateway too.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self';"
    " base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class DashboardStart:
    """How the page starts: a token to sign in with (the demo's link), and the address it then shows."""

    token: str | None = None
    location: str | None = None


def dashboard_page(assets: WebAssets, start: DashboardStart) -> str:
    config = {"endpoint": "/graphql", "token": start.token, "location": start.location}
    # "</" cannot end the JSON block early once escaped; the block is data, never run.
    config_json = json.dumps(config).replace("</", "<\\/")
    style = f'<link rel="stylesheet" href="{html.escape(assets.url("dashboard-dashboard.css"))}">'
    names = ("chart.js", *(f"dashboard-{name}" for name in DASHBOARD_SCRIPTS))
    scripts = "".join(f'<script defer src="{html.escape(assets.url(name))}"></script>' for name in names)
    return (
        PAGE.read_text(encoding="utf-8")
        .replace("<!--styles-->", style)
        .replace("<!--scripts-->", scripts)
        .replace("<!--config-->", config_json)
    )


def dashboard_response(assets: WebAssets, start: DashboardStart | None = None) -> HTMLResponse:
    start = start or DashboardStart()
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        # The page is small and names its assets by digest: always ask, so a new release is seen at once.
        "Cache-Control": "no-store" if start.token is not None else "no-cache",
    }
    return HTMLResponse(dashboard_page(assets, start), headers=headers)


def dashboard_route(assets: WebAssets) -> Route:
    response = dashboard_response(assets)  # the same bytes for everyone: rendered once

    async def page(_: Request) -> Response:
        return response

    return Route("/", page, methods=["GET", "HEAD"])
