"""End users, each with a ``user`` token, opening their own usage page: the most frequent request of a
real deployment (every user's page makes it). The page: totals, the daily series, by model and by key,
over the data set's last 30 days (all of them at smoke scale), each request from another user, with the
answer cache off (each user's page is asked once). Measured at 1 client (the baseline) and at the plan's
most clients."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from bench.gateway import SECRET, BenchGateway, open_gateway
from bench.load import Budget, Load, crowd_figures, run_clients
from bench.plan import Plan
from bench.queries import dashboard_variables, last_days
from bench.report import Figure
from usage_gateway.resolvers.viewer import Role
from usage_gateway.server.tokens import issue_token

DAYS = 30
MY_USAGE = """
query MyUsage($from: Date!, $to: Date!) {
  usage(filter: {from: $from, to: $to}) {
    totals { spend requests successRate totalTokens averageLatencyMs activeApiKeys activeModels }
    timeSeries(granularity: DAY) { date metrics { spend requests totalTokens } }
    byModel(first: 20) { totalCount nodes { model providers share metrics { spend requests totalTokens } } }
    byApiKey(first: 20) {
      totalCount nodes { apiKeyId apiKey { keyAlias } share metrics { spend requests totalTokens } }
    }
  }
}"""


def _user_tokens(secret: str, users: int) -> Iterator[str]:
    """A token for each directory user of the reference data, spread over all of them, round and round."""
    stride = 7919  # a prime: visits every user before any comes back
    for n in itertools.count():
        user_id = f"user-{(n * stride) % users:05d}"
        yield issue_token(secret, user_id, [Role.USER])


async def _load(gateway: BenchGateway, tokens: Iterator[str], plan: Plan, clients: int) -> Load:
    first, last = last_days(plan.last_day, min(DAYS, plan.scale.days))
    variables = dashboard_variables(first, last)

    async def one_user() -> None:
        await gateway.ask(MY_USAGE, variables, token=next(tokens))

    budget = Budget(max(plan.requests_at(clients), 10 * clients), plan.load_seconds)
    return await run_clients(clients, one_user, budget=budget, warm_up=True)


async def enduser_figures(plan: Plan, database_url: str, redis_url: str) -> list[Figure]:
    tokens = _user_tokens(SECRET, plan.scale.users)
    async with open_gateway(database_url, redis_url, plan.last_day, answer_cache=False) as gateway:
        alone = await _load(gateway, tokens, plan, 1)
        crowd = await _load(gateway, tokens, plan, plan.clients[-1])
    return crowd_figures("endusers", f"end user's own {DAYS}-d page", crowd, alone, 100)
