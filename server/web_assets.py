"""Browser assets the gateway serves itself, so its pages need no other origin.

The files come from npm packages pinned in ``web/package.json`` and its lockfile, installed by
``make setup`` (``npm ci``) into ``web/node_modules``. Only the files named in :data:`ASSETS` are served,
under ``/assets/<name>?v=<digest>``: the digest in the link lets browsers keep them for a year.
``python -m usage_gateway.server.web_assets DEST`` copies just those files (the image does this).
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

# The dashboard's own scripts (server/static/dashboard/), in the order its page loads them: plain scripts
# sharing one namespace rather than ES modules, so that every link carries its digest and a warm visit
# asks for no asset at all (modules importing each other by relative URL would need revalidation).
DASHBOARD_SCRIPTS = (
    "format.js", "state.js", "api.js", "filters.js", "cards.js", "trend.js", "tables.js", "actions.js",
    "insights.js", "app.js",
)  # fmt: skip
# Public name → path under node_modules (a third-party file) or under server/static (our own, "static:").
ASSETS: dict[str, str] = {
    "react.js": "react/umd/react.production.min.js",
    "react-dom.js": "react-dom/umd/react-dom.production.min.js",
    "graphiql.js": "graphiql/graphiql.min.js",
    "graphiql.css": "graphiql/graphiql.min.css",
    "graphiql-explorer.js": "@graphiql/plugin-explorer/dist/index.umd.js",
    "graphiql-explorer.css": "@graphiql/plugin-explorer/dist/style.css",
    "graphiql-page.js": "static:graphiql-page.js",
    "chart.js": "chart.js/dist/chart.umd.js",
    **{f"dashboard-{name}": f"static:dashboard/{name}" for name in ("dashboard.css", *DASHBOARD_SCRIPTS)},
}
_OWN_PREFIX = "static:"
_MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
STATIC_DIR = Path(__file__).resolve().parent / "static"
DEFAULT_NODE_MODULES = Path(__file__).resolve().parent.parent / "web" / "node_modules"


class AssetsMissing(RuntimeError):
    """The npm packages are not installed where the gateway looks for them."""


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    media_type: str
    digest: str  # the first 16 hex digits of the content's SHA-256

    @classmethod
    def read(cls, path: Path) -> Asset:
        body = path.read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:16]
        return cls(body, gzip.compress(body, mtime=0), _MEDIA_TYPES[path.suffix], digest)


class WebAssets:
    """The allow-listed files, read once: their links carry the content digest."""

    def __init__(self, node_modules: Path | None = None) -> None:
        root = node_modules or DEFAULT_NODE_MODULES
        missing = [path for path in self._paths(root).values() if not path.is_file()]
        if missing:
            raise AssetsMissing(
                f"the browser assets are not installed (missing {missing[0]}): run `make setup`, which runs"
                " `npm ci` in web/, or point USAGE_GATEWAY_WEB_ASSETS_DIR at a copy"
            )
        self._assets = {name: Asset.read(path) for name, path in self._paths(root).items()}

    @staticmethod
    def _paths(node_modules: Path) -> dict[str, Path]:
        return {
            name: STATIC_DIR / source.removeprefix(_OWN_PREFIX)
            if source.startswith(_OWN_PREFIX)
            else node_modules / source
            for name, source in ASSETS.items()
        }

    def url(self, name: str) -> str:
        return f"/assets/{name}?v={self._assets[name].digest}"

    async def serve(self, request: Request) -> Response:
        asset = self._assets.get(request.path_params["name"])
        if asset is None:
            return PlainTextResponse("Not Found", status_code=404)
        current = request.query_params.get("v") == asset.digest
        cache = "public, max-age=31536000, immutable" if current else "no-cache"
        headers = {"Cache-Control": cache, "X-Content-Type-Options": "nosniff", "Vary": "Accept-Encoding"}
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)

    def route(self) -> Route:
        return Route("/assets/{name}", self.serve, methods=["GET", "HEAD"])


def copy_assets(node_modules: Path, destination: Path) -> None:
    """Copy only the served third-party files, keeping their paths under ``destination``."""
    for source in ASSETS.values():
        if source.startswith(_OWN_PREFIX):
            continue
        target = destination / source
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(node_modules / source, target)


if __name__ == "__main__":
    copy_assets(DEFAULT_NODE_MODULES, Path(sys.argv[1]))
