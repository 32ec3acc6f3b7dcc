"""Usage exports: rows grouped by chosen dimensions, streamed from Postgres to a file, tracked in ``exports``.

One export reads one consistent snapshot (a REPEATABLE READ, READ ONLY transaction) and streams its rows
:data:`FETCH_ROWS` at a time, handing each batch to a writer in a worker thread, so the event loop stays
free and memory holds a few batches whatever the size. CSV, XLSX and Parquet read the rows as Postgres'
own CSV (``COPY … TO STDOUT``, no Python object per value: a year of rows costs little more than the
COPY alone) and count them as they go, checked against COPY's count; JSON and NDJSON count the rows
first (JSON's metadata names the count before the rows), then page a server-side cursor. The file is
written under a temporary name, fsynced and renamed, so the final name only ever holds a complete file;
its sha256 and size are computed from the bytes as they are written.

Each row is a group of facts matching the filter with every additive metric: spend as the exact decimal
sum, request and token counts, response time. Names come with the ids: a user's username and email from
``users``; a key's directory id and name from ``api_keys``, its alias from there or else from what LiteLLM
reported (``litellm_keys``). Rows are ordered by the group columns (byte-wise), so the same data gives the
same file. Summing any column over the rows gives ``facts.totals(filter)`` exactly; grouped by a side
roll-up (``MODEL_GROUP``, ``ENDPOINT``, ``MCP_SERVER``: :mod:`.side_source`), that roll-up's total, which for
endpoints and MCP tools leaves out the usage without one.

Inline or background: :func:`estimate_rows` counts the facts the export reads (its cost, and an upper
bound of its rows). Up to :data:`INLINE_EXPORT_MAX_FACTS` (50,000) the export can run inside the mutation:
on 2 cores that is under a second in CSV, XLSX or Parquet (their Python side costs 2–6 µs of CPU per row
beside Postgres' COPY, ~10 µs a row) and about 1 s in JSON or NDJSON (~20 µs per row). Anything larger
goes to :func:`start_in_background`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import structlog
from psycopg import AsyncConnection, sql

from usage_gateway.datasources.audit import jsonb
from usage_gateway.datasources.db import Database, Params, Query, note_statement
from usage_gateway.datasources.exports.columns import Column
from usage_gateway.datasources.exports.query import (
    ALL_DIMENSIONS,
    ExportDimension,
    copy_statement,
    count_query,
    export_columns,
    export_query,
    facts_count_query,
    filter_from_json,
    filter_to_json,
    normalise_group_by,
    reads_tags,
)
from usage_gateway.datasources.exports.sink import HashingSink, WrittenFile
from usage_gateway.datasources.exports.tables import copy_table
from usage_gateway.datasources.exports.writers import FEEDS, ExportFormat, Feed, RowWriter, open_writer
from usage_gateway.datasources.facts.vocabulary import FactFilter
from usage_gateway.datasources.metrics import EXPORT_BYTES, EXPORT_DURATION, EXPORT_ROWS, EXPORTS
from usage_gateway.errors import GatewayError

__all__ = [
    "ALL_DIMENSIONS",
    "FETCH_ROWS",
    "INLINE_EXPORT_MAX_FACTS",
    "ExportDimension",
    "ExportFormat",
    "ExportRecord",
    "ExportStatus",
    "WrittenFile",
    "create_export",
    "estimate_rows",
    "expire_exports",
    "fail_abandoned_exports",
    "finish_background",
    "get_export",
    "reads_tags",
    "run_export",
    "start_in_background",
    "write_export",
]

log = structlog.get_logger(__name__)

INLINE_EXPORT_MAX_FACTS = 50_000
FETCH_ROWS = 5_000
BATCHES_AHEAD = 8  # fetched batches that may wait for the writer (a few MB)

# (rows written so far, rows in the export; for CSV, XLSX and Parquet the facts read: as many or more)
Progress = Callable[[int, int], None]


class ExportStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"


@dataclass(frozen=True)
class ExportRecord:
    """A row of ``exports``; ``path`` is the file's name relative to EXPORT_DIR (set once DONE)."""

    id: str
    requested_by: str
    status: ExportStatus
    format: ExportFormat
    row_count: int | None
    byte_size: int | None
    sha256: str | None
    error: str | None
    expires_at: datetime
    path: str | None
    created_at: datetime
    finished_at: datetime | None
    filter: FactFilter
    group_by: tuple[ExportDimension, ...]


async def estimate_rows(
    db: Database, f: FactFilter, group_by: Sequence[ExportDimension] = ALL_DIMENSIONS
) -> int:
    """The facts an export reads: an upper bound of its rows and the measure of its cost (whatever the
    grouping, every matching fact is read). Compare with :data:`INLINE_EXPORT_MAX_FACTS`."""
    row = await db.fetch_one(*facts_count_query(f, group_by))
    return int(row[0]) if row else 0


# --- Writing a file -------------------------------------------------------------------------------------


def export_metadata(
    f: FactFilter, group_by: Sequence[ExportDimension], generated_at: datetime, row_count: int | None
) -> dict[str, Any]:
    """What JSON and Parquet files say of themselves; ``row_count`` None for a writer that counts (Parquet
    writes its metadata last)."""
    return {
        "filter": filter_to_json(f),
        "groupBy": [d.value for d in group_by],
        "generatedAt": generated_at.isoformat(),
        "rowCount": row_count,
    }


async def write_export(
    db: Database,
    f: FactFilter,
    fmt: ExportFormat,
    group_by: Sequence[ExportDimension],
    destination: Path,
    *,
    on_progress: Progress | None = None,
) -> WrittenFile:
    """Stream the export's rows into ``destination`` (replaced atomically); nothing is left under that name
    or beside it if anything fails."""
    fmt, group_by = ExportFormat(fmt), normalise_group_by(group_by)
    started, label = time.perf_counter(), fmt.value.lower()
    try:
        written = await _write_export(db, f, fmt, group_by, destination, on_progress)
    except BaseException:
        EXPORTS.labels(label, "failed").inc()
        raise
    EXPORTS.labels(label, "done").inc()
    EXPORT_DURATION.labels(label).observe(time.perf_counter() - started)
    EXPORT_BYTES.labels(label).inc(written.byte_size)
    EXPORT_ROWS.labels(label).inc(written.rows)
    return written


async def _write_export(
    db: Database,
    f: FactFilter,
    fmt: ExportFormat,
    group_by: Sequence[ExportDimension],
    destination: Path,
    on_progress: Progress | None,
) -> WrittenFile:
    columns = export_columns(group_by)
    query, params = export_query(f, group_by)
    feed = FEEDS[fmt]
    async with db.transaction() as conn:
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        for setting in _EXPORT_SETTINGS:
            await conn.execute(setting)
        if feed is Feed.ROWS:
            total = await _count(conn, *count_query(f, group_by))
        else:
            # Counting the groups costs a tenth of the COPY (it groups every fact again): the progress
            # counts against the facts read, a bound of the rows, and COPY counts the rows.
            total = await _count(conn, *facts_count_query(f, group_by)) if on_progress is not None else 0
        metadata = export_metadata(f, group_by, datetime.now(UTC), total if feed is Feed.ROWS else None)
        sink = await asyncio.to_thread(HashingSink.create, destination)
        writer: RowWriter | None = None
        try:
            writer = open_writer(fmt, sink.stream, columns, metadata)
            write = writer.write
            if feed is Feed.ARROW:
                write = functools.partial(_write_table, writer, columns)
            note_statement(query)
            batches = _fetched(conn, query, params) if feed is Feed.ROWS else _copied(conn, query, params)
            written = await _pipe(batches, write, total, on_progress)
            if feed is Feed.ROWS and written != total:
                # One snapshot: cannot happen; never pass a file contradicting its count.
                raise RuntimeError(f"export wrote {written} rows, counted {total}")
            await asyncio.to_thread(writer.close)
            return await asyncio.to_thread(sink.commit, written)
        except BaseException:
            sink.discard()
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.abort()
            raise


_EXPORT_SETTINGS = (
    # An export is one long statement (a year of rows: a minute), bounded by MAX_RANGE_DAYS, not by the
    # timeout meant for a request's queries.
    "SET LOCAL statement_timeout = 0",
    # COPY writes dates and text as the session says; the writers expect ISO dates and UTF-8.
    "SET LOCAL DateStyle = 'ISO, YMD'",
    "SET LOCAL client_encoding = 'UTF8'",
    # A cursor is planned for its first rows (cursor_tuple_fraction 0.1), which picked plans 10× slower for
    # a whole year; an export reads every row.
    "SET LOCAL cursor_tuple_fraction = 1.0",
)


async def _count(conn: AsyncConnection[Any], query: Query, params: Params) -> int:
    note_statement(query)
    row = await (await conn.execute(query, params)).fetchone()
    return int(row[0]) if row else 0


async def _fetched(conn: AsyncConnection[Any], query: Query, params: Params) -> AsyncGenerator[list[Any]]:
    """The rows as tuples, :data:`FETCH_ROWS` at a time, from a server-side cursor."""
    async with conn.cursor(name="usage_export") as cursor:
        await cursor.execute(query, params)
        while rows := await cursor.fetchmany(FETCH_ROWS):
            yield rows


async def _copied(
    conn: AsyncConnection[Any], query: sql.Composed, params: Params
) -> AsyncGenerator[list[Any]]:
    """The rows as Postgres' CSV lines (one row each), :data:`FETCH_ROWS` at a time; fails at the end if
    COPY sent another number of rows than were read."""
    read_lines = 0
    async with conn.cursor() as cursor:
        async with cursor.copy(copy_statement(query), params) as copy:
            lines: list[Any] = []
            read, append = copy.read, lines.append
            while line := await read():  # a third less CPU per row than ``async for``
                append(line)
                if len(lines) >= FETCH_ROWS:
                    read_lines += len(lines)
                    yield lines
                    lines = []
                    append = lines.append
            if lines:
                read_lines += len(lines)
                yield lines
        if cursor.rowcount != read_lines:
            raise RuntimeError(f"COPY sent {cursor.rowcount} rows, {read_lines} were read")


def _write_table(writer: RowWriter, columns: Sequence[Column], lines: Sequence[Any]) -> None:
    writer.write(copy_table(lines, columns))


async def _pipe(
    batches: AsyncGenerator[list[Any]], write: Callable[[Any], None], total: int, on_progress: Progress | None
) -> int:
    """Write every batch in a worker thread, in order, while the next are fetched: up to
    :data:`BATCHES_AHEAD` wait, so that a slow write (a Parquet row group) does not stall Postgres.
    Returns the rows written."""
    written = 0
    waiting: collections.deque[list[Any]] = collections.deque()
    writing: asyncio.Future[None] | None = None
    writing_rows = 0

    def start() -> None:
        nonlocal writing, writing_rows
        batch = waiting.popleft()
        writing, writing_rows = asyncio.ensure_future(asyncio.to_thread(write, batch)), len(batch)

    async def finish() -> None:
        nonlocal writing, written
        assert writing is not None
        await writing
        writing, written = None, written + writing_rows
        if on_progress is not None:
            on_progress(written, total)

    try:
        async with contextlib.aclosing(batches):
            async for batch in batches:
                waiting.append(batch)
                if writing is not None and (writing.done() or len(waiting) > BATCHES_AHEAD):
                    await finish()
                if writing is None:
                    start()
        while writing is not None:
            await finish()
            if waiting:
                start()
    finally:
        # The writer is idle again before anything else touches it, even when a fetch failed or the
        # export was cancelled.
        if writing is not None:
            with contextlib.suppress(Exception):
                await writing
    return written


# --- The exports table ----------------------------------------------------------------------------------

_RECORD_FIELDS = tuple(field.name for field in fields(ExportRecord))
_RECORD_COLUMNS = ", ".join(_RECORD_FIELDS)


def _record(row: Sequence[Any]) -> ExportRecord:
    values = dict(zip(_RECORD_FIELDS, row, strict=True))
    values["status"] = ExportStatus(values["status"])
    values["format"] = ExportFormat(values["format"])
    values["filter"] = filter_from_json(values["filter"])
    values["group_by"] = tuple(ExportDimension(d) for d in values["group_by"])
    return ExportRecord(**values)


async def _update(db: Database, query: str, params: Sequence[Any]) -> ExportRecord | None:
    row = await db.fetch_one(f"{query} RETURNING {_RECORD_COLUMNS}", params)
    return None if row is None else _record(row)


async def create_export(
    db: Database,
    *,
    requested_by: str,
    filter: FactFilter,
    fmt: ExportFormat,
    group_by: Sequence[ExportDimension] | None = None,
    ttl_hours: float,
) -> ExportRecord:
    """A PENDING export; :func:`run_export` produces its file."""
    record = await _update(
        db,
        "INSERT INTO exports (id, requested_by, filter, format, group_by, expires_at)"
        " VALUES (%s, %s, %s, %s, %s, now() + %s)",
        (
            str(uuid.uuid4()),
            requested_by,
            jsonb(filter_to_json(filter)),
            ExportFormat(fmt).value,
            [d.value for d in normalise_group_by(group_by)],
            timedelta(hours=ttl_hours),
        ),
    )
    assert record is not None  # INSERT … RETURNING returns the row
    return record


async def get_export(db: Database, export_id: str) -> ExportRecord | None:
    row = await db.fetch_one(f"SELECT {_RECORD_COLUMNS} FROM exports WHERE id = %s", (export_id,))
    return None if row is None else _record(row)


def _failure_message(exc: BaseException) -> str:
    """What the requester may read; details stay in the logs."""
    if isinstance(exc, GatewayError):
        return exc.message
    if isinstance(exc, OSError):
        return f"the export file could not be written ({exc.strerror or type(exc).__name__})"
    return "internal error while exporting"


# With hashtext(id): the session advisory lock a process holds while it runs that export (see _running).
RUN_LOCKS = 7_250_303
ABANDONED_PENDING = timedelta(minutes=5)
STOPPED_MESSAGE = "the gateway stopped before the export finished; request it again"


@contextlib.asynccontextmanager
async def _running(db: Database, export_id: str) -> AsyncIterator[bool]:
    """Whether this process may run the export: it holds the export's advisory lock, on a connection of
    its own, from before the export is claimed until its outcome is stored. Postgres drops the lock with
    the connection when the process dies, so a RUNNING export whose lock is free has no runner left
    (:func:`fail_abandoned_exports`), whichever replica it ran on."""
    async with db.connection() as conn:
        row = await (
            await conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", (RUN_LOCKS, export_id))
        ).fetchone()
        if not (row and row[0]):
            yield False
            return
        try:
            yield True
        finally:
            try:
                await conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (RUN_LOCKS, export_id))
            except Exception:
                # A pooled connection must not go back still holding the lock: closed, it is discarded.
                await conn.close()


async def run_export(
    db: Database, export_id: str, export_dir: Path, *, on_progress: Progress | None = None
) -> ExportRecord:
    """Produce the file of a PENDING export under ``export_dir`` and mark it DONE, or FAILED with a reason.

    An export that is not PENDING (already run, running elsewhere, expired) is returned as it is. If the
    task is cancelled (the gateway stops), the export is marked FAILED before the cancellation goes on.
    """
    async with _running(db, export_id) as mine:
        if mine:
            return await _run_claimed(db, export_id, export_dir, on_progress)
    found = await get_export(db, export_id)
    if found is None:
        raise LookupError(f"no export {export_id!r}")
    return found


async def _run_claimed(
    db: Database, export_id: str, export_dir: Path, on_progress: Progress | None
) -> ExportRecord:
    claimed = await _update(
        db, "UPDATE exports SET status = 'RUNNING' WHERE id = %s AND status = 'PENDING'", (export_id,)
    )
    if claimed is None:
        found = await get_export(db, export_id)
        if found is None:
            raise LookupError(f"no export {export_id!r}")
        return found
    name = f"{claimed.id}.{claimed.format.extension}"
    try:
        await asyncio.to_thread(export_dir.mkdir, parents=True, exist_ok=True)
        written = await write_export(
            db, claimed.filter, claimed.format, claimed.group_by, export_dir / name, on_progress=on_progress
        )
    except BaseException as exc:
        if isinstance(exc, Exception):
            log.error("export.failed", export_id=export_id, exc_info=exc)
        else:  # cancelled (the gateway stops): no traceback, it says nothing
            log.warning("export.cancelled", export_id=export_id)
        failing = _update(
            db,
            "UPDATE exports SET status = 'FAILED', error = %s, finished_at = now() WHERE id = %s",
            (_failure_message(exc) if isinstance(exc, Exception) else STOPPED_MESSAGE, export_id),
        )
        if isinstance(exc, Exception):
            failed = await failing
            assert failed is not None
            return failed
        await asyncio.shield(failing)
        raise
    done = await _update(
        db,
        "UPDATE exports SET status = 'DONE', path = %s, row_count = %s, byte_size = %s, sha256 = %s,"
        " finished_at = now() WHERE id = %s AND status = 'RUNNING'",
        (name, written.rows, written.byte_size, written.sha256, export_id),
    )
    if done is None:  # expired while it ran: the cleanup has already passed it by
        await asyncio.to_thread((export_dir / name).unlink, missing_ok=True)
        found = await get_export(db, export_id)
        assert found is not None
        return found
    log.info("export.done", export_id=export_id, rows=written.rows, bytes=written.byte_size)
    return done


# This process's background exports, with what finish_background needs to fail one that never started.
_background: dict[asyncio.Task[ExportRecord], tuple[Database, str]] = {}


def start_in_background(db: Database, export_id: str, export_dir: Path) -> asyncio.Task[ExportRecord]:
    """Run :func:`run_export` as a task of this process (kept referenced until it ends)."""
    task = asyncio.create_task(run_export(db, export_id, export_dir), name=f"export-{export_id}")
    _background[task] = (db, export_id)
    task.add_done_callback(lambda done: _background.pop(done, None))
    return task


async def finish_background(grace_seconds: float) -> None:
    """Let this process's background exports finish for up to ``grace_seconds``, then cancel the rest:
    each is marked FAILED, whether it was running (run_export does it as it stops) or not yet started."""
    tasks = dict(_background)
    if not tasks:
        return
    _done, pending = await asyncio.wait(tasks, timeout=grace_seconds)
    for task in pending:
        log.warning("export.stopped", export_id=tasks[task][1], grace_seconds=grace_seconds)
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for task in pending:
        db, export_id = tasks[task]
        try:
            await db.execute(
                "UPDATE exports SET status = 'FAILED', error = %s, finished_at = now()"
                " WHERE id = %s AND status IN ('PENDING', 'RUNNING')",
                (STOPPED_MESSAGE, export_id),
            )
        except GatewayError:  # Postgres is gone too: the next start fails what is left RUNNING
            log.warning("export.not_marked", export_id=export_id)


async def fail_abandoned_exports(db: Database) -> list[str]:
    """Mark FAILED every export whose runner is gone: RUNNING with its advisory lock free (the process
    died), or PENDING for longer than :data:`ABANDONED_PENDING` (the process died before starting it: an
    export starts within the request that created it). Exports that another live replica runs keep their
    lock and are left alone. Returns the ids."""
    rows = await db.fetch_all(
        "WITH unheld AS MATERIALIZED (SELECT id FROM exports"
        " WHERE status = 'RUNNING' OR (status = 'PENDING' AND created_at < now() - %s))"
        " UPDATE exports SET status = 'FAILED', error = %s, finished_at = now()"
        " WHERE status IN ('RUNNING', 'PENDING') AND id IN"
        " (SELECT id FROM unheld WHERE pg_try_advisory_xact_lock(%s, hashtext(id)))"
        " RETURNING id",
        (ABANDONED_PENDING, STOPPED_MESSAGE, RUN_LOCKS),
    )
    ids = [str(row[0]) for row in rows]
    if ids:
        log.warning("exports.abandoned", ids=ids, effect="marked FAILED")
    return ids


async def expire_exports(db: Database, export_dir: Path, now: datetime) -> int:
    """Mark every export past ``expires_at`` EXPIRED and delete its file (or the partial file of a writer
    that died); returns how many expired."""
    rows = await db.fetch_all(
        "UPDATE exports SET status = 'EXPIRED' WHERE expires_at <= %s AND status <> 'EXPIRED'"
        " RETURNING id, path",
        (now,),
    )

    def delete() -> None:
        for export_id, path in rows:
            if path:
                (export_dir / path).unlink(missing_ok=True)
            # What a process that died while writing left behind (see HashingSink).
            for partial in export_dir.glob(f".{export_id}.*.partial"):
                partial.unlink(missing_ok=True)

    await asyncio.to_thread(delete)
    if rows:
        log.info("exports.expired", count=len(rows))
    return len(rows)
