"""The GraphiQL page: its HTML names only the gateway's own assets (``server.web_assets``).

The page's behaviour lives in ``static/graphiql-page.js``; the HTML carries a JSON start-up block
(endpoint, and for the demo's one-time link the header editor's first value and the address to show), so
the Content-Security-Policy can allow scripts from the gateway alone.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass

from starlette.responses import HTMLResponse

from usage_gateway.server.web_assets import WebAssets

# GraphiQL sets inline styles and its CSS embeds fonts and icons as data: URLs; scripts come only from us.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
    " font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none';"
    " frame-ancestors 'none'"
)


GRAPHIQL_STYLES = ("graphiql.css", "graphiql-explorer.css")
GRAPHIQL_SCRIPTS = ("react.js", "react-dom.js", "graphiql.js", "graphiql-explorer.js", "graphiql-page.js")


@dataclass(frozen=True)
class GraphiQLStart:
    """How the page starts: the header editor's first value and the address the page then shows."""

    headers: str | None = None
    location: str | None = None


def _page(assets: WebAssets, endpoint: str, start: GraphiQLStart) -> str:
    config = {"endpoint": endpoint, "headers": start.headers, "location": start.location}
    # "</" cannot end the JSON block early once escaped; the block is data, never run.
    config_json = json.dumps(config).replace("</", "<\\/")
    styles = "".join(
        f'<link rel="stylesheet" href="{html.escape(assets.url(name))}">' for name in GRAPHIQL_STYLES
    )
    scripts = "".join(f'<script src="{html.escape(assets.url(name))}"></script>' for name in GRAPHIQL_SCRIPTS)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<title>usage-gateway · GraphiQL</title><link rel="icon" href="data:,">'
        f"{styles}<style>body{{margin:0;height:100vh;overflow:hidden}}#graphiql{{height:100vh}}</style>"
        '</head><body><div id="graphiql">Loading…</div>'
        f'<script id="graphiql-config" type="application/json">{config_json}</script>'
        f"{scripts}</body></html>"
    )


def graphiql_response(assets: WebAssets, start: GraphiQLStart | None = None) -> HTMLResponse:
    page = _page(assets, "/graphql", start or GraphiQLStart())
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    if start is not None and start.headers is not None:
        headers["Cache-Control"] = "no-store"  # it holds a token
    return HTMLResponse(page, headers=headers)
