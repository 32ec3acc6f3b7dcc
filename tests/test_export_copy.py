"""The COPY path of the CSV, XLSX and Parquet exports: Postgres' CSV lines in, the same files out as the
writers that took Python rows one at a time (the csv module; XLSX cells one by one; Arrow arrays)."""

from __future__ import annotations

import csv
import io
import itertools
import json
import sys
import zipfile
from collections.abc import AsyncIterator, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import psycopg
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from tests.export_copy import copy_lines
from tests.facts_data import BASE, KEYS, make_fact, replace_facts
from usage_gateway.datasources.db import Database
from usage_gateway.datasources.exports import records as exports
from usage_gateway.datasources.exports import xlsx as export_xlsx
from usage_gateway.datasources.exports.columns import Column, Kind, neutralise
from usage_gateway.datasources.exports.csv import CsvWriter
from usage_gateway.datasources.exports.parquet import ParquetWriter
from usage_gateway.datasources.exports.query import SIDE_ROLLUPS, export_columns, export_query
from usage_gateway.datasources.exports.records import ExportDimension, ExportFormat, write_export
from usage_gateway.datasources.exports.tables import copy_table
from usage_gateway.datasources.facts.vocabulary import FactFilter

# Every dimension of usage facts (TAG reads tag facts, exported in tests/test_tags_end_to_end.py; the side
# roll-ups theirs, in tests/test_export_sides.py).
FACT_DIMENSIONS = tuple(d for d in ExportDimension if d is not ExportDimension.TAG and d not in SIDE_ROLLUPS)
examples = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
COLUMNS = [
    Column("day", Kind.DATE),
    Column("name", Kind.TEXT),
    Column("alias", Kind.TEXT),
    Column("spend", Kind.DECIMAL),
    Column("n", Kind.INT),
]
KINDS = [column.kind for column in COLUMNS]
# Text Postgres can hold (no NUL, no lone surrogate), with what CSV quoting, formulas and XML care about.
texts = st.one_of(
    st.none(),
    st.sampled_from(
        ["", " ", "=1+1", "-2", "+", "@x", "\tx", "\rx", "x\r\n", '"', "a,b", "\\.", "NaN", "\\N"]
    ),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12),
    st.text("=+-@\t\r\n ,\"'&<>\x01\x85\u3000\ufffeaZ", max_size=6),
)
spends = st.one_of(
    st.integers(0, 30)
    .flatmap(
        lambda places: st.decimals(-(10**15), 10**15, places=places, allow_nan=False, allow_infinity=False)
    )
    .map(str),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "0", "-1.5", "0.000000000000000000012345"]),
)
rows_lists = st.lists(
    st.tuples(
        st.dates(date(1900, 3, 1), date(2200, 1, 1)), texts, texts, spends, st.integers(-(2**63), 2**63 - 1)
    ),
    max_size=12,
)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await Database.open(database_url, max_size=2)
    try:
        yield database
    finally:
        await database.close()


def batches(lines: list[bytes], cuts: Sequence[int]) -> list[list[bytes]]:
    """``lines`` cut at ``cuts`` (positions, any order, out of range ignored) into non-empty batches."""
    edges = sorted({0, len(lines), *(c for c in cuts if 0 < c < len(lines))})
    return [lines[a:b] for a, b in itertools.pairwise(edges)]


def python_csv(columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> bytes:
    """What the CSV writer wrote when it took Python rows: the csv module over the neutralised values."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([column.name for column in columns])
    for row in rows:
        writer.writerow(
            [
                neutralise(v) if column.kind is Kind.TEXT and v is not None else v
                for column, v in zip(columns, row, strict=True)
            ]
        )
    return out.getvalue().encode()


def cells_one_by_one(rows: Sequence[Sequence[Any]], first: int, kinds: Sequence[Kind]) -> bytes:
    """Rows of sheet XML as the XLSX writer wrote them when it took Python rows, a cell at a time."""
    parts = []
    for number, row in enumerate(rows, start=first):
        cells = "".join(
            export_xlsx.cell_xml(f"{export_xlsx._column_letters(i)}{number}", kind, value)
            for i, (kind, value) in enumerate(zip(kinds, row, strict=True))
        )
        parts.append(f'<row r="{number}">{cells}</row>')
    return "".join(parts).encode()


@examples
@given(rows=rows_lists, cuts=st.lists(st.integers(0, 12), max_size=3))
async def test_csv_from_copy_is_what_the_csv_module_writes(
    db: Database, rows: list[tuple[Any, ...]], cuts: list[int]
) -> None:
    lines = await copy_lines(db, COLUMNS, rows)
    assert len(lines) == len(rows)  # COPY hands over one row per line, whatever its line breaks
    out = io.BytesIO()
    writer = CsvWriter(out, COLUMNS)
    for batch in batches(lines, cuts):
        writer.write(batch)
    writer.close()
    printed = [
        (day, name, alias, line_spend, n)
        for (day, name, alias, _, n), line_spend in zip(rows, _spends(lines), strict=True)
    ]
    assert out.getvalue() == python_csv(COLUMNS, printed)


def _spends(lines: Sequence[bytes]) -> list[str]:
    return [row[3] for row in csv.reader(io.StringIO(b"".join(lines).decode(), newline=""))]


@examples
@given(rows=rows_lists, first=st.sampled_from([2, 99_999, 1_048_570]))
async def test_xlsx_rows_from_arrow_are_the_cells_written_one_by_one(
    db: Database, rows: list[tuple[Any, ...]], first: int
) -> None:
    lines = await copy_lines(db, COLUMNS, rows)
    if not lines:
        return
    table = copy_table(lines, COLUMNS)
    printed = [(*row[:3], spend, row[4]) for row, spend in zip(rows, _spends(lines), strict=True)]
    assert bytes(export_xlsx.rows_xml(table, first, KINDS)) == cells_one_by_one(printed, first, KINDS)


@examples
@given(rows=rows_lists)
async def test_parquet_from_copy_holds_the_values_as_postgres_has_them(
    db: Database, tmp_path: Path, rows: list[tuple[Any, ...]]
) -> None:
    lines = await copy_lines(db, COLUMNS, rows)
    path = tmp_path / "out.parquet"
    with path.open("wb") as file:
        writer = ParquetWriter(file, COLUMNS, {"rowCount": len(rows)})
        if lines:
            writer.write(copy_table(lines, COLUMNS))
        writer.close()
    table = pq.read_table(path)
    assert table.schema.names == ["day", "name", "alias", "spend", "spend_exact", "n"]
    spends = _spends(lines)
    assert table.column("spend_exact").to_pylist() == spends  # the exact decimal text
    floats = table.column("spend").to_pylist()
    assert [repr(x) for x in floats] == [repr(float(s)) for s in spends]  # the nearest double; NaN too
    assert table.column("day").to_pylist() == [row[0] for row in rows]
    assert table.column("name").to_pylist() == [row[1] for row in rows]  # NULL, "" and "NaN" apart
    assert table.column("alias").to_pylist() == [row[2] for row in rows]
    assert table.column("n").to_pylist() == [row[4] for row in rows]


def test_the_xlsx_kernels_leave_every_python_space_to_cell_xml() -> None:
    spaces = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    values = pa.array([*spaces, *(f"a{s}" for s in spaces), *(f"{s}a" for s in spaces)])
    pattern = export_xlsx._ODD[Kind.TEXT]
    assert pc.all(pc.match_substring_regex(values, pattern)).as_py()
    assert not pc.any(pc.match_substring_regex(pa.array(["a", "a b", "Zoë", "x@y", "1-2"]), pattern)).as_py()


# --- Whole exports --------------------------------------------------------------------------------------

USERS = {
    "alice": ('=HYPERLINK("http://x","y")', "alice@example.test"),
    "bob": ("", " @b "),
    "Zoë": ("-2", None),
}


async def _facts_with_odd_names(db: Database) -> FactFilter:
    async with db.transaction() as conn:
        for user_id, (username, email) in USERS.items():
            await conn.execute(
                "INSERT INTO users (id, username, email) VALUES (%s, %s, %s)", (user_id, username, email)
            )
        await conn.execute(
            "INSERT INTO api_keys (id, token_hash, key_alias, name) VALUES (%s, %s, %s, %s)",
            ("key-0", KEYS[0], 'a "quoted",\nalias', "\tname"),
        )
    facts = [
        make_fact(BASE + timedelta(days=d), user_id=user, api_key=key, model=model, spend=spend)
        for d in range(3)
        for user in USERS
        for key, model, spend in ((KEYS[0], "gpt-4o", "1.25"), (KEYS[1], "<m&m>", "-0.5"))
    ]
    await replace_facts(db, facts)
    return FactFilter(BASE, BASE + timedelta(days=1))  # 12 of the 18 facts


async def _python_rows(db: Database, f: FactFilter) -> list[tuple[Any, ...]]:
    query, params = export_query(f, FACT_DIMENSIONS)
    async with db.pool.connection() as conn:
        return await (await conn.execute(query, params)).fetchall()


async def test_csv_and_xlsx_exports_are_byte_for_byte_what_the_row_writers_wrote(
    db: Database, tmp_path: Path
) -> None:
    f = await _facts_with_odd_names(db)
    group_by = FACT_DIMENSIONS
    columns = export_columns(group_by)
    rows = await _python_rows(db, f)
    assert len(rows) == 12

    await write_export(db, f, ExportFormat.CSV, group_by, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_bytes() == python_csv(columns, rows)

    await write_export(db, f, ExportFormat.XLSX, group_by, tmp_path / "out.xlsx")
    with zipfile.ZipFile(tmp_path / "out.xlsx") as archive:
        assert archive.testzip() is None  # every entry's CRC checks (ISA-L deflated them)
        sheet = archive.read("xl/worksheets/sheet1.xml")
    header = "".join(
        export_xlsx._inline_string(f"{export_xlsx._column_letters(i)}1", column.name)
        for i, column in enumerate(columns)
    )
    body = cells_one_by_one(rows, 2, [column.kind for column in columns]).decode()
    assert (
        sheet.decode() == f'{export_xlsx._SHEET_HEAD}<row r="1">{header}</row>{body}{export_xlsx._SHEET_TAIL}'
    )


async def test_an_xlsx_export_past_the_sheet_limit_has_every_row_on_sheets_that_follow(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = await _facts_with_odd_names(db)
    group_by = FACT_DIMENSIONS
    monkeypatch.setattr(export_xlsx, "XLSX_MAX_ROWS", 6)  # the header and five rows a sheet
    monkeypatch.setattr(exports, "FETCH_ROWS", 4)  # batches that straddle sheets
    written = await write_export(db, f, ExportFormat.XLSX, group_by, tmp_path / "out.xlsx")
    await write_export(db, f, ExportFormat.CSV, group_by, tmp_path / "out.csv")
    workbook = openpyxl.load_workbook(tmp_path / "out.xlsx", read_only=True)
    assert workbook.sheetnames == ["usage", "usage 2", "usage 3"]
    header = tuple(column.name for column in export_columns(group_by))
    read = []
    for sheet in workbook.worksheets:
        first, *body = list(sheet.iter_rows(values_only=True))
        assert first == header
        assert len(body) <= 5
        read += body
    workbook.close()
    with (tmp_path / "out.csv").open(encoding="utf-8", newline="") as file:
        csv_rows = list(csv.reader(file))[1:]
    assert written.rows == len(read) == len(csv_rows) == 12
    user, spend = header.index("user_id"), header.index("spend")
    assert [row[user] for row in read] == [row[user] for row in csv_rows]
    assert [row[spend] for row in read] == [float(row[spend]) for row in csv_rows]


async def test_an_export_outlasts_the_statement_timeout_of_requests(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = await Database.open(database_url, max_size=1)
    try:
        await replace_facts(setup, [make_fact(BASE)])
    finally:
        await setup.close()
    real_export_query = export_query

    def slow_export_query(*args: Any) -> tuple[sql.Composed, dict[str, Any]]:
        query, params = real_export_query(*args)
        return sql.SQL("SELECT q.* FROM ({}) q, pg_sleep(0.3)").format(query), params

    monkeypatch.setattr(exports, "export_query", slow_export_query)
    db = await Database.open(database_url, max_size=1, statement_timeout_ms=100)
    try:
        with pytest.raises(psycopg.errors.QueryCanceled):  # what a request's query meets
            async with db.pool.connection() as conn:
                await conn.execute("SELECT pg_sleep(0.3)")
        for fmt in (ExportFormat.CSV, ExportFormat.NDJSON):
            written = await write_export(
                db, FactFilter(BASE, BASE), fmt, (), tmp_path / f"out.{fmt.extension}"
            )
            assert written.rows == 1
    finally:
        await db.close()


async def test_a_parquet_export_names_its_filter_and_row_count_after_the_rows(
    db: Database, tmp_path: Path
) -> None:
    f = await _facts_with_odd_names(db)
    progress: list[tuple[int, int]] = []
    written = await write_export(
        db, f, ExportFormat.PARQUET, (ExportDimension.USER,), tmp_path / "out.parquet",
        on_progress=lambda done, total: progress.append((done, total)),
    )  # fmt: skip
    metadata = json.loads(pq.read_schema(tmp_path / "out.parquet").metadata[b"usage_gateway"])
    assert metadata["rowCount"] == written.rows == pq.read_metadata(tmp_path / "out.parquet").num_rows == 3
    assert metadata["groupBy"] == ["USER"]
    assert metadata["filter"]["from"] == f.date_from.isoformat()
    assert progress == [(3, 12)]  # against the 12 facts read, a bound of the rows
