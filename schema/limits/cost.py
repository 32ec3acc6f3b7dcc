"""The cost limit: an estimate of the work an operation asks for, computed before it runs.

The model (documented for clients in every response's ``extensions.cost``):

- every field costs its **base**: 0 for a scalar or enum (a plain attribute), 1 for an object, and
  :data:`FIELD_COSTS` for the fields that aggregate in SQL or change things;
- a **list** multiplies the cost of what is selected inside it by its size: ``first`` where the field
  (or, for a connection, the field holding its ``nodes``) takes one, ``timeSeries`` the number of buckets
  of the enclosing ``usage`` range at its granularity, any other list of objects
  :data:`UNBOUNDED_LIST`;
- arguments are read as the request gives them, variables included (``first: $n`` counts ``n``); a
  ``first`` outside ``0..max_first`` counts 0, since the field refuses it without doing any work, and a
  range that cannot be read counts as ``max_range_days`` days;
- nested lists multiply: ``byUser(first: 50) { nodes { timeSeries { … } } }`` over 90 days costs
  about 50 × 90 points.

Fragments are costed once per context, so a document cannot make the estimate itself expensive.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Undefined,
    ValidationRule,
    get_named_type,
    is_leaf_type,
    value_from_ast_untyped,
)
from graphql.language.visitor import SKIP, VisitorAction
from strawberry.extensions import SchemaExtension

from usage_gateway.resolvers.context import Context
from usage_gateway.resolvers.limits import Limits
from usage_gateway.schema.limits.common import fragments, is_introspection, operations, too_complex

AGGREGATE = 10  # one SQL aggregate (batched across the nodes of a page, but its rows grow with them)
MUTATION = 100

FIELD_COSTS: Mapping[str, int] = {
    **{
        f"Usage.{name}": AGGREGATE
        for name in ("totals", "previousPeriod", "timeSeries", "byUser", "byModel", "byProvider")
    },
    "Usage.byApiKey": AGGREGATE,
    "Usage.byTeam": AGGREGATE,
    "Usage.byTag": AGGREGATE,
    "TagUsage.timeSeries": AGGREGATE,
    "FilterOptions.tags": AGGREGATE,
    "TeamUsage.timeSeries": AGGREGATE,
    "TeamUsage.topUsers": AGGREGATE,
    "Usage.freshness": AGGREGATE,
    "Usage.forecast": AGGREGATE,
    "Usage.budgets": AGGREGATE,
    "Usage.anomalies": AGGREGATE,
    "Usage.movers": AGGREGATE,
    "UserUsage.timeSeries": AGGREGATE,
    "UserUsage.models": AGGREGATE,
    "UserUsage.apiKeys": AGGREGATE,
    "ModelUsage.timeSeries": AGGREGATE,
    "ModelUsage.topUsers": AGGREGATE,
    "ProviderUsage.timeSeries": AGGREGATE,
    "ApiKeyUsage.timeSeries": AGGREGATE,
    **{f"Usage.{name}": AGGREGATE for name in ("byModelGroup", "byEndpoint", "byMcpServer")},
    **{f"FilterOptions.{name}": AGGREGATE for name in ("users", "apiKeys", "models", "providers", "teams")},
    **{
        f"Mutation.{name}": MUTATION
        for name in ("refreshToday", "refreshRange", "exportUsage", "syncDirectory")
    },
}
# Costs are exact Python integers; what is reported stays a JSON-safe number.
MAX_REPORTED_COST = 2**53 - 1
_BUCKET_DAYS = {"DAY": 1, "WEEK": 7, "MONTH": 28}


UNBOUNDED_LIST = 100  # the size a list without ``first`` counts as


def _unwrap(type_: Any) -> Any:
    return type_.of_type if isinstance(type_, GraphQLNonNull) else type_


def _days(filter_value: Any, limits: Limits) -> int:
    try:
        start = date.fromisoformat(filter_value["from"])
        end = date.fromisoformat(filter_value["to"])
    except (TypeError, KeyError, ValueError):
        return limits.max_range_days
    return min(max((end - start).days + 1, 1), limits.max_range_days)


class _Estimate:
    """The cost of one operation's selections (see the module docstring)."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        limits: Limits,
        variables: Mapping[str, Any],
    ) -> None:
        self._schema = schema
        self._fragments = fragments(document)
        self._limits = limits
        self._variables = dict(variables)
        self._memo: dict[tuple[str, int, int | None], int] = {}
        self._visiting: set[str] = set()

    def operation(self, operation: OperationDefinitionNode) -> int:
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            if definition.default_value is not None and self._variables.get(name) is None:
                self._variables[name] = value_from_ast_untyped(definition.default_value)
        root = self._schema.get_root_type(operation.operation)
        if root is None:
            return 0
        cost = self._selections(root, operation.selection_set, self._limits.max_range_days, None)
        return min(cost, MAX_REPORTED_COST)

    def _argument(self, node: FieldNode, definition: GraphQLField, name: str) -> Any:
        for argument in node.arguments or ():
            if argument.name.value == name:
                value = value_from_ast_untyped(argument.value, self._variables)
                if value is not Undefined and value is not None:
                    return value
        declared = definition.args.get(name)  # absent (or an unset variable): the declared default
        value = declared.default_value if declared is not None else Undefined
        return getattr(value, "name", value)  # an enum default is a Python enum member

    def _first(self, node: FieldNode, definition: GraphQLField) -> int | None:
        if "first" not in definition.args:
            return None
        first = self._argument(node, definition, "first")
        if not isinstance(first, int) or isinstance(first, bool) or not 0 <= first <= self._limits.max_first:
            return 0
        return first

    def _selections(
        self, parent: GraphQLNamedType, selection_set: SelectionSetNode | None, days: int, size: int | None
    ) -> int:
        """The cost of ``selection_set`` on ``parent``; ``size`` is a ``first`` waiting for its list."""
        total = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                total += self._field(parent, selection, days, size)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self._schema.get_type(condition.name.value) if condition else parent
                total += self._selections(inner or parent, selection.selection_set, days, size)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._fragment(selection.name.value, days, size)
        return total

    def _fragment(self, name: str, days: int, size: int | None) -> int:
        key = (name, days, size)
        if key in self._memo:
            return self._memo[key]
        fragment: FragmentDefinitionNode | None = self._fragments.get(name)
        if fragment is None or name in self._visiting:
            return 0  # unknown or cyclic: the specification's rules report it
        condition = self._schema.get_type(fragment.type_condition.name.value)
        if condition is None:
            return 0
        self._visiting.add(name)
        cost = self._memo[key] = self._selections(condition, fragment.selection_set, days, size)
        self._visiting.discard(name)
        return cost

    def _field(self, parent: GraphQLNamedType, node: FieldNode, days: int, size: int | None) -> int:
        if is_introspection(node) or not isinstance(parent, GraphQLObjectType):
            return 0
        definition = parent.fields.get(node.name.value)
        if definition is None:
            return 0  # an unknown field: the specification's rules report it
        named = get_named_type(definition.type)
        if is_leaf_type(named):
            return 0
        key = f"{parent.name}.{node.name.value}"
        base = FIELD_COSTS.get(key, 1)
        if node.name.value == "usage":
            days = _days(self._argument(node, definition, "filter"), self._limits)
        first = self._first(node, definition)
        if not isinstance(_unwrap(definition.type), GraphQLList):
            # A connection: its `first` sizes the list it holds (`nodes`).
            return base + self._selections(named, node.selection_set, days, first)
        count = first if first is not None else size
        if count is None:
            count = self._buckets(node, definition, days) if node.name.value == "timeSeries" else None
        if count is None:
            count = UNBOUNDED_LIST
        return base + count * self._selections(named, node.selection_set, days, None)

    def _buckets(self, node: FieldNode, definition: GraphQLField, days: int) -> int:
        granularity = self._argument(node, definition, "granularity")
        span = _BUCKET_DAYS.get(granularity if isinstance(granularity, str) else "", 1)
        return days if span == 1 else math.ceil(days / span) + 1


def operation_costs(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    limits: Limits,
    variables: Mapping[str, Any],
) -> Iterator[tuple[OperationDefinitionNode, int]]:
    """The cost of the operation a request runs (of each, when which one is unclear)."""
    estimate = _Estimate(schema, document, limits, variables)
    for operation in operations(document, operation_name):
        try:
            cost = estimate.operation(operation)
        except RecursionError:
            cost = limits.max_cost + 1
        yield operation, cost


def document_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    limits: Limits,
    variables: Mapping[str, Any],
) -> int:
    """The cost :class:`QueryCost` reports for a request (its largest operation's)."""
    costs = operation_costs(schema, document, operation_name, limits, variables)
    return max((cost for _, cost in costs), default=0)


def cost_rule(
    limits: Limits,
    variables: Mapping[str, Any],
    operation_name: Callable[[], str | None],
    found: list[int],
) -> type[ValidationRule]:
    class QueryCostRule(ValidationRule):
        def enter_document(self, node: DocumentNode, *_: Any) -> VisitorAction:
            schema = self.context.schema
            for operation, cost in operation_costs(schema, node, operation_name(), limits, variables):
                found.append(cost)
                if cost > limits.max_cost:
                    message = f"the query costs {cost}; at most {limits.max_cost} is allowed"
                    self.report_error(too_complex(message, operation))
            return SKIP

    return QueryCostRule


class QueryCost(SchemaExtension):
    """``QUERY_TOO_COMPLEX`` for an operation whose estimated cost is over ``limits.max_cost``.

    Every response carries ``extensions.cost = {"requested": N, "limit": L}``; the cost is also left in
    the request's context for the rate limit. For a prepared document the rule does not run:
    :class:`~schema.prepared_validation.PreparedValidation` puts its cost in the context instead.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._found: list[int] = []

    @property
    def cost(self) -> int:
        return max(self._found, default=0)

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        rule = cost_rule(self.limits, context.variables or {}, lambda: context.operation_name, self._found)
        context.validation_rules = (*context.validation_rules, rule)
        yield

    def on_validate(self) -> Iterator[None]:
        yield
        # The rule did not run when the document was prepared: the budget holds its cost already.
        if self._found and isinstance(self.execution_context.context, Context):
            self.execution_context.context.budget.cost = self.cost

    def get_results(self) -> dict[str, Any]:
        context = self.execution_context.context
        prepared = not self._found and isinstance(context, Context)
        return cost_extension(context.budget.cost if prepared else self.cost, self.limits)


def cost_extension(cost: int, limits: Limits) -> dict[str, Any]:
    """What every response carries in ``extensions`` about its cost."""
    return {"cost": {"requested": cost, "limit": limits.max_cost}}
