"""The gateway's ASGI application."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from usage_gateway.datasources.exports.records import fail_abandoned_exports, finish_background
from usage_gateway.resolvers.limits import Limits
from usage_gateway.schema.schema import build_schema
from usage_gateway.server.admission import Admission
from usage_gateway.server.config import Settings
from usage_gateway.server.dashboard import dashboard_route
from usage_gateway.server.downloads import download_route, expire_exports_periodically, link_signer
from usage_gateway.server.graphql_view import GraphQLView
from usage_gateway.server.health import healthz, readiness
from usage_gateway.server.metrics import metrics_route, multiproc_dir
from usage_gateway.server.pool_metrics import pools_published
from usage_gateway.server.request_id import RequestIdMiddleware
from usage_gateway.server.resources import Resources
from usage_gateway.server.tracing import instrument as instrument_tracing
from usage_gateway.server.web_assets import WebAssets

log = structlog.get_logger("usage_gateway.app")

EXPORT_CLEANUP_SECONDS = 300.0  # expired export files are removed within this long of their expiry
# On shutdown, after the last request: how long background exports may take to finish before they are
# cancelled and marked FAILED (none is left RUNNING).
EXPORT_SHUTDOWN_GRACE_SECONDS = 10.0

# What a browser front end on an allowed origin may send and read (CORS_ORIGINS).
CORS_ALLOW_HEADERS = ("Authorization", "Content-Type", "X-Request-ID")
CORS_EXPOSE_HEADERS = ("X-Request-ID", "X-Answer-Cache", "Retry-After")


@dataclass
class _Held:
    resources: Resources | None

    def get(self) -> Resources:
        if self.resources is None:
            raise RuntimeError("the gateway's resources are not open (lifespan not run)")
        return self.resources


def limits_from(settings: Settings) -> Limits:
    """The one limits object of every request (``first`` keeps its built-in cap: no setting moves it)."""
    return Limits(
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_query_aliases,
        max_tokens=settings.max_query_tokens,
        max_cost=settings.max_query_cost,
        max_range_days=settings.max_range_days,
    )


def _warn_about_posture(settings: Settings) -> None:
    """One line at start for each protection that the configuration leaves off or weak."""
    if settings.jwt_secret is None and settings.jwt_jwks_url is None:
        log.warning(
            "auth.unconfigured",
            effect="every request is answered 401; set USAGE_GATEWAY_JWT_SECRET or …_JWT_JWKS_URL",
        )
    elif settings.jwt_secret is not None and len(settings.jwt_secret.get_secret_value().encode()) < 32:
        log.warning("auth.weak_secret", effect="HS256 secrets should have at least 32 bytes")
    if settings.rate_limit_cost and not settings.redis_url:
        log.warning("rate_limit.disabled", effect="no per-user cost limit without USAGE_GATEWAY_REDIS_URL")
    if settings.public_url is None:
        log.warning(
            "downloads.no_public_url",
            effect="download links take their host from each request's Host header;"
            " set USAGE_GATEWAY_PUBLIC_URL",
        )
    if settings.graphiql or settings.introspection:
        log.warning("graphql.introspection_on", effect="the schema is visible to every authenticated caller")


def _cors(settings: Settings) -> list[Middleware]:
    """CORS for the origins of ``CORS_ORIGINS`` only (the setting refuses ``*``); none when it is empty.

    Credentials are allowed: the gateway sets no cookies, so they add nothing beyond the bearer token, and
    front ends that fetch with ``credentials: "include"`` still work.
    """
    if not settings.cors_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=("GET", "POST"),
            allow_headers=CORS_ALLOW_HEADERS,
            allow_credentials=True,
            expose_headers=CORS_EXPOSE_HEADERS,
        )
    ]


def create_app(settings: Settings, *, resources: Resources | None = None) -> Starlette:
    """The Starlette app: ``/graphql`` (behind admission control, ``app.state.admission``),
    ``/exports/{id}``, ``/healthz``, ``/readyz``, ``/metrics`` (unless METRICS_ENABLED is false), and with
    DASHBOARD the usage dashboard on ``/`` (its assets, like GraphiQL's, under ``/assets/``).

    Its lifespan opens :class:`Resources` from ``settings`` and closes them; ``resources`` given here
    (tests) are used as they are and left open.
    """
    held = _Held(resources)
    _warn_about_posture(settings)
    limits = limits_from(settings)
    schema = build_schema(introspection=settings.introspection or settings.graphiql, limits=limits)
    links = link_signer(settings)  # one signer for the view that makes the links and the route that checks
    assets = WebAssets(settings.web_assets_dir) if settings.graphiql or settings.dashboard else None
    graphiql = assets if settings.graphiql else None
    view = GraphQLView(schema, settings, held.get, limits, Admission.from_settings(settings), links, graphiql)

    async def ready(_: Request) -> Response:
        return await readiness(held.resources)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        owned = held.resources is None
        if owned:
            held.resources = await Resources.open(settings)
        await fail_abandoned_exports(held.get().db)  # left RUNNING by a process that died
        cleanup = asyncio.create_task(
            expire_exports_periodically(held.get().db, settings.export_dir, EXPORT_CLEANUP_SECONDS),
            name="export-cleanup",
        )
        try:
            async with pools_published(held.get(), multiproc_dir()):
                yield
        finally:
            await finish_background(EXPORT_SHUTDOWN_GRACE_SECONDS)
            cleanup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await cleanup
            if owned:
                opened, held.resources = held.get(), None
                await opened.close()

    routes = [
        Route("/graphql", view),
        download_route(settings, held.get, links=links),
        Route("/healthz", healthz),
        Route("/readyz", ready),
        *([metrics_route(settings, lambda: held.resources)] if settings.metrics_enabled else []),
        *([assets.route()] if assets is not None else []),
        *([dashboard_route(assets)] if assets is not None and settings.dashboard else []),
    ]
    # The request id first: every response carries it, CORS preflights and refusals too.
    middleware = [Middleware(RequestIdMiddleware), *_cors(settings)]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    instrument_tracing(app)  # only when OTEL_EXPORTER_OTLP_ENDPOINT asks for it
    app.state.admission = view.admission
    return app
