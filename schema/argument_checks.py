"""Every argument of an operation checked before any of it runs.

Resolvers check their own arguments, but a nested field's (``byUser(first:)``, ``models(after:)``) would
only be seen once ``usage`` had fetched its days from LiteLLM, and one root field could fetch or write
while another is refused. So before execution the whole operation is walked, variables and fragments
included, and each argument is checked as its resolver would: ranges, ``first``, ``after`` cursors, the
previous period, and every filter (scoped to the viewer, naming only known users and keys; the result is
kept for the resolver). If anything is wrong nothing runs: ``data`` is null, with one error per field at
its response path (list indices left out), and a refused mutation is audited.

Models and providers are the exception: whether one is known depends on the days being fetched, so
:func:`resolvers.filters.check_seen` runs once they are present.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLIncludeDirective,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSkipDirective,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionNode,
    SelectionSetNode,
    get_named_type,
    get_operation_ast,
    value_from_ast_untyped,
)
from graphql.execution.values import (
    VariableValues,
    get_argument_values,
    get_directive_values,
    get_variable_values,
)
from strawberry.extensions import SchemaExtension

from usage_gateway.datasources.facts.aggregates import Dimension
from usage_gateway.errors import GatewayError
from usage_gateway.resolvers import side_rules
from usage_gateway.resolvers.audited import AuditEntry, write
from usage_gateway.resolvers.context import Context
from usage_gateway.resolvers.filters import (
    RequestedFilter,
    check_after,
    check_first,
    check_range,
    resolve_filter,
)
from usage_gateway.resolvers.insights.anomalies import check_arguments as check_anomaly_arguments
from usage_gateway.resolvers.insights.budgets import check_arguments as check_budget_arguments
from usage_gateway.resolvers.insights.movers import check_arguments as check_mover_arguments
from usage_gateway.resolvers.options import chosen
from usage_gateway.resolvers.side_breakdowns import check_arguments as check_side_arguments
from usage_gateway.resolvers.usage import previous_filter
from usage_gateway.schema.enums import ExportDimension, SortDirection, UsageMetric
from usage_gateway.schema.inputs import UsageOrder, to_order
from usage_gateway.schema.limits.common import fragments

BREAKDOWNS = {
    "byUser": Dimension.USER,
    "byModel": Dimension.MODEL,
    "byProvider": Dimension.PROVIDER,
    "byApiKey": Dimension.API_KEY,
    "byTeam": Dimension.TEAM,
    "byTag": Dimension.TAG,
}
FILTERED = frozenset({"Query.usage", "Mutation.exportUsage"})
RANGED = frozenset({"Query.filterOptions", "Mutation.refreshRange"})


@dataclass(frozen=True)
class _Field:
    """A selected field with its coerced arguments, and the ``usage`` filter it sits under."""

    key: str  # Type.field
    node: FieldNode
    path: tuple[str, ...]
    arguments: dict[str, Any]
    under: RequestedFilter | None


def _requested(value: dict[str, Any]) -> RequestedFilter:
    user_ids, api_key_ids, models, providers, team_ids = (
        None if v is None else tuple(v)
        for v in (value.get(name) for name in ("userIds", "apiKeyIds", "models", "providers", "teamIds"))
    )
    return RequestedFilter(
        value["from"], value["to"], user_ids, api_key_ids, models, providers, team_ids, value.get("tag")
    )


def _order(value: dict[str, Any] | None) -> UsageOrder | None:
    if value is None:
        return None
    return UsageOrder(
        metric=value.get("metric", UsageMetric.SPEND), direction=value.get("direction", SortDirection.DESC)
    )


class _Walk:
    def __init__(self, schema: Any, document: Any, variables: VariableValues) -> None:
        self._schema = schema
        self._fragments = fragments(document)
        self._variables = variables
        self._seen: set[tuple[str, tuple[str, ...], RequestedFilter | None]] = set()

    def _included(self, node: SelectionNode) -> bool:
        skip = get_directive_values(GraphQLSkipDirective, node, self._variables)
        if skip is not None and skip.get("if") is True:
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self._variables)
        return include is None or include.get("if") is not False

    def fields(
        self,
        parent: GraphQLNamedType | None,
        selection_set: SelectionSetNode | None,
        path: tuple[str, ...],
        under: RequestedFilter | None,
    ) -> Iterator[_Field]:
        for selection in selection_set.selections if selection_set else ():
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                yield from self._field(parent, selection, path, under)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self._schema.get_type(condition.name.value) if condition else parent
                yield from self.fields(inner, selection.selection_set, path, under)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self._fragments.get(selection.name.value)
                seen = (selection.name.value, path, under)
                if fragment is None or seen in self._seen:
                    continue
                self._seen.add(seen)
                condition = self._schema.get_type(fragment.type_condition.name.value)
                yield from self.fields(condition, fragment.selection_set, path, under)

    def _field(
        self,
        parent: GraphQLNamedType | None,
        node: FieldNode,
        path: tuple[str, ...],
        under: RequestedFilter | None,
    ) -> Iterator[_Field]:
        if not isinstance(parent, GraphQLObjectType) or node.name.value.startswith("__"):
            return
        definition: GraphQLField | None = parent.fields.get(node.name.value)
        if definition is None:
            return
        key = f"{parent.name}.{node.name.value}"
        path = (*path, node.alias.value if node.alias else node.name.value)
        arguments = get_argument_values(definition, node, self._variables) if definition.args else {}
        if key == "Query.usage":
            under = _requested(arguments["filter"])
        yield _Field(key, node, path, arguments, under)
        yield from self.fields(get_named_type(definition.type), node.selection_set, path, under)


def _check_plain(field: _Field, ctx: Context) -> None:
    """The checks that need no database: ranges, ``first``, ``after``."""
    arguments = field.arguments
    if field.key in RANGED:
        check_range(arguments["from"], arguments["to"], ctx.limits)
    if "first" in arguments:
        check_first(arguments["first"], ctx.limits)
    name = field.key.partition(".")[2]
    if field.key.startswith("Usage.") and name in BREAKDOWNS:
        check_after(arguments.get("after"), BREAKDOWNS[name], to_order(_order(arguments.get("orderBy"))))
    if field.key.startswith("Usage.") and name in side_rules.FIELDS:
        rollup = side_rules.FIELDS[name]
        check_side_arguments(rollup, arguments.get("after"), to_order(_order(arguments.get("orderBy"))))
        if field.under is not None:
            side_rules.check_filters(rollup, side_rules.used_filters(field.under))
    if field.key == "Usage.budgets":
        check_budget_arguments(field.under, arguments.get("after"))
    if field.key == "Usage.anomalies":
        check_anomaly_arguments(
            None if field.under is None else field.under.tag,
            None if field.under is None else field.under.date_from,
            arguments["dimension"].value,
            arguments["first"],
            arguments.get("after"),
            arguments.get("minSpend"),
            ctx,
        )
    if field.key == "Usage.movers":
        check_mover_arguments(
            arguments["dimension"].value,
            arguments["metric"].value,
            arguments["first"],
            arguments.get("after"),
            ctx,
        )
    if field.key == "Mutation.exportUsage":
        group_by = [ExportDimension(d) for d in arguments["groupBy"]]
        side_rules.check_export(group_by, side_rules.used_filters(_requested(arguments["filter"])))


async def check_operation(
    ctx: Context, schema: Any, document: Any, operation: OperationDefinitionNode, inputs: dict[str, Any]
) -> list[tuple[_Field, GatewayError]]:
    """The fields of ``operation`` whose arguments are refused, each with its error."""
    variables = get_variable_values(schema, operation.variable_definitions or (), inputs)
    if not isinstance(variables, VariableValues):
        return []  # execution reports variables that do not coerce
    root = schema.get_root_type(operation.operation)
    walk = _Walk(schema, document, variables)
    refused: list[tuple[_Field, GatewayError]] = []
    failed_filters: set[RequestedFilter] = set()
    for field in walk.fields(root, operation.selection_set, (), None):
        try:
            _check_plain(field, ctx)
            if field.key in FILTERED:
                requested = _requested(field.arguments["filter"])
                if requested in failed_filters:
                    continue
                try:
                    await resolve_filter(ctx, requested)
                except GatewayError:
                    failed_filters.add(requested)
                    raise
            elif field.key == "Query.filterOptions" and (
                field.arguments.get("userIds") is not None or field.arguments.get("teamIds") is not None
            ):
                arguments = field.arguments
                await resolve_filter(
                    ctx,
                    chosen(
                        arguments["from"], arguments["to"], arguments.get("userIds"), arguments.get("teamIds")
                    ),
                )
            elif (
                field.key in ("Usage.previousPeriod", "Usage.movers")
                and field.under
                and field.under not in failed_filters
            ):
                previous_filter(await resolve_filter(ctx, field.under))
        except GatewayError as exc:
            refused.append((field, exc))
        except Exception:  # noqa: S110
            pass  # the database failed: the resolver meets it again, and reports it as any other failure
    return refused


class ArgumentChecks(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context, document = execution.context, execution.graphql_document
        operation = get_operation_ast(document, execution.operation_name) if document else None
        if isinstance(context, Context) and operation is not None and execution.result is None:
            schema = execution.schema._schema
            refused = await check_operation(context, schema, document, operation, execution.variables or {})
            if refused:
                errors = [
                    GraphQLError(exc.message, field.node, path=list(field.path), original_error=exc)
                    for field, exc in refused
                ]
                execution.result = ExecutionResult(data=None, errors=errors)
                if operation.operation is OperationType.MUTATION:
                    await self._audit(context, refused)
        yield

    async def _audit(self, context: Context, refused: list[tuple[_Field, GatewayError]]) -> None:
        variables = self.execution_context.variables or {}
        for field, exc in refused:
            if not field.key.startswith("Mutation."):
                continue
            node = field.node
            arguments = {
                arg.name.value: value_from_ast_untyped(arg.value, variables) for arg in node.arguments or ()
            }
            entry = AuditEntry(exc.code.lower(), {"error": exc.message})
            await write(context, node.name.value, arguments, entry)
