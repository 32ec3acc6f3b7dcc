"""Parse and validate each document text once (issue 12).

A request whose text was prepared (:mod:`schema.prepared`: parsed and validated in full by an earlier
request) reuses the parsed document and skips validation, except for the two rules that depend on the
request's variables: NUL characters, checked here, and the cost limit, the prepared document's cost for
these variables, which is left in the request's budget (read by :class:`~schema.limits.cost.QueryCost`
and the rate limit). A text never prepared, or whose variables would break either rule, is parsed and
validated in full as before, so every error reads as it always did.
"""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from usage_gateway.resolvers.context import Context
from usage_gateway.schema.no_nul import has_nul
from usage_gateway.schema.prepared import PreparedDocument, PreparedDocuments


class PreparedValidation(SchemaExtension):
    def __init__(self, documents: PreparedDocuments) -> None:
        self.documents = documents
        self._prepared: PreparedDocument | None = None

    def on_parse(self) -> Iterator[None]:
        execution = self.execution_context
        if execution.query is not None and execution.graphql_document is None:
            self._prepared = self.documents.get(execution.query, execution.operation_name)
            if self._prepared is not None:
                execution.graphql_document = self._prepared.document
        yield

    def on_validate(self) -> Iterator[None]:
        execution, prepared = self.execution_context, self._prepared
        variables = execution.variables or {}
        if prepared is not None and isinstance(execution.context, Context) and not has_nul(variables):
            cost = prepared.cost(variables)
            if cost <= self.documents.limits.max_cost:
                execution.context.budget.cost = cost
                execution.pre_execution_errors = []  # Strawberry validates only while this is None
        yield
