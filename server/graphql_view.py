"""``/graphql``: POST JSON only (GraphiQL on GET when enabled), authenticated before GraphQL runs,
answered with orjson."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import orjson
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL

from datasources.errors import Unauthenticated
from resolvers.context import Context, Limits
from resolvers.loaders import Loaders
from schema.errors import GatewaySchema
from server.auth import authenticate
from server.config import Settings
from server.resources import Resources
from server.responses import error_response

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id(request: Request) -> str:
    """The caller's ``X-Request-ID`` when it is sane, else a new one."""
    given = request.headers.get("x-request-id", "")
    return given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


class GraphQLView(GraphQL[Context, None]):
    def __init__(self, schema: GatewaySchema, settings: Settings, resources: Callable[[], Resources]) -> None:
        super().__init__(
            schema, graphql_ide="graphiql" if settings.graphiql else None, allow_queries_via_get=False
        )
        self._settings = settings
        self._resources = resources
        self._limits = Limits(max_range_days=settings.max_range_days)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
            return
        response = await self._respond(Request(scope, receive))
        await response(scope, receive, send)

    def _wants_ide(self, request: Request) -> bool:
        accept = request.headers.get("accept", "")
        return self.graphql_ide is not None and "query" not in request.query_params and "text/html" in accept

    async def _respond(self, request: Request) -> Response:
        if request.method == "GET" and self._wants_ide(request):
            return await self.render_graphql_ide(request)
        if request.method != "POST":
            return PlainTextResponse("GraphQL is served on POST", status_code=405, headers={"Allow": "POST"})
        rid = request_id(request)
        try:
            viewer = await authenticate(request, self._settings)
        except Unauthenticated as exc:
            return error_response(
                401, exc.code, exc.message, {"WWW-Authenticate": "Bearer", "X-Request-ID": rid}
            )
        resources = self._resources()
        context = Context(
            db=resources.db,
            days=resources.days,
            viewer=viewer,
            loaders=Loaders.build(resources.db),
            request_id=rid,
            limits=self._limits,
        )
        try:
            response = await self.run(request, context=context)
        except HTTPException as exc:
            response = PlainTextResponse(exc.reason, status_code=exc.status_code)
        response.headers["X-Request-ID"] = rid
        return response
