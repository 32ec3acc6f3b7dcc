"""The audit log: who did what, when, and how it went (refreshes, syncs, exports, downloads)."""

from __future__ import annotations

from typing import Any

import orjson
from psycopg.types.json import Jsonb

from usage_gateway.datasources.db import Database

__all__ = ["jsonb", "record"]


def _dumps(value: Any) -> str:
    # Dates serialize natively; Decimals, enums and anything else become their text.
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def jsonb(value: Any) -> Jsonb:
    """``value`` as a jsonb parameter (dates as ISO text, Decimals exactly, as strings)."""
    return Jsonb(value, dumps=_dumps)


async def record(
    db: Database,
    *,
    actor: str,
    action: str,
    arguments: dict[str, Any],
    outcome: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one entry to ``audit_log``."""
    await db.execute(
        "INSERT INTO audit_log (actor, action, arguments, outcome, detail) VALUES (%s, %s, %s, %s, %s)",
        (actor, action, jsonb(arguments), outcome, jsonb(detail or {})),
    )
