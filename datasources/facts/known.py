"""Which models and providers the gateway has seen: a filter naming one it has never seen is a typo."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from usage_gateway.datasources.db import Database
from usage_gateway.datasources.facts.vocabulary import Dimension

_ROLLUP_COLUMNS = (Dimension.MODEL, Dimension.PROVIDER)


async def seen_values(db: Database, column: Dimension, values: Sequence[str]) -> set[str]:
    """The ``values`` of ``column`` (a model or a provider) that appear on any stored day (read from the
    month x model x provider rollup: a row per month a model ran, a thirtieth of the daily one)."""
    if column not in _ROLLUP_COLUMNS:
        raise ValueError(f"{column} is not in the model rollups")
    if not values:
        return set()
    query = sql.SQL(
        "SELECT DISTINCT {column} FROM usage_model_months WHERE {column} = ANY(%s::text[])"
    ).format(column=sql.Identifier(column.value))
    rows = await db.fetch_all(query, (list(set(values)),))
    return {row[0] for row in rows}
