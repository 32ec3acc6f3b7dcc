"""The baseline of the warm figures: the very SQL statements the gateway ran for a request, with their
parameters, run again straight on psycopg — no GraphQL, no resolvers, no JSON — over a pool opened like
the gateway's (same size, session options, statement timeout and wait for a connection)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import psycopg

from bench.gateway import BenchError, BenchGateway
from usage_gateway.datasources.db import Database, Params, Query

Statements = Sequence[tuple[Query, Params]]


@dataclass
class BareSQL:
    db: Database

    async def _run(self, query: Query, params: Params) -> None:
        async with self.db.pool.connection() as conn:
            cursor = await conn.execute(query, params)
            await cursor.fetchall()

    async def sequential(self, statements: Statements) -> float:
        """Milliseconds to run the statements one after another on one connection."""
        began = time.perf_counter()
        try:
            async with self.db.pool.connection() as conn:
                for query, params in statements:
                    cursor = await conn.execute(query, params)
                    await cursor.fetchall()
        except psycopg.Error as exc:  # a statement or pool timeout, as the gateway would meet it
            raise BenchError(f"bare SQL: {exc}") from exc
        return (time.perf_counter() - began) * 1000

    async def concurrent(self, statements: Statements) -> float:
        """Milliseconds to run the statements all at once, each on a connection of the pool (a lower
        bound for the gateway, whose later statements wait for the ids the earlier ones return)."""
        began = time.perf_counter()
        try:
            await asyncio.gather(*(self._run(query, params) for query, params in statements))
        except psycopg.Error as exc:
            raise BenchError(f"bare SQL: {exc}") from exc
        return (time.perf_counter() - began) * 1000


@asynccontextmanager
async def open_bare(database_url: str, like: BenchGateway) -> AsyncIterator[BareSQL]:
    """A pool like the gateway's: its size and statement timeout (and psycopg_pool's 30 s wait)."""
    timeout_ms = round(like.resources.settings.db_statement_timeout_seconds * 1000)
    db = await Database.open(
        database_url, max_size=like.resources.db.pool.max_size, statement_timeout_ms=timeout_ms
    )
    try:
        yield BareSQL(db)
    finally:
        await db.close()
