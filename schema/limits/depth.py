"""Maximum depth: the longest chain of nested fields an operation selects, through its fragments.

Introspection fields are not counted (GraphiQL's introspection query nests ``ofType`` deeply, and
introspection is off in production). Each fragment is measured once, so a document cannot make the check
itself slow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
    ValidationRule,
)
from graphql.language.visitor import SKIP, VisitorAction
from strawberry.extensions import SchemaExtension

from usage_gateway.schema.limits.common import fragments, is_introspection, operations, too_complex


class _Depth:
    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self._fragments = fragments
        self._memo: dict[str, int] = {}
        self._visiting: set[str] = set()

    def of(self, selection_set: SelectionSetNode | None) -> int:
        deepest = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                if not is_introspection(selection):
                    deepest = max(deepest, 1 + self.of(selection.selection_set))
            elif isinstance(selection, InlineFragmentNode):
                deepest = max(deepest, self.of(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                deepest = max(deepest, self._fragment(selection.name.value))
        return deepest

    def _fragment(self, name: str) -> int:
        if name in self._memo:
            return self._memo[name]
        fragment = self._fragments.get(name)
        if fragment is None or name in self._visiting:
            return 0  # unknown or cyclic: the specification's rules report it
        self._visiting.add(name)
        depth = self._memo[name] = self.of(fragment.selection_set)
        self._visiting.discard(name)
        return depth


def depth_rule(limit: int, operation_name: Callable[[], str | None]) -> type[ValidationRule]:
    class MaxDepthRule(ValidationRule):
        def enter_document(self, node: DocumentNode, *_: Any) -> VisitorAction:
            measure = _Depth(fragments(node))
            for operation in operations(node, operation_name()):
                try:
                    depth = measure.of(operation.selection_set)
                except RecursionError:
                    depth = limit + 1
                if depth > limit:
                    message = f"the query nests {depth} fields deep; at most {limit} are allowed"
                    self.report_error(too_complex(message, operation))
            return SKIP

    return MaxDepthRule


class MaxDepth(SchemaExtension):
    """``QUERY_TOO_COMPLEX`` for an operation nesting fields deeper than ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        rule = depth_rule(self.limit, lambda: context.operation_name)
        context.validation_rules = (*context.validation_rules, rule)
        yield
