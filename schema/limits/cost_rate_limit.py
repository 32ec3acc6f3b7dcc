"""The rate limit by cost: before an operation runs, its estimated cost is charged to the viewer's budget
(:class:`~datasources.rate_limit.CostRateLimiter`); over budget, it does not run and the response is
HTTP 429 with ``Retry-After`` (set by the view from the context)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from graphql import ExecutionResult, GraphQLError
from strawberry.extensions import SchemaExtension

from usage_gateway.errors import RateLimited
from usage_gateway.resolvers.context import Context


class CostRateLimit(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        limiter = context.budget.limiter if isinstance(context, Context) else None
        if isinstance(context, Context) and limiter is not None and execution.result is None:
            budget = context.budget
            retry_after = await limiter.charge(context.viewer.id, budget.cost)
            if retry_after is not None:
                budget.retry_after = retry_after
                message = f"rate limit: this query costs {budget.cost}; retry in {retry_after} s"
                error = GraphQLError(message, original_error=RateLimited(message, retry_after))
                execution.result = ExecutionResult(data=None, errors=[error])
        yield
