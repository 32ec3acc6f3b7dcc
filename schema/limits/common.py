"""What the limit rules share: their error, and finding a document's fragments and operations."""

from __future__ import annotations

from collections.abc import Sequence

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    Node,
    OperationDefinitionNode,
)

from usage_gateway.errors import QueryTooComplex


def too_complex(message: str, nodes: Sequence[Node] | Node | None = None) -> GraphQLError:
    """A validation error that the API answers with code ``QUERY_TOO_COMPLEX``."""
    return GraphQLError(message, nodes, original_error=QueryTooComplex(message))


def is_introspection(field: FieldNode) -> bool:
    """``__schema``, ``__type`` and ``__typename``: answered from the schema, never from data."""
    return field.name.value.startswith("__")


def fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def operations(document: DocumentNode, name: str | None) -> list[OperationDefinitionNode]:
    """The operation a request runs (by name, or the only one); every operation when that is unclear."""
    found = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    named = [op for op in found if name is not None and op.name is not None and op.name.value == name]
    return named or found
