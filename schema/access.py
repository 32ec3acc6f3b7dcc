"""Access at the root fields: before an operation runs, each root field it selects (through fragments) is
checked against :data:`resolvers.permissions.ROOT_FIELDS` for the viewer.

If any is refused, nothing of the operation runs (no half-done mutation): the answer is ``data: null`` and
one ``FORBIDDEN`` error per refused field, at its response path; a refused mutation is written to the
audit log like any other. Per-user scoping (what a permitted field shows) is :mod:`resolvers.scope`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_operation_ast,
    value_from_ast_untyped,
)
from strawberry.extensions import SchemaExtension

from usage_gateway.errors import Forbidden
from usage_gateway.resolvers.audited import AuditEntry, write
from usage_gateway.resolvers.context import Context
from usage_gateway.resolvers.permissions import ROOT_FIELDS, may_call
from usage_gateway.schema.limits.common import fragments

ROOT_TYPES = {OperationType.QUERY: "Query", OperationType.MUTATION: "Mutation"}


def root_fields(document: Any, operation: OperationDefinitionNode) -> Iterator[FieldNode]:
    """The fields an operation selects at its root, through fragments and inline fragments."""
    defined, seen = fragments(document), set[str]()

    def walk(selection_set: SelectionSetNode | None) -> Iterator[FieldNode]:
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                yield selection
            elif isinstance(selection, InlineFragmentNode):
                yield from walk(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
                seen.add(selection.name.value)
                fragment = defined.get(selection.name.value)
                yield from walk(fragment.selection_set if fragment else None)

    return walk(operation.selection_set)


def _refusal(root: str, field: FieldNode) -> GraphQLError:
    needed = " or ".join(sorted(role.value for role in ROOT_FIELDS.get(f"{root}.{field.name.value}", ())))
    message = f"`{field.name.value}` is not allowed with your roles" + (
        f" (needs {needed})" if needed else ""
    )
    key = field.alias.value if field.alias else field.name.value
    return GraphQLError(message, field, path=[key], original_error=Forbidden(message))


class RootFieldAccess(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context, document = execution.context, execution.graphql_document
        operation = get_operation_ast(document, execution.operation_name) if document else None
        if isinstance(context, Context) and operation is not None and execution.result is None:
            root = ROOT_TYPES.get(operation.operation, "Subscription")
            refused = [
                field
                for field in root_fields(document, operation)
                if not field.name.value.startswith("__")
                and not may_call(context.viewer, f"{root}.{field.name.value}")
            ]
            if refused:
                execution.result = ExecutionResult(data=None, errors=[_refusal(root, f) for f in refused])
                if operation.operation is OperationType.MUTATION:
                    await self._audit(context, refused)
        yield

    async def _audit(self, context: Context, refused: list[FieldNode]) -> None:
        variables = self.execution_context.variables or {}
        for field in refused:
            arguments = {
                arg.name.value: value_from_ast_untyped(arg.value, variables) for arg in field.arguments or ()
            }
            await write(context, field.name.value, arguments, AuditEntry("forbidden"))
