"""Builds the GraphQL schema (and nothing else)."""

from __future__ import annotations

from strawberry.extensions import DisableIntrospection, SchemaExtension
from strawberry.printer import print_schema
from strawberry.schema.config import StrawberryConfig

from schema.errors import ErrorCodes, GatewaySchema
from schema.mutation import Mutation
from schema.query import Query
from schema.scalars import SCALARS


def build_schema(*, introspection: bool = True) -> GatewaySchema:
    """The gateway's schema; without ``introspection``, introspection queries fail validation."""
    extensions: list[type[SchemaExtension]] = [ErrorCodes]
    if not introspection:
        extensions.append(DisableIntrospection)
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,
        config=StrawberryConfig(scalar_map=SCALARS),
    )


def schema_sdl() -> str:
    """The schema as SDL, as committed in ``schema/schema.graphql``."""
    return print_schema(build_schema()) + "\n"
