"""GraphQL over HTTP (the GraphQL-over-HTTP draft specification): media types, refusals and status codes.

The response's media type follows ``Accept``: ``application/graphql-response+json`` when the client names
it (and prefers it at least as much as ``application/json``), else ``application/json``, also when
``Accept`` is missing or a wildcard. An ``Accept`` that allows neither is refused 406.

Requests that are not a well-formed GraphQL-over-HTTP request are refused before GraphQL runs, with a JSON
body ``{"errors": [{"message", "extensions": {"code"}}]}``: another method than POST 405 (``Allow:
POST``), a body that is not ``application/json`` (UTF-8) 415, a body that is not JSON 400, JSON that is
not one operation (a batch, ``query`` not a string, …) 400, or 422 with ``application/graphql-response+json``.

Once GraphQL has answered, ``application/json`` keeps 200 for every GraphQL error (the legacy media type's
rule), while ``application/graphql-response+json`` uses the specification's codes: 200 with data and no
errors; 294 (partial success) when data (even ``null``) and errors come together; and for a request
GraphQL refused before executing it, no ``data`` entry and 400 (the document does not parse), 422 (it
does not validate, the operation cannot be chosen, a variable does not coerce, a query limit), 403 (every
root field forbidden) or 500.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from cross_web import HTTPException
from strawberry.exceptions import MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import CannotGetOperationTypeError

BAD_REQUEST = "BAD_REQUEST"
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
BAD_USER_INPUT = "BAD_USER_INPUT"

PARTIAL_SUCCESS = 294  # the specification's status for data with errors


class MediaType(StrEnum):
    JSON = "application/json"
    GRAPHQL_RESPONSE = "application/graphql-response+json"

    @property
    def content_type(self) -> str:
        # application/json stays bare, as clients and tests have always seen it.
        return self.value if self is MediaType.JSON else f"{self.value}; charset=utf-8"


class RequestRefused(HTTPException):
    """A request refused before GraphQL ran: its status (per media type), code and message."""

    def __init__(self, status: int, code: str, message: str, *, graphql_status: int | None = None) -> None:
        super().__init__(status, message)
        self.code = code
        self.message = message
        self.graphql_status = graphql_status or status

    def status_for(self, media_type: MediaType) -> int:
        return self.graphql_status if media_type is MediaType.GRAPHQL_RESPONSE else self.status_code


def method_not_allowed(method: str) -> RequestRefused:
    return RequestRefused(
        405, METHOD_NOT_ALLOWED, f"GraphQL is served on POST, not {method}: send the operation as a JSON body"
    )


def _params(value: str) -> tuple[str, dict[str, str]]:
    """A header's media type (lower case) and its parameters."""
    kind, *rest = value.split(";")
    params = {}
    for param in rest:
        name, _, raw = param.partition("=")
        params[name.strip().lower()] = raw.strip().strip('"')
    return kind.strip().lower(), params


def negotiate(accept: str | None) -> MediaType | None:
    """The response's media type for this ``Accept`` header; None when it allows neither."""
    if not accept or not accept.strip():
        return MediaType.JSON
    # Per media type: (specificity, quality) of the most specific range that matches it.
    best: dict[MediaType, tuple[int, float]] = {}
    for item in accept.split(","):
        if not item.strip():
            continue
        kind, params = _params(item)
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            quality = 0.0
        for media_type in MediaType:
            specificity = {media_type.value: 2, "application/*": 1, "*/*": 0}.get(kind)
            if specificity is not None and specificity >= best.get(media_type, (-1, 0.0))[0]:
                best[media_type] = (specificity, quality)
    graphql = best.get(MediaType.GRAPHQL_RESPONSE, (-1, 0.0))
    json = best.get(MediaType.JSON, (-1, 0.0))
    if graphql[1] > 0 and (graphql[1] > json[1] or (graphql[1] == json[1] and graphql[0] == 2)):
        return MediaType.GRAPHQL_RESPONSE
    if json[1] > 0:
        return MediaType.JSON
    return None


def not_acceptable(accept: str) -> RequestRefused:
    return RequestRefused(
        406,
        NOT_ACCEPTABLE,
        f"cannot answer in any media type of Accept: {accept[:200]}; accept"
        f" {MediaType.GRAPHQL_RESPONSE.value} or {MediaType.JSON.value}",
    )


def check_content_type(content_type: str | None) -> None:
    """Refuse (415) a body that is not ``application/json`` in UTF-8."""
    kind, params = _params(content_type or "")
    charset = params.get("charset", "utf-8").lower()
    if kind != MediaType.JSON.value or charset not in {"utf-8", "utf8"}:
        shown = f"Content-Type {content_type[:200]}" if content_type else "no Content-Type"
        raise RequestRefused(
            415, UNSUPPORTED_MEDIA_TYPE, f"{shown}: send the operation as application/json (UTF-8)"
        )


def _malformed(message: str) -> RequestRefused:
    return RequestRefused(400, BAD_REQUEST, message, graphql_status=422)


def operation(payload: object) -> GraphQLRequestData:
    """The one operation a parsed JSON body asks for, or why it is not a well-formed request."""
    if isinstance(payload, list):
        raise _malformed("batches are not supported: send one operation per request")
    if not isinstance(payload, dict):
        raise _malformed('the body must be a JSON object such as {"query": "{ viewer { id } }"}')
    query, name = payload.get("query"), payload.get("operationName")
    variables, extensions = payload.get("variables"), payload.get("extensions")
    if not isinstance(query, str):
        raise _malformed("`query` must be a string holding the GraphQL document")
    if not isinstance(name, str | None):
        raise _malformed("`operationName` must be a string or null")
    if not isinstance(variables, dict | None):
        raise _malformed("`variables` must be an object or null")
    if not isinstance(extensions, dict | None):
        raise _malformed("`extensions` must be an object or null")
    return GraphQLRequestData(
        query=query, variables=variables, operation_name=name, extensions=extensions, protocol="http"
    )


def unparsable(error: ValueError) -> RequestRefused:
    return RequestRefused(400, BAD_REQUEST, f"the request body is not JSON: {error}")


def from_strawberry(exc: HTTPException) -> RequestRefused:
    """Strawberry's own refusals (plain text there) as GraphQL-over-HTTP errors."""
    if isinstance(exc, RequestRefused):
        return exc
    cause = exc.__cause__
    if isinstance(cause, MissingQueryError):
        return RequestRefused(400, BAD_USER_INPUT, "the GraphQL document is empty", graphql_status=400)
    if isinstance(cause, CannotGetOperationTypeError):
        return RequestRefused(400, BAD_USER_INPUT, exc.reason, graphql_status=422)
    return RequestRefused(exc.status_code, BAD_REQUEST, exc.reason)


def _code(error: Any) -> str | None:
    extensions = error.get("extensions") if isinstance(error, dict) else None
    code = extensions.get("code") if isinstance(extensions, dict) else None
    return code if isinstance(code, str) else None


def graphql_status(response: GraphQLHTTPResponse) -> int:
    """The status of GraphQL's answer under ``application/graphql-response+json``; it drops ``data``
    from the answer of a request that was refused before execution."""
    errors = response.get("errors") or []
    if response.get("data") is not None:
        return PARTIAL_SUCCESS if errors else 200
    if not errors:
        return 200
    codes = {_code(error) for error in errors}
    executed = any(isinstance(error, dict) and error.get("path") for error in errors)
    if codes == {"FORBIDDEN"}:
        response.pop("data", None)
        return 403
    if executed:
        return PARTIAL_SUCCESS
    response.pop("data", None)
    if "INTERNAL" in codes:
        return 500
    messages = (error.get("message", "") for error in errors if isinstance(error, dict))
    if any(isinstance(message, str) and message.startswith("Syntax Error") for message in messages):
        return 400
    return 422
