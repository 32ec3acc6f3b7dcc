"""Builds the GraphQL schema (and nothing else)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from strawberry.extensions import DisableIntrospection, SchemaExtension
from strawberry.printer import print_schema
from strawberry.schema.config import StrawberryConfig

from usage_gateway.resolvers.limits import Limits
from usage_gateway.schema.access import RootFieldAccess
from usage_gateway.schema.answer_caching import AnswerCaching
from usage_gateway.schema.argument_checks import ArgumentChecks
from usage_gateway.schema.errors import ErrorCodes, GatewaySchema
from usage_gateway.schema.limits import CostRateLimit, limit_extensions
from usage_gateway.schema.mutation import Mutation
from usage_gateway.schema.no_nul import NoNulCharacters
from usage_gateway.schema.prepared import PreparedDocuments
from usage_gateway.schema.prepared_validation import PreparedValidation
from usage_gateway.schema.query import Query
from usage_gateway.schema.scalars import SCALARS
from usage_gateway.schema.warnings import Warnings


class ServedSchema(GatewaySchema):
    """The schema with the documents it has validated (:mod:`schema.prepared`, filled by
    :class:`AnswerCaching`), which the view answers cache hits from."""

    def __init__(self, documents: PreparedDocuments, **options: Any) -> None:
        super().__init__(**options)
        self.documents = documents


def build_schema(*, introspection: bool = True, limits: Limits | None = None) -> ServedSchema:
    """The gateway's schema with its safety extensions.

    Without ``introspection``, introspection queries fail validation and error messages make no
    suggestions ("Did you mean …") that would describe the schema anyway. ``limits`` default to
    :class:`~usage_gateway.resolvers.limits.Limits`' defaults. Before an operation runs, its root fields
    are checked against the viewer's roles (:mod:`schema.access`), then its cost is charged to the rate
    limit, then a query may be answered from the answer cache (:mod:`schema.answer_caching`).
    """
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        partial(ErrorCodes, hide_suggestions=not introspection)
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    limits = limits or Limits()
    documents = PreparedDocuments(limits)
    extensions.extend(
        [partial(PreparedValidation, documents), NoNulCharacters, Warnings, *limit_extensions(limits)]
    )
    # The answer cache after access and the rate limit: only what passed them may be answered from it.
    # Arguments last, before anything runs (:mod:`schema.argument_checks`): a cached answer passed them.
    extensions.extend([RootFieldAccess, CostRateLimit, partial(AnswerCaching, documents), ArgumentChecks])
    return ServedSchema(
        documents,
        query=Query,
        mutation=Mutation,
        extensions=extensions,
        config=StrawberryConfig(scalar_map=SCALARS),
    )


def schema_sdl() -> str:
    """The schema as SDL, as committed in ``schema/schema.graphql``."""
    return print_schema(build_schema()) + "\n"
