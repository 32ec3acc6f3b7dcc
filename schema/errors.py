"""What clients see of errors: a stable ``extensions.code`` on each, nothing internal, upstream notices.

- a :class:`~usage_gateway.errors.GatewayError` keeps its message and gets its code;
- an error before execution (syntax, validation, a variable that does not coerce, such as a malformed
  ``Date``) is the client's: ``BAD_USER_INPUT``;
- anything else becomes "Internal error" with code ``INTERNAL`` and the request id, and is logged once
  with its traceback (:meth:`GatewaySchema.process_errors`);
- without introspection, graphql-core's suggestions ("Did you mean 'x'?") are cut from messages, since
  they would describe the schema piece by piece;
- days the cache could not get from LiteLLM (collected in the context while resolving) are appended as
  ``UPSTREAM_UNAVAILABLE`` errors next to the data.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import strawberry
import structlog
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionContext

from usage_gateway.errors import GatewayError
from usage_gateway.resolvers.context import Context, UpstreamNotice

log = structlog.get_logger("usage_gateway.graphql")

BAD_USER_INPUT = "BAD_USER_INPUT"
INTERNAL = "INTERNAL"
UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
INTERNAL_MESSAGE = "Internal error"
_SUGGESTION = re.compile(r"\s*Did you mean .*$", re.DOTALL)


def error_code(error: GraphQLError) -> str:
    original = error.original_error
    if isinstance(original, GatewayError):
        return original.code
    if error.path is None and (
        original is None or isinstance(original, (GraphQLError, ValueError, TypeError))
    ):
        return BAD_USER_INPUT
    return INTERNAL


def _request_id(execution_context: ExecutionContext | None) -> str | None:
    context = execution_context.context if execution_context is not None else None
    return context.request_id if isinstance(context, Context) else None


def _present(error: GraphQLError, request_id: str | None, *, hide_suggestions: bool) -> GraphQLError:
    code = error_code(error)
    if code == INTERNAL:
        message, extensions = INTERNAL_MESSAGE, {"code": code, "requestId": request_id}
    else:
        message, extensions = error.message, {**(error.extensions or {}), "code": code}
        if hide_suggestions and not isinstance(error.original_error, GatewayError):
            message = _SUGGESTION.sub("", message)
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


def _notice(notice: UpstreamNotice) -> GraphQLError:
    days = [day.isoformat() for day in notice.days]
    return GraphQLError(
        f"LiteLLM could not deliver {len(days)} day(s), left out of the answer:"
        f" {', '.join(days)} ({notice.reason})",
        extensions={"code": UPSTREAM_UNAVAILABLE, "missingDays": days},
    )


class ErrorCodes(SchemaExtension):
    """Rewrites the errors of every operation as described in the module docstring."""

    def __init__(self, *, hide_suggestions: bool = True) -> None:
        self.hide_suggestions = hide_suggestions

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None:
            return
        context = self.execution_context.context
        request_id = _request_id(self.execution_context)
        errors = [
            _present(error, request_id, hide_suggestions=self.hide_suggestions)
            for error in result.errors or ()
        ]
        if isinstance(context, Context):
            errors.extend(_notice(notice) for notice in context.notices)
        result.errors = errors or None


class GatewaySchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log each unexpected error once, with the request id the client sees."""
        for error in errors:
            if error_code(error) == INTERNAL:
                extra: dict[str, Any] = {"path": ".".join(map(str, error.path or ())) or None}
                log.error(
                    "graphql.internal_error",
                    request_id=_request_id(execution_context),
                    error=str(error),
                    exc_info=error.original_error or error,
                    **extra,
                )
