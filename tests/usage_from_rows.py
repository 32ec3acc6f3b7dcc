"""What ``usage`` must answer, computed by SQL ``GROUP BY`` straight over LiteLLM's rows; and the gateway
app reading a LiteLLM at a chosen page size, on a database of its own.

The rows go into a temporary table beside the gateway's tables, the directory's key owners into another;
nothing of the gateway's (its facts, its ``attributed_user`` function, its directory tables) is read.
The rules written out below are the product's (DESIGN §4, CONTRACT §2.5):

- buckets: an empty ``api_key`` is ``unattributed``; a NULL or empty ``model`` is ``unknown-model``, a
  NULL or empty ``custom_llm_provider`` is ``unknown``, a NULL or empty ``user_id`` is LiteLLM's
  ``Unassigned``; tool and endpoint are summed away;
- a fact is a (date × key bucket × LiteLLM user × model × provider) cell with some usage in it: a cell whose
  every number is zero is no fact (it counts nowhere, not even as an active model);
- attribution: the directory owner of the key, else ``litellm:<user_id>``, else ``unattributed``;
- active counts: distinct attributed users but ``unattributed``, distinct key buckets but
  ``unattributed``, distinct model buckets.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg

from tests.api_client import Gateway, open_gateway
from tests.conftest import TEMPLATE_DB
from usage_gateway.datasources.daycache.days import Clock
from usage_gateway.datasources.facts.aggregates import Dimension, GroupRow, UsageTotals
from usage_gateway.devtools.local_services import LocalPostgres

_SCHEMA = """
CREATE TEMP TABLE source_rows (
    date                         date NOT NULL,
    user_id                      text,
    api_key                      text NOT NULL,
    model                        text,
    provider                     text,
    tool                         text,
    endpoint                     text,
    spend                        numeric NOT NULL,  -- the exact decimal of the row's double
    prompt_tokens                bigint NOT NULL,
    completion_tokens            bigint NOT NULL,
    cache_read_input_tokens      bigint NOT NULL,
    cache_creation_input_tokens  bigint NOT NULL,
    api_requests                 bigint NOT NULL,
    successful_requests          bigint NOT NULL,
    failed_requests              bigint NOT NULL,
    total_response_time_ms       bigint NOT NULL,
    timed_requests               bigint NOT NULL,
    -- LiteLLM's unique index, NULL a value of its own: the generated rows must keep it so.
    UNIQUE NULLS NOT DISTINCT (user_id, date, api_key, model, provider, tool, endpoint)
);
CREATE TEMP TABLE source_owners (token_hash text PRIMARY KEY, user_id text NOT NULL);
CREATE TEMP VIEW source_cells AS
SELECT date,
       CASE WHEN api_key = '' THEN 'unattributed'
            WHEN api_key = 'unattributed' OR api_key LIKE 'raw:%' THEN 'raw:' || api_key
            ELSE api_key END AS api_key,
       COALESCE(NULLIF(user_id, ''), 'Unassigned') AS litellm_user_id,
       COALESCE(NULLIF(model, ''), 'unknown-model') AS model,
       COALESCE(NULLIF(provider, ''), 'unknown') AS provider,
       sum(spend) AS spend,
       sum(prompt_tokens) AS prompt_tokens,
       sum(completion_tokens) AS completion_tokens,
       sum(cache_read_input_tokens) AS cache_read_input_tokens,
       sum(cache_creation_input_tokens) AS cache_creation_input_tokens,
       sum(prompt_tokens + completion_tokens) AS total_tokens,
       sum(api_requests) AS api_requests,
       sum(successful_requests) AS successful_requests,
       sum(failed_requests) AS failed_requests,
       sum(total_response_time_ms) AS total_response_time_ms,
       sum(timed_requests) AS timed_requests
  FROM source_rows
 GROUP BY 1, 2, 3, 4, 5
HAVING (sum(spend), sum(prompt_tokens), sum(completion_tokens), sum(cache_read_input_tokens),
        sum(cache_creation_input_tokens), sum(api_requests), sum(successful_requests),
        sum(failed_requests), sum(total_response_time_ms), sum(timed_requests))
       <> (0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
CREATE TEMP VIEW source_usage AS
SELECT c.*,
       CASE WHEN c.api_key = 'unattributed' THEN 'unattributed'
            WHEN o.user_id IS NOT NULL THEN o.user_id
            WHEN c.litellm_user_id <> 'Unassigned' THEN 'litellm:' || c.litellm_user_id
            ELSE 'unattributed' END AS user_id
  FROM source_cells c LEFT JOIN source_owners o ON o.token_hash = c.api_key;
"""
# UsageTotals' fields, in order.
_TOTALS = """
    sum(spend), sum(api_requests), sum(successful_requests), sum(failed_requests), sum(prompt_tokens),
    sum(completion_tokens), sum(cache_read_input_tokens), sum(cache_creation_input_tokens), sum(total_tokens),
    sum(total_response_time_ms), sum(timed_requests),
    count(DISTINCT user_id) FILTER (WHERE user_id <> 'unattributed'),
    count(DISTINCT api_key) FILTER (WHERE api_key <> 'unattributed'),
    count(DISTINCT model)
"""
_COLUMNS = {  # psycopg.sql is overkill for four fixed names
    Dimension.USER: "user_id",
    Dimension.API_KEY: "api_key",
    Dimension.MODEL: "model",
    Dimension.PROVIDER: "provider",
}
_RELATED = {Dimension.MODEL: "provider", Dimension.PROVIDER: "model"}


class UsageFromRows:
    """The expected numbers, by SQL over the source rows, on a connection of its own (temp tables)."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn

    @classmethod
    @asynccontextmanager
    async def over(
        cls, database_url: str, rows: Iterable[Mapping[str, Any]], owners: Mapping[str, str]
    ) -> AsyncIterator[UsageFromRows]:
        """Load ``rows`` (LiteLLM_DailyUserSpend rows) and ``owners`` (token hash → directory user)."""
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await conn.execute(_SCHEMA)
            async with conn.cursor() as cursor:
                async with cursor.copy("COPY source_rows FROM STDIN") as copy:
                    for row in rows:
                        await copy.write_row(
                            (
                                row["date"],
                                row["user_id"],
                                row["api_key"],
                                row["model"],
                                row["custom_llm_provider"],
                                row["mcp_namespaced_tool_name"],
                                row["endpoint"],
                                Decimal(repr(float(row["spend"]))),
                                row["prompt_tokens"],
                                row["completion_tokens"],
                                row["cache_read_input_tokens"],
                                row["cache_creation_input_tokens"],
                                row["api_requests"],
                                row["successful_requests"],
                                row["failed_requests"],
                                row["total_response_time_ms"],
                                row["timed_requests"],
                            )
                        )
                await cursor.executemany("INSERT INTO source_owners VALUES (%s, %s)", list(owners.items()))
            yield cls(conn)

    async def totals(self, start: date, end: date) -> UsageTotals:
        cursor = await self._conn.execute(
            f"SELECT {_TOTALS} FROM source_usage WHERE date BETWEEN %s AND %s", (start, end)
        )
        found = await cursor.fetchone()
        assert found is not None
        return UsageTotals.from_values(found)

    async def daily(self, start: date, end: date) -> list[tuple[date, UsageTotals]]:
        """One point per day of the range, days without usage included (as zeros)."""
        cursor = await self._conn.execute(
            f"SELECT day::date, {_TOTALS}"
            " FROM generate_series(%s::date, %s::date, interval '1 day') AS day"
            " LEFT JOIN source_usage ON source_usage.date = day::date"
            " GROUP BY day ORDER BY day",
            (start, end),
        )
        return [(row[0], UsageTotals.from_values(row[1:])) for row in await cursor.fetchall()]

    async def groups(self, dimension: Dimension, start: date, end: date) -> dict[str, GroupRow]:
        """The groups of a breakdown by their key (bucket), with their last active date and, for a model
        its providers, for a provider its models (sorted)."""
        column = _COLUMNS[dimension]
        related = _RELATED.get(dimension)
        listed = f"array_agg(DISTINCT {related} ORDER BY {related})" if related else "NULL::text[]"
        cursor = await self._conn.execute(
            f"SELECT {column}, max(date), {listed}, {_TOTALS} FROM source_usage"
            f" WHERE date BETWEEN %s AND %s GROUP BY {column}",
            (start, end),
        )
        return {
            row[0]: GroupRow(
                key=row[0],
                totals=UsageTotals.from_values(row[3:]),
                last_active=row[1],
                related=tuple(row[2] or ()),
            )
            for row in await cursor.fetchall()
        }


@asynccontextmanager
async def fresh_database(server: LocalPostgres) -> AsyncIterator[str]:
    """A database of its own, cloned from the migrated template, dropped on exit."""
    name = f"rows_{uuid.uuid4().hex}"
    async with await psycopg.AsyncConnection.connect(server.url, autocommit=True) as conn:
        await conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
    try:
        yield server.url_for(name)
    finally:
        async with await psycopg.AsyncConnection.connect(server.url, autocommit=True) as conn:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@asynccontextmanager
async def litellm_gateway(
    database_url: str,
    redis_url: str,
    litellm_url: str,
    *,
    clock: Clock,
    page_size: int = 1000,
    **overrides: Any,
) -> AsyncIterator[Gateway]:
    """As :func:`tests.api_client.open_gateway`, its day cache reading LiteLLM ``page_size`` rows a page,
    without query cost or rate limits (these tests ask for every field at once, page after page;
    tests/test_limits.py covers the limits)."""
    async with open_gateway(
        database_url,
        redis_url,
        litellm_url=litellm_url,
        clock=clock,
        litellm_page_size=page_size,
        max_query_cost=10_000_000,
        rate_limit_cost=0,
        **overrides,
    ) as gateway:
        yield gateway
