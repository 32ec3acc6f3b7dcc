"""SQL statements per request for a query with nodes within nodes, at 5, 50 and 500 nodes: DataLoaders
batch each nested field into one statement, so the count must not grow with the nodes."""

from __future__ import annotations

from bench.gateway import BenchError, open_gateway
from bench.plan import Plan
from bench.queries import NESTED, last_days, nested_variables
from bench.report import Figure, Target, ratio


async def statement_counts(
    plan: Plan, database_url: str, redis_url: str
) -> dict[int, tuple[int, float, int]]:
    """Per ``first``: the statements of one request, its milliseconds and the user nodes it returned."""
    first, last = last_days(plan.last_day, plan.dashboard_days)
    counts = {}
    async with open_gateway(database_url, redis_url, last, answer_cache=False) as gateway:
        for nodes in plan.nodes:
            variables = nested_variables(first, last, nodes)
            await gateway.ask(NESTED, variables)  # the day markers, so that only the query's SQL is counted
            answer, statements = await gateway.recorded(NESTED, variables)
            returned = len(answer.data["usage"]["byUser"]["nodes"])
            if not 0 < returned <= nodes:
                raise BenchError(f"byUser(first: {nodes}) returned {returned} nodes")
            counts[nodes] = (len(statements), answer.ms, returned)
    return counts


async def statements_figures(plan: Plan, database_url: str, redis_url: str) -> list[Figure]:
    counts = await statement_counts(plan, database_url, redis_url)
    fewest = plan.nodes[0]
    baseline = counts[fewest][0]
    figures = []
    for nodes in plan.nodes[1:]:
        statements = counts[nodes][0]
        figures.append(
            Figure(
                group="statements",
                name=f"SQL statements per request, {nodes} nodes",
                unit="statements",
                value=statements,
                baseline=baseline,
                baseline_name=f"at {fewest} nodes",
                ratio=ratio(statements, baseline),
                ratio_means=f"statements at {nodes} nodes ÷ at {fewest}",
                target=Target("ratio", "==", 1),
                samples={"statements": [float(counts[n][0]) for n in plan.nodes]},
                details={
                    "nodes": list(plan.nodes),
                    "statements": {str(n): counts[n][0] for n in plan.nodes},
                    "ms": {str(n): counts[n][1] for n in plan.nodes},
                    "user_nodes_returned": {str(n): counts[n][2] for n in plan.nodes},
                },
            )
        )
    return figures
