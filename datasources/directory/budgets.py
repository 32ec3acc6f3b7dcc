"""LiteLLM's budgets of keys, users and teams (``max_budget``, ``budget_duration``, ``budget_reset_at``)
into the ``budgets`` table (migration 0010), as part of ``syncDirectory``.

Only the current setting is kept: a sync writes the budgets it read and deletes the rows of entities it
read without a budget or did not read at all (a deleted or blocked key's budget no longer applies). A
``max_budget`` of null is no budget; LiteLLM's double is stored as the exact decimal of its shortest
repr, as spend is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from usage_gateway.datasources.db import note_statement


class BudgetEntity(StrEnum):
    API_KEY = "API_KEY"
    USER = "USER"
    TEAM = "TEAM"


# (entity, entity id, max_budget, budget_duration, budget_reset_at)
BudgetRow = tuple[str, str, Decimal, str | None, datetime | None]


def _limit(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return Decimal(repr(float(value)))


def _duration(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    # LiteLLM's UI sends the strings "None"/"null" for "no reset" (duration_parser treats them as None).
    return None if value.lower() in ("", "none", "null") else value


def _reset_at(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)  # LiteLLM's columns: UTC


def budget_row(entity: BudgetEntity, entity_id: str, obj: Mapping[str, Any]) -> BudgetRow | None:
    """The budget of one LiteLLM key, user or team object; None when it has none."""
    limit = _limit(obj.get("max_budget"))
    if limit is None:
        return None
    return (
        entity.value,
        entity_id,
        limit,
        _duration(obj.get("budget_duration")),
        _reset_at(obj.get("budget_reset_at")),
    )


def budget_rows(
    keys: Iterable[Mapping[str, Any]], users: Iterable[Mapping[str, Any]], teams: Iterable[Mapping[str, Any]]
) -> list[BudgetRow]:
    """The budgets of live keys (listed, not blocked; by token hash), users and teams, one per entity."""
    rows: dict[tuple[str, str], BudgetRow] = {}
    sources = (
        (BudgetEntity.API_KEY, "token", keys),
        (BudgetEntity.USER, "user_id", users),
        (BudgetEntity.TEAM, "team_id", teams),
    )
    for entity, id_field, objects in sources:
        for obj in objects:
            entity_id = obj.get(id_field)
            if not isinstance(entity_id, str) or not entity_id:
                continue
            if entity is BudgetEntity.API_KEY and obj.get("blocked") is True:
                continue
            row = budget_row(entity, entity_id, obj)
            if row is not None:
                rows.setdefault((row[0], row[1]), row)
    return list(rows.values())


_MERGE = """
WITH merged AS (
    INSERT INTO budgets AS b (entity, entity_id, max_budget, budget_duration, budget_reset_at, updated_at)
    SELECT entity, entity_id, max_budget, budget_duration, budget_reset_at, now() FROM sync_budgets
    ON CONFLICT (entity, entity_id) DO UPDATE
       SET max_budget = EXCLUDED.max_budget, budget_duration = EXCLUDED.budget_duration,
           budget_reset_at = EXCLUDED.budget_reset_at, updated_at = now()
     WHERE (b.max_budget, b.budget_duration, b.budget_reset_at)
           IS DISTINCT FROM (EXCLUDED.max_budget, EXCLUDED.budget_duration, EXCLUDED.budget_reset_at)
    RETURNING 1
)
SELECT count(*) FROM merged
"""

_DELETE_GONE = """
DELETE FROM budgets b
 WHERE b.entity = ANY(%s)
   AND NOT EXISTS (SELECT 1 FROM sync_budgets s WHERE (s.entity, s.entity_id) = (b.entity, b.entity_id))
"""


async def merge_budgets(
    conn: psycopg.AsyncConnection[TupleRow], rows: Sequence[BudgetRow], entities: Sequence[BudgetEntity]
) -> int:
    """Replace the budgets of ``entities`` (those whose complete listing was read) with ``rows``, inside
    the caller's transaction; how many rows were written or deleted."""
    statement = (
        "CREATE TEMP TABLE sync_budgets (entity text, entity_id text, max_budget numeric,"
        " budget_duration text, budget_reset_at timestamptz, PRIMARY KEY (entity, entity_id)) ON COMMIT DROP"
    )
    note_statement(statement)
    await conn.execute(statement)
    copy_statement = (
        "COPY sync_budgets (entity, entity_id, max_budget, budget_duration, budget_reset_at) FROM STDIN"
    )
    note_statement(copy_statement)
    async with conn.cursor() as cursor, cursor.copy(copy_statement) as copy:
        for row in rows:
            await copy.write_row(row)
    note_statement(_MERGE)
    written = await (await conn.execute(_MERGE)).fetchone()
    note_statement(_DELETE_GONE)
    deleted = (await conn.execute(_DELETE_GONE, ([entity.value for entity in entities],))).rowcount
    return (int(written[0]) if written else 0) + deleted
