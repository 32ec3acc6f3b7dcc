"""The gateway's ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from schema.schema import build_schema
from server.config import Settings
from server.graphql_view import GraphQLView
from server.health import healthz, readiness
from server.resources import Resources

log = structlog.get_logger("usage_gateway.app")


@dataclass
class _Held:
    resources: Resources | None

    def get(self) -> Resources:
        if self.resources is None:
            raise RuntimeError("the gateway's resources are not open (lifespan not run)")
        return self.resources


def create_app(settings: Settings, *, resources: Resources | None = None) -> Starlette:
    """The Starlette app: ``/graphql``, ``/healthz``, ``/readyz``.

    Its lifespan opens :class:`Resources` from ``settings`` and closes them; ``resources`` given here
    (tests) are used as they are and left open.
    """
    held = _Held(resources)
    if settings.jwt_secret is None:
        log.warning("auth.unconfigured", effect="every request is answered 401; set USAGE_GATEWAY_JWT_SECRET")
    elif len(settings.jwt_secret.get_secret_value().encode()) < 32:
        log.warning("auth.weak_secret", effect="HS256 secrets should have at least 32 bytes")
    schema = build_schema(introspection=settings.introspection or settings.graphiql)
    view = GraphQLView(schema, settings, held.get)

    async def ready(_: Request) -> Response:
        return await readiness(held.resources)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if held.resources is not None:
            yield
            return
        held.resources = await Resources.open(settings)
        try:
            yield
        finally:
            opened, held.resources = held.resources, None
            await opened.close()

    routes = [Route("/graphql", view), Route("/healthz", healthz), Route("/readyz", ready)]
    return Starlette(routes=routes, lifespan=lifespan)
