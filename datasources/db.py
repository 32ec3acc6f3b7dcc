"""The Postgres pool, with a per-request count of SQL statements.

Everything that runs SQL goes through :class:`Database`, so a request can measure how many statements
it cost (``count_statements``) without wrapping the driver.

When Postgres cannot be reached (down, restarting, a connection it closed), every operation raises
:class:`DatabaseUnavailable`, a clear error for the client, instead of the driver's. While it is so,
taking a connection waits at most :data:`DOWN_WAIT_SECONDS` rather than the pool's full timeout, so
requests fail fast; the pool reconnects by itself, and the first operation that succeeds ends the outage.
The outage is logged once at each end. When it starts, the idle connections are checked (those the
restart broke are replaced once Postgres is back), so recovery does not cost a failed request per
connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import psycopg
import structlog
from psycopg import sql
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from usage_gateway.errors import DatabaseUnavailable

log = structlog.get_logger("usage_gateway.db")

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

DOWN_WAIT_SECONDS = 0.25
# How long the pool keeps retrying one new connection (backing off 1 s, 2 s, …) before it gives up and
# lets the next request start a fresh attempt at once. The pool's default, 300 s, let the backoff grow
# with the outage: after a 20 s outage the first connection came 11 s after Postgres was back.
RECONNECT_SECONDS = 2.0
UNAVAILABLE_MESSAGE = "the database is unavailable; try again shortly"

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
        self._down_since: float | None = None
        self._checking: asyncio.Task[None] | None = None

    @property
    def up(self) -> bool:
        """False from a failure to reach Postgres until an operation succeeds again."""
        return self._down_since is None

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
        """A pooled connection; whatever the body does with it that fails to reach Postgres raises
        :class:`DatabaseUnavailable`."""
        wait = DOWN_WAIT_SECONDS if self._down_since is not None else None
        try:
            async with self.pool.connection(timeout=wait) as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as exc:
            if not _unreachable(exc):
                raise  # e.g. a statement timeout: Postgres is there
            self._failed(exc)
            raise DatabaseUnavailable(UNAVAILABLE_MESSAGE) from exc
        if self._down_since is not None:
            log.warning("postgres.recovered", outage_seconds=round(time.monotonic() - self._down_since, 3))
            self._down_since = None

    def _failed(self, exc: BaseException) -> None:
        if self._down_since is not None:
            return
        self._down_since = time.monotonic()
        log.warning(
            "postgres.unavailable",
            error=str(exc).strip()[:300],
            effect="requests fail with DATABASE_UNAVAILABLE",
        )
        if self._checking is None or self._checking.done():
            self._checking = asyncio.create_task(self._check_idle())

    async def _check_idle(self) -> None:
        with contextlib.suppress(Exception):
            await self.pool.check()

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
            reconnect_timeout=RECONNECT_SECONDS,
        )
        await pool.open(wait=True, timeout=30)
        return cls(pool)

    async def close(self) -> None:
        if self._checking is not None:
            self._checking.cancel()
        await self.pool.close()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
        async with self._connection() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
        async with self._connection() as conn, conn.transaction():
            yield conn

    async def fetch_all(self, query: Query, params: Params = None) -> list[TupleRow]:
        _note(query, params)
        async with self._connection() as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchall()

    async def fetch_one(self, query: Query, params: Params = None) -> TupleRow | None:
        _note(query, params)
        async with self._connection() as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchone()

    async def execute(self, query: Query, params: Params = None) -> int:
        _note(query, params)
        async with self._connection() as conn:
            cursor = await conn.execute(query, params)
            return cursor.rowcount


def _unreachable(exc: psycopg.OperationalError) -> bool:
    """Whether Postgres cannot be used now: no connection in time, a connection lost or refused (no
    SQLSTATE, or class 08), the server shutting down or starting (57P), out of connections or resources
    (53), rather than one statement failing (a timeout, a lock not available)."""
    if isinstance(exc, PoolTimeout):
        return True
    state = exc.sqlstate
    return state is None or state.startswith(("08", "57P", "53"))


def note_statement(query: Query) -> None:
    """Count a statement run on a connection taken directly (inside a transaction)."""
    _note(query)
