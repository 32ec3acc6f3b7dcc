"""Prepared documents: what the gateway learns about a query text once and reuses for every request that
sends the same text (and operation name) again, kept per process in a bounded LRU.

A document is prepared only after Strawberry parsed and validated it, with every rule the schema has
(:class:`~schema.answer_caching.AnswerCaching` records it when it reaches execution), so holding one means
its text is valid. Two rules depend on the variables as well as the text, the cost limit and NUL
characters: they are checked again for each request's variables (:meth:`PreparedDocument.cost`, which
keeps the costs of the last variables it saw, and :func:`~schema.no_nul.has_nul`). Access and the rate
limit are the viewer's and are never prepared.

``canonical`` is the document printed back (``graphql.print_ast``): without comments, with whitespace
and commas normalised, so the answer cache keys variants of one query to one entry.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    get_operation_ast,
    print_ast,
)

from usage_gateway.resolvers.limits import Limits
from usage_gateway.schema.access import ROOT_TYPES, root_fields
from usage_gateway.schema.limits.cost import document_cost

NEVER_CACHED = frozenset({"export"})  # an export's status moves without any data version change
DEFAULT_MAX_ENTRIES = 256
# A parsed document takes about 130 times its text in memory (the 1 KB dashboard: 130 KiB), so the texts
# kept are bounded in total too: about 35 MiB at most, whatever texts the clients send.
DEFAULT_MAX_CHARS = 256 * 1024
MAX_COSTS_KEPT = 64  # costs of one document by its variables (dashboards vary their range)


@dataclass(frozen=True)
class PreparedDocument:
    document: DocumentNode
    operation_name: str | None  # the operation's own (None: anonymous), whether the request named it or not
    operation: OperationDefinitionNode | None
    canonical: str
    root_type: str  # "Query", "Mutation" or "Subscription": what ROOT_FIELDS names fields by
    root_fields: tuple[str, ...]  # selected at the root (through fragments), introspection left out
    cacheable: bool  # a query selecting nothing that is never cached
    schema: GraphQLSchema = field(repr=False)
    limits: Limits = field(repr=False)
    _costs: dict[bytes, int] = field(default_factory=dict, repr=False, compare=False)

    def cost(self, variables: Mapping[str, Any]) -> int:
        """The cost limit's estimate of this operation with ``variables`` (JSON values)."""
        key = orjson.dumps(variables, option=orjson.OPT_SORT_KEYS)
        cost = self._costs.get(key)
        if cost is None:
            if len(self._costs) >= MAX_COSTS_KEPT:
                self._costs.clear()
            cost = document_cost(self.schema, self.document, self.operation_name, self.limits, variables)
            self._costs[key] = cost
        return cost


def prepare(
    document: DocumentNode, operation_name: str | None, schema: GraphQLSchema, limits: Limits
) -> PreparedDocument:
    operation = get_operation_ast(document, operation_name)
    fields = tuple(
        field.name.value
        for field in (root_fields(document, operation) if operation is not None else ())
        if not field.name.value.startswith("__")
    )
    is_query = operation is not None and operation.operation is OperationType.QUERY
    return PreparedDocument(
        document=document,
        operation_name=operation_name,
        operation=operation,
        canonical=print_ast(document),
        root_type=ROOT_TYPES.get(operation.operation, "Subscription") if operation else "Query",
        root_fields=fields,
        cacheable=is_query and not NEVER_CACHED.intersection(fields),
        schema=schema,
        limits=limits,
    )


class PreparedDocuments:
    """An LRU of prepared documents by query text and operation name, for one schema, bounded in entries
    and in the total length of their texts.

    A document of one operation is kept under the name None: a request may name its operation or not.
    """

    def __init__(
        self, limits: Limits, max_entries: int = DEFAULT_MAX_ENTRIES, max_chars: int = DEFAULT_MAX_CHARS
    ) -> None:
        self.limits = limits
        self.max_entries = max_entries
        self.max_chars = max_chars
        self._entries: OrderedDict[tuple[str, str | None], PreparedDocument] = OrderedDict()
        self._chars = 0  # of the texts kept

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, query: str, operation_name: str | None) -> PreparedDocument | None:
        """The document a request for ``query`` and ``operation_name`` runs, if prepared."""
        key = (query, operation_name)
        found = self._entries.get(key)
        if found is None and operation_name is not None:
            key = (query, None)
            found = self._entries.get(key)
            if found is not None and found.operation_name != operation_name:
                return None  # not an operation of this document: Strawberry says so
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def record(
        self, query: str, operation_name: str | None, document: DocumentNode, schema: GraphQLSchema
    ) -> PreparedDocument:
        """The prepared form of ``document``, parsed from ``query`` and validated against ``schema``,
        kept for next time.

        ``operation_name`` is the operation that ran (Strawberry names the only one when the request
        did not)."""
        single = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions) == 1
        key = (query, None if single else operation_name)
        found = self._entries.get(key)
        if found is not None and found.operation_name == operation_name:
            self._entries.move_to_end(key)
            return found
        prepared = prepare(document, operation_name, schema, self.limits)
        if len(query) > self.max_chars:
            return prepared
        if found is not None:
            self._chars -= len(query)
        self._entries[key] = prepared
        self._entries.move_to_end(key)
        self._chars += len(query)
        while len(self._entries) > self.max_entries or self._chars > self.max_chars:
            (evicted, _), _ = self._entries.popitem(last=False)
            self._chars -= len(evicted)
        return prepared
