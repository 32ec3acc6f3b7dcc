"""The Postgres pool, with a per-request count of SQL statements.

Everything that runs SQL goes through :class:`Database`, so a request can measure how many statements
it cost (``count_statements``) without wrapping the driver.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

Query = str | sql.SQL | sql.Composed
Params = Sequence[Any] | dict[str, Any] | None


@dataclass
class StatementCounter:
    count: int = 0
    statements: list[str] = field(default_factory=list)
    # With ``count_statements(record=True)``: each statement as run, with its parameters (None for those
    # noted by ``note_statement``), so a benchmark can run the same SQL again without the gateway.
    recorded: list[tuple[Query, Params]] | None = None


# Aggregations sort and hash many rows: give them memory, and skip JIT compilation, which costs more
# than it saves on queries of this size.
_SESSION_OPTIONS = "-c work_mem=64MB -c jit=off -c max_parallel_workers_per_gather=0"

_counter: ContextVar[StatementCounter | None] = ContextVar("statement_counter", default=None)


@contextlib.contextmanager
def count_statements(*, record: bool = False) -> Iterator[StatementCounter]:
    """Count the statements run in this context (and the tasks it starts); ``record`` keeps them with
    their parameters too."""
    counter = StatementCounter(recorded=[] if record else None)
    token = _counter.set(counter)
    try:
        yield counter
    finally:
        _counter.reset(token)


def _note(query: Query, params: Params = None) -> None:
    counter = _counter.get()
    if counter is not None:
        counter.count += 1
        counter.statements.append(query if isinstance(query, str) else repr(query))
        if counter.recorded is not None:
            counter.recorded.append((query, params))


class Database:
    """A thin, typed front for an async psycopg pool."""

    def __init__(self, pool: AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]]) -> None:
        self.pool = pool

    @classmethod
    async def open(
        cls, conninfo: str, *, min_size: int = 1, max_size: int = 10, statement_timeout_ms: int = 0
    ) -> Database:
        """A pool of sessions; with ``statement_timeout_ms``, Postgres cancels longer statements."""
        options = _SESSION_OPTIONS + (
            f" -c statement_timeout={statement_timeout_ms}" if statement_timeout_ms else ""
        )
        pool: AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]] = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs={"autocommit": True, "options": options},
            name="usage-gateway",
        )
        await pool.open(wait=True, timeout=30)
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
        async with self.pool.connection() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
        async with self.pool.connection() as conn, conn.transaction():
            yield conn

    async def fetch_all(self, query: Query, params: Params = None) -> list[TupleRow]:
        _note(query, params)
        async with self.pool.connection() as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchall()

    async def fetch_one(self, query: Query, params: Params = None) -> TupleRow | None:
        _note(query, params)
        async with self.pool.connection() as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchone()

    async def execute(self, query: Query, params: Params = None) -> int:
        _note(query, params)
        async with self.pool.connection() as conn:
            cursor = await conn.execute(query, params)
            return cursor.rowcount


def note_statement(query: Query) -> None:
    """Count a statement run on a connection taken directly (inside a transaction)."""
    _note(query)
