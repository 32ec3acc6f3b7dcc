"""No NUL character in any string a request sends (literal or variable): Postgres text cannot hold one,
so such a value could only fail deep in the driver. Refused up front as ``BAD_USER_INPUT``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import DocumentNode, GraphQLError, StringValueNode, ValidationRule
from strawberry.extensions import SchemaExtension

from usage_gateway.errors import BadUserInput

MESSAGE = "strings must not contain NUL characters"


def has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(has_nul(key) or has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(has_nul(item) for item in value)
    return False


def _error(node: Any) -> GraphQLError:
    return GraphQLError(MESSAGE, node, original_error=BadUserInput(MESSAGE))


def no_nul_rule(variables: Mapping[str, Any]) -> type[ValidationRule]:
    class NoNulRule(ValidationRule):
        def enter_document(self, node: DocumentNode, *_: Any) -> None:
            if has_nul(variables):
                self.report_error(_error(None))

        def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
            if "\x00" in node.value:
                self.report_error(_error(node))

    return NoNulRule


class NoNulCharacters(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = (*context.validation_rules, no_nul_rule(context.variables or {}))
        yield
