"""``/graphql``: POST JSON only (GraphiQL on GET when enabled), authenticated before GraphQL runs,
answered with orjson as ``application/json`` or ``application/graphql-response+json``.

Before GraphQL sees a request: a body over ``MAX_BODY_BYTES`` is 413; what is not a GraphQL-over-HTTP
request (another method, a body that is not JSON, a batch, ...) is refused as :mod:`server.graphql_http`
says; a missing or invalid token is 401 (503 when the JWKS cannot be fetched). Around it: the operation
runs under ``OPERATION_TIMEOUT_SECONDS`` (past it, ``QUERY_TOO_COMPLEX``), and an operation the rate
limit refused becomes HTTP 429 with ``Retry-After``. ``X-Answer-Cache`` says whether the answer came
from the answer cache (``hit``), was computed after looking (``miss``), or the cache was not consulted
(``bypass``: mutations, ``export`` lookups, requests refused before execution, no answer cache). A hit on
a query text seen before is answered by :mod:`server.cached_answers` without Strawberry; everything else
runs through it, once admission control (:mod:`server.admission`) gives it a slot: a request it sheds is
answered 503 with ``Retry-After`` and code ``OVERLOADED``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext

import orjson
import structlog
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.types import ExecutionResult

from usage_gateway.datasources.hot_tier import HotTier
from usage_gateway.datasources.rate_limit import CostRateLimiter
from usage_gateway.errors import Overloaded, QueryTooComplex, Unauthenticated, UpstreamUnavailable
from usage_gateway.resolvers.context import Budget, Context, Operations, RateLimiter
from usage_gateway.resolvers.download_links import DownloadLinks, LinkSigner
from usage_gateway.resolvers.limits import Limits
from usage_gateway.resolvers.loaders import Loaders
from usage_gateway.resolvers.viewer import Viewer
from usage_gateway.schema.schema import ServedSchema
from usage_gateway.server.admission import Admission
from usage_gateway.server.auth import KeySourceUnavailable, authenticate, challenge
from usage_gateway.server.body_limit import BodyTooLarge, read_body, replay
from usage_gateway.server.cached_answers import CachedAnswers
from usage_gateway.server.config import Settings
from usage_gateway.server.graphiql import graphiql_response
from usage_gateway.server.graphql_http import (
    PARTIAL_SUCCESS,
    MediaType,
    RequestRefused,
    check_content_type,
    from_strawberry,
    graphql_status,
    method_not_allowed,
    negotiate,
    not_acceptable,
    operation,
    unparsable,
)
from usage_gateway.server.metrics import (
    INTERNAL,
    OK,
    REFUSED,
    UNKNOWN,
    RequestMetrics,
    outcome_of,
    outcome_of_errors,
)
from usage_gateway.server.request_id import request_id_from
from usage_gateway.server.resources import Resources
from usage_gateway.server.responses import OrjsonResponse, error_response
from usage_gateway.server.web_assets import WebAssets

log = structlog.get_logger("usage_gateway.graphql")


def request_id(request: Request) -> str:
    """The request's id (:mod:`server.request_id`): the middleware's, else the caller's sane one or new."""
    bound = getattr(request.state, "request_id", None)
    return bound if isinstance(bound, str) else request_id_from(request.headers.get("x-request-id"))


class GraphQLView(GraphQL[Context, None]):
    def __init__(
        self,
        schema: ServedSchema,
        settings: Settings,
        resources: Callable[[], Resources],
        limits: Limits,
        admission: Admission | None = None,
        links: LinkSigner | None = None,
        assets: WebAssets | None = None,
    ) -> None:
        super().__init__(schema, graphql_ide="graphiql" if assets else None, allow_queries_via_get=False)
        self._settings = settings
        self._resources = resources
        self._limits = limits
        self._limiter: tuple[HotTier, CostRateLimiter] | None = None
        self._cached_answers = CachedAnswers(schema)
        self._documents = schema.documents
        self._metrics = RequestMetrics()
        self.admission = admission
        self._links = links
        self._assets = assets

    async def render_graphql_ide(self, request: Request) -> Response:
        assert self._assets is not None  # Strawberry renders the IDE only when graphql_ide is set
        return graphiql_response(self._assets)

    def _slot(self, rid: str) -> AbstractAsyncContextManager[None]:
        """A slot of admission control for running an operation (none to wait for when it is off)."""
        return nullcontext() if self.admission is None else self.admission.slot(rid)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        # Only POST application/json gets here (_respond refuses the rest).
        try:
            payload = orjson.loads(await request.get_body())
        except orjson.JSONDecodeError as exc:
            raise unparsable(exc) from exc
        return operation(payload)

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        response = await super().process_result(request, result)
        if request.state.media_type is MediaType.GRAPHQL_RESPONSE:
            request.state.graphql_status = graphql_status(response)
        request.state.outcome = outcome_of_errors(response.get("errors"))
        return response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
            return
        started = time.perf_counter()
        body: bytes | None = None
        if scope["method"] == "POST":
            try:
                body = await read_body(scope, receive, self._settings.max_body_bytes)
            except BodyTooLarge as exc:
                media_type = negotiate(Request(scope).headers.get("accept")) or MediaType.JSON
                response: Response = error_response(
                    413, QueryTooComplex.code, str(exc), media_type=media_type.content_type
                )
                self._metrics.observe(UNKNOWN, REFUSED, time.perf_counter() - started)
                await response(scope, receive, send)
                return
            receive = replay(body, receive)
        request = Request(scope, receive)
        try:
            response = await self._respond(request, body)
        except Exception:  # answered 500 by the request-id middleware; counted as what it is
            self._metrics.observe(self._operation(body), INTERNAL, time.perf_counter() - started)
            raise
        outcome = getattr(request.state, "outcome", None)
        if outcome is not None:  # None: the GraphiQL page, not an operation
            self._metrics.observe(self._operation(body), outcome, time.perf_counter() - started)
        await response(scope, receive, send)

    def _operation(self, body: bytes | None) -> str:
        """The ``operation`` label of a request (:mod:`server.metrics`): a prepared document's name."""
        try:
            payload = orjson.loads(body) if body is not None else None
        except orjson.JSONDecodeError:
            return UNKNOWN
        if not isinstance(payload, dict):
            return UNKNOWN
        query, name = payload.get("query"), payload.get("operationName")
        if not isinstance(query, str) or not isinstance(name, str | None):
            return UNKNOWN
        prepared = self._documents.get(query, name)
        return self._metrics.operation(prepared is not None, prepared.operation_name if prepared else None)

    def _wants_ide(self, request: Request) -> bool:
        accept = request.headers.get("accept", "")
        return self.graphql_ide is not None and "query" not in request.query_params and "text/html" in accept

    def _rate_limiter(self, redis: HotTier | None) -> CostRateLimiter | None:
        if redis is None or not self._settings.rate_limit_cost:
            return None
        if self._limiter is None or self._limiter[0] is not redis:
            limiter = CostRateLimiter(
                redis,
                budget=self._settings.rate_limit_cost,
                window_seconds=self._settings.rate_limit_window_seconds,
            )
            self._limiter = (redis, limiter)
        return self._limiter[1]

    def _plain_json(self, request: Request) -> bool:
        """Whether the request is one JSON operation answered as one JSON body (not a stream)."""
        content_type = request.headers.get("content-type", "")
        is_json = content_type.split(";", 1)[0].strip().lower() == "application/json"
        return is_json and self._get_stream_transport_from_headers(request.headers) is None

    async def _respond(self, request: Request, body: bytes | None) -> Response:
        if request.method == "GET" and self._wants_ide(request):
            return await self.render_graphql_ide(request)
        rid = request_id(request)
        accept = request.headers.get("accept")
        negotiated = negotiate(accept)
        media_type = negotiated or MediaType.JSON
        request.state.media_type = media_type
        try:
            if request.method != "POST":
                raise method_not_allowed(request.method)
            if negotiated is None:
                raise not_acceptable(accept or "")
            check_content_type(request.headers.get("content-type"))
        except RequestRefused as exc:
            request.state.outcome = REFUSED
            return self._refused(exc, media_type, {"X-Request-ID": rid})
        content_type = media_type.content_type
        try:
            viewer = await authenticate(request, self._settings)
        except KeySourceUnavailable as exc:
            request.state.outcome = UpstreamUnavailable.code
            headers = {"X-Request-ID": rid}
            return error_response(503, UpstreamUnavailable.code, exc.message, headers, content_type)
        except Unauthenticated as exc:
            request.state.outcome = exc.code
            headers = {**challenge(exc), "X-Request-ID": rid}
            return error_response(401, exc.code, exc.message, headers, content_type)
        resources = self._resources()
        limiter: RateLimiter | None = self._rate_limiter(resources.hot)
        context: Context | None = None
        timeout = self._settings.operation_timeout_seconds
        try:
            if body is not None and self._plain_json(request):
                async with asyncio.timeout(timeout):
                    found = await self._cached_answers.answer(body, viewer, limiter, resources.answers)
                if found.body is not None:
                    request.state.outcome = OK
                    self._metrics.answer_cache("hit")
                    headers = {"X-Request-ID": rid, "X-Answer-Cache": "hit"}
                    return Response(found.body, media_type=content_type, headers=headers)
                limiter = found.limiter
            context = self._context(resources, viewer, rid, limiter, self._download_links(request))
            # The operation's time runs from when it has a slot: waiting for one is bounded on its own.
            async with self._slot(rid), asyncio.timeout(timeout):
                response = await self.run(request, context=context)
        except Overloaded as exc:
            request.state.outcome = outcome_of(exc.code)
            headers = {"Retry-After": str(exc.retry_after), "X-Request-ID": rid}
            return error_response(503, exc.code, exc.message, headers, content_type)
        except HTTPException as exc:
            request.state.outcome = REFUSED
            response = self._refused(from_strawberry(exc), media_type, {})
        except TimeoutError:
            request.state.outcome = QueryTooComplex.code
            response = self._timed_out(rid, context.budget.cost if context else 0)
            if media_type is MediaType.GRAPHQL_RESPONSE:
                response.status_code = PARTIAL_SUCCESS  # data (null) and an error: it had started
        else:
            if media_type is MediaType.GRAPHQL_RESPONSE:
                response.status_code = getattr(request.state, "graphql_status", response.status_code)
        response.headers["Content-Type"] = content_type
        if context is not None and context.budget.retry_after is not None:
            response.status_code = 429
            response.headers["Retry-After"] = str(context.budget.retry_after)
        response.headers["X-Request-ID"] = rid
        answered = context.answer_status if context else "bypass"
        response.headers["X-Answer-Cache"] = answered
        self._metrics.answer_cache(answered)
        if not hasattr(request.state, "outcome"):
            request.state.outcome = OK
        return response

    def _download_links(self, request: Request) -> DownloadLinks | None:
        """Links start with PUBLIC_URL when set: the request's own base URL comes from its Host header,
        which a client (or a misconfigured proxy) may set to anything."""
        if self._links is None:
            return None
        base = self._settings.public_url or str(request.base_url).rstrip("/")
        return DownloadLinks(self._links, base)

    def _context(
        self,
        resources: Resources,
        viewer: Viewer,
        rid: str,
        limiter: RateLimiter | None,
        links: DownloadLinks | None = None,
    ) -> Context:
        return Context(
            db=resources.db,
            days=resources.days,
            viewer=viewer,
            loaders=Loaders.build(resources.db),
            request_id=rid,
            limits=self._limits,
            budget=Budget(limiter=limiter),
            operations=Operations(
                litellm=resources.litellm,
                redis=resources.redis,
                export_dir=self._settings.export_dir,
                export_ttl_hours=self._settings.export_ttl_hours,
                links=links,
            ),
            answers=resources.answers,
            tag_days=resources.tag_days,
        )

    @staticmethod
    def _refused(refusal: RequestRefused, media_type: MediaType, headers: dict[str, str]) -> Response:
        if refusal.status_code == 405:
            headers = {**headers, "Allow": "POST"}
        status = refusal.status_for(media_type)
        return error_response(status, refusal.code, refusal.message, headers, media_type.content_type)

    def _timed_out(self, rid: str, cost: int) -> Response:
        seconds = self._settings.operation_timeout_seconds
        log.warning("graphql.timeout", request_id=rid, seconds=seconds, cost=cost)
        message = f"the operation ran longer than {seconds:g} s, the limit; ask for fewer days or nodes"
        error = {"message": message, "extensions": {"code": QueryTooComplex.code, "requestId": rid}}
        return OrjsonResponse({"data": None, "errors": [error]})
