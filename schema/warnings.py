"""``extensions.warnings``: what the client should know about an answer that is not an error.

Today that is the days whose numbers are in the answer but did not add up to LiteLLM's own totals
(``UNVERIFIED_DAYS``, collected by ``Context.note``) and a ``user`` token whose subject is no directory
user (``UNKNOWN_VIEWER``, by ``resolvers.filters``); the resolvers collect them while they work.
"""

from __future__ import annotations

from typing import Any

from strawberry.extensions import SchemaExtension

from usage_gateway.resolvers.context import Context


class Warnings(SchemaExtension):
    def get_results(self) -> dict[str, Any]:
        context = self.execution_context.context
        if not isinstance(context, Context) or not context.warnings:
            return {}
        return {"warnings": [warning.as_json() for warning in context.warnings]}
