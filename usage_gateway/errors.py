"""Errors a client or an operator can see, each with a stable code (DESIGN §7).

    GatewayError                      code
    ├── BadUserInput                  BAD_USER_INPUT
    │   └── RangeTooLarge             RANGE_TOO_LARGE
    ├── Unauthenticated               UNAUTHENTICATED
    ├── Forbidden                     FORBIDDEN
    ├── NotFound                      NOT_FOUND
    ├── QueryTooComplex               QUERY_TOO_COMPLEX
    ├── RateLimited                   RATE_LIMITED (HTTP 429 with Retry-After)
    ├── Overloaded                    OVERLOADED (HTTP 503 with Retry-After: shed before it ran)
    ├── UpstreamUnavailable           UPSTREAM_UNAVAILABLE
    │   └── UpstreamRejected          UPSTREAM_UNAVAILABLE (LiteLLM answered 4xx: not retried)
    └── DatabaseUnavailable           DATABASE_UNAVAILABLE (Postgres cannot be reached: try again later)

Anything else that escapes is masked as INTERNAL by the API layer and logged once.

Requests refused before GraphQL runs, for not being a GraphQL-over-HTTP request, carry the codes of
:mod:`usage_gateway.server.graphql_http` (BAD_REQUEST, METHOD_NOT_ALLOWED, NOT_ACCEPTABLE,
UNSUPPORTED_MEDIA_TYPE).
"""

from __future__ import annotations


class GatewayError(Exception):
    code = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class BadUserInput(GatewayError):
    code = "BAD_USER_INPUT"


class RangeTooLarge(BadUserInput):
    code = "RANGE_TOO_LARGE"


class Unauthenticated(GatewayError):
    code = "UNAUTHENTICATED"


class Forbidden(GatewayError):
    code = "FORBIDDEN"


class NotFound(GatewayError):
    code = "NOT_FOUND"


class QueryTooComplex(GatewayError):
    code = "QUERY_TOO_COMPLEX"


class RateLimited(GatewayError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Overloaded(GatewayError):
    """Shed by admission control: the operation never started."""

    code = "OVERLOADED"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamUnavailable(GatewayError):
    code = "UPSTREAM_UNAVAILABLE"


class UpstreamRejected(UpstreamUnavailable):
    """LiteLLM refused the request (4xx). Retrying would not help."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class DatabaseUnavailable(GatewayError):
    """Postgres did not answer (down, restarting, or no connection free in time)."""

    code = "DATABASE_UNAVAILABLE"
