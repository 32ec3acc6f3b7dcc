"""Serving repeated queries from the answer cache (:mod:`datasources.answer_cache`).

Only execution is skipped on a hit: the root-field access check and the rate limit's charge run for
every request, and ``extensions`` (the cost) are computed afresh; what is stored is the ``data`` alone.
Registered after :class:`~schema.access.RootFieldAccess` and :class:`~schema.limits.CostRateLimit`, so a
refused or rate-limited request never reaches the cache. Each document that gets here (it passed
validation) is recorded in the schema's :class:`~schema.prepared.PreparedDocuments`: the view answers the
next hits of the same text without Strawberry (:mod:`server.cached_answers`). Answers are keyed by the
document's canonical text, so whitespace and comment variants of one query share an entry.

Cached: queries whose answer has no error and whose every range report is complete. Identical requests
arriving while such an answer is computed in this process wait for it rather than compute it again.
Never cached: mutations, and queries selecting ``export`` (an export's status moves as it runs in the
background, without any data version change). The outcome is left in ``Context.answer_status``
(``X-Answer-Cache``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from graphql import ExecutionResult
from strawberry.extensions import SchemaExtension

from usage_gateway.datasources.answer_cache import answer_key
from usage_gateway.resolvers.context import Context
from usage_gateway.schema.prepared import PreparedDocuments


class AnswerCaching(SchemaExtension):
    def __init__(self, documents: PreparedDocuments) -> None:
        self.documents = documents

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        key = self._key()
        if key is None or not isinstance(context, Context) or context.answers is None:
            yield
            return
        cache = context.answers
        # Checked before and after the lookup: a computation may start or finish while it is awaited.
        pending = cache.computing(key)
        found = await cache.lookup(key)
        answer = found.answer
        pending = pending or cache.computing(key)
        if answer is None and pending is not None:
            answer = await asyncio.shield(pending)
        if answer is not None:
            context.answer_status = "hit"
            execution.result = ExecutionResult(data=answer, errors=None)
            yield
            return
        context.answer_status = "miss" if found.version is not None else "bypass"
        computing = cache.begin(key)
        shareable: dict[str, Any] | None = None
        try:
            yield
            result = execution.result
            if found.version is None or not isinstance(result, ExecutionResult):
                return
            if result.errors or result.data is None:
                return
            ttl_ms = cache.ttl_ms(context.reports)
            if ttl_ms > 0:
                shareable = result.data
                await cache.store(key, found, result.data, ttl_ms)
        finally:
            cache.finish(key, computing, shareable)

    def _key(self) -> str | None:
        """The cache key of this operation, or None when its answer must not be cached."""
        execution = self.execution_context
        context, document, query = execution.context, execution.graphql_document, execution.query
        if document is None or query is None:
            return None
        prepared = self.documents.record(query, execution.operation_name, document, execution.schema._schema)
        if not isinstance(context, Context) or context.answers is None or execution.result is not None:
            return None
        if not prepared.cacheable:
            return None
        viewer, name = context.viewer, prepared.operation_name
        try:
            return answer_key(viewer.id, viewer.roles, prepared.canonical, name, execution.variables)
        except TypeError:
            return None
