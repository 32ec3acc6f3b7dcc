"""Maximum aliases: how many fields of a document carry an alias.

An alias is how one request asks for the same expensive field many times (``a: usage(…) b: usage(…)``);
what fragments multiply is bounded by the cost limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import DocumentNode, FieldNode, ValidationRule
from strawberry.extensions import SchemaExtension

from usage_gateway.schema.limits.common import too_complex


def aliases_rule(limit: int) -> type[ValidationRule]:
    class MaxAliasesRule(ValidationRule):
        count = 0

        def enter_field(self, node: FieldNode, *_: Any) -> None:
            if node.alias is not None:
                self.count += 1

        def leave_document(self, node: DocumentNode, *_: Any) -> None:
            if self.count > limit:
                message = f"the query has {self.count} aliases; at most {limit} are allowed"
                self.report_error(too_complex(message, node))

    return MaxAliasesRule


class MaxAliases(SchemaExtension):
    """``QUERY_TOO_COMPLEX`` for a document with more than ``limit`` aliased fields."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = (*context.validation_rules, aliases_rule(self.limit))
        yield
