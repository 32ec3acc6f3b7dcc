"""An answer-cache hit without Strawberry: a bounded amount of work before the Redis read.

For a query text (and operation name) the schema has already validated (:mod:`schema.prepared`), the view
asks here first. Per request, in the order Strawberry's extensions apply them: the variables' NUL check
and the cost (the two rules that read the variables), the root-field access check, the rate limit's
charge, then one MGET. The stored ``data`` is written into the response as the bytes Redis returned,
next to the same ``extensions`` a hit through Strawberry carries (the cost).

Whatever this path does not answer itself goes on to Strawberry, which answers it as before (the
refusals, the errors, the misses): a request already charged here carries a :class:`Charged` as its rate
limiter, so it is not charged twice and a refused one gets Strawberry's 429.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson

from usage_gateway.datasources.answer_cache import AnswerCache, answer_key
from usage_gateway.resolvers.context import RateLimiter
from usage_gateway.resolvers.permissions import may_call
from usage_gateway.resolvers.viewer import Viewer
from usage_gateway.schema.limits.cost import cost_extension
from usage_gateway.schema.no_nul import has_nul
from usage_gateway.schema.schema import ServedSchema
from usage_gateway.server.graphql_http import RequestRefused, operation


@dataclass(frozen=True)
class Charged:
    """The rate limit's verdict on this request, reached before Strawberry ran: replayed, not recharged."""

    retry_after: int | None

    async def charge(self, subject: str, cost: int) -> int | None:
        return self.retry_after


@dataclass(frozen=True)
class Outcome:
    body: bytes | None  # the whole response body of a hit; None: Strawberry answers the request
    limiter: RateLimiter | None  # what Strawberry's rate limit charges (a Charged once charged here)


@dataclass(frozen=True)
class _Operation:
    query: str
    operation_name: str | None
    variables: dict[str, Any]


def _operation(body: bytes) -> _Operation | None:
    """The operation a POST body asks for, when it is a well-formed request (else Strawberry refuses it)."""
    try:
        request = operation(orjson.loads(body))
    except (orjson.JSONDecodeError, RequestRefused):
        return None
    if request.query is None:
        return None
    return _Operation(request.query, request.operation_name, request.variables or {})


class CachedAnswers:
    def __init__(self, schema: ServedSchema) -> None:
        self._documents = schema.documents
        self._limits = schema.documents.limits

    async def answer(
        self, body: bytes, viewer: Viewer, limiter: RateLimiter | None, answers: AnswerCache | None
    ) -> Outcome:
        """The hit's body, or what Strawberry is to answer the request with."""
        passed = Outcome(None, limiter)
        operation = _operation(body) if answers is not None else None
        if answers is None or operation is None:
            return passed
        prepared = self._documents.get(operation.query, operation.operation_name)
        if prepared is None or not prepared.cacheable or has_nul(operation.variables):
            return passed
        cost = prepared.cost(operation.variables)
        if cost > self._limits.max_cost:
            return passed
        if not all(may_call(viewer, f"{prepared.root_type}.{field}") for field in prepared.root_fields):
            return passed
        try:
            key = answer_key(
                viewer.id, viewer.roles, prepared.canonical, prepared.operation_name, operation.variables
            )
        except TypeError:
            return passed
        if limiter is not None:
            retry_after = await limiter.charge(viewer.id, cost)
            passed = Outcome(None, Charged(retry_after))
            if retry_after is not None:
                return passed
        data = await _stored(answers, key)
        if data is None:
            return passed
        extensions = orjson.dumps(cost_extension(cost, self._limits))
        return Outcome(b"".join((b'{"data":', data, b',"extensions":', extensions, b"}")), passed.limiter)


async def _stored(answers: AnswerCache, key: str) -> bytes | memoryview | None:
    """The answer under ``key``: stored, or being computed by another request of this process."""
    # Checked before and after the lookup: a computation may start or finish while it is awaited.
    pending = answers.computing(key)
    found = await answers.lookup_raw(key)
    if found.answer is not None:
        return found.answer
    pending = pending or answers.computing(key)
    shared = await asyncio.shield(pending) if pending is not None else None
    return orjson.dumps(shared) if shared is not None else None
