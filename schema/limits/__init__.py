"""Limits on what one GraphQL request may ask: one extension per file, each answering an operation over
its limit with ``QUERY_TOO_COMPLEX`` and the limit in the message, before anything runs.

    tokens   MaxTokens     the parser stops past ``max_tokens`` tokens
    depth    MaxDepth      fields nested deeper than ``max_depth``
    aliases  MaxAliases    more than ``max_aliases`` aliased fields
    cost     QueryCost     an estimated cost over ``max_cost`` (reported in every response)
    rate     CostRateLimit the viewer's cost budget per window is spent (HTTP 429)

The rest of the limits are not GraphQL's: the body size, the operation timeout and the HTTP method sit in
the view (:mod:`server.graphql_view`), ``first`` and ``MAX_RANGE_DAYS`` in the resolvers (checked for the
whole operation before it runs by :mod:`schema.argument_checks`), admission control in
:mod:`server.admission`, and Postgres' ``statement_timeout`` in the connection settings.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from strawberry.extensions import SchemaExtension

from usage_gateway.resolvers.limits import Limits
from usage_gateway.schema.limits.aliases import MaxAliases
from usage_gateway.schema.limits.cost import QueryCost
from usage_gateway.schema.limits.cost_rate_limit import CostRateLimit
from usage_gateway.schema.limits.depth import MaxDepth
from usage_gateway.schema.limits.tokens import MaxTokens


def limit_extensions(limits: Limits) -> list[Callable[[], SchemaExtension]]:
    """The extensions enforcing ``limits``, in the order they apply (each built fresh per request)."""
    return [
        partial(MaxTokens, limits.max_tokens),
        partial(MaxDepth, limits.max_depth),
        partial(MaxAliases, limits.max_aliases),
        partial(QueryCost, limits),
    ]


__all__ = ["CostRateLimit", "limit_extensions"]
