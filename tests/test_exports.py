from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import os
import re
import zipfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.export_copy import copy_lines
from tests.facts_data import BASE, DAYS, KEYS, Fact, facts_lists, filters, make_fact, replace_facts
from usage_gateway.datasources.db import Database
from usage_gateway.datasources.exports import records as exports
from usage_gateway.datasources.exports.columns import Column, Kind, neutralise
from usage_gateway.datasources.exports.query import SIDE_ROLLUPS, export_columns, filter_to_json
from usage_gateway.datasources.exports.records import (
    ALL_DIMENSIONS,
    ExportDimension,
    ExportFormat,
    ExportStatus,
    create_export,
    estimate_rows,
    expire_exports,
    get_export,
    run_export,
    write_export,
)
from usage_gateway.datasources.exports.tables import copy_table
from usage_gateway.datasources.exports.writers import RowWriter
from usage_gateway.datasources.facts.aggregates import FactFilter, totals

examples = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
EVERYTHING = FactFilter(BASE - timedelta(days=5), BASE + timedelta(days=DAYS + 5))
METRICS = (
    "spend", "requests", "successful_requests", "failed_requests", "prompt_tokens", "completion_tokens",
    "cache_read_input_tokens", "cache_creation_input_tokens", "total_tokens", "total_response_time_ms",
    "timed_requests",
)  # fmt: skip
FACT_FIELD = {"requests": "api_requests"}
DIMENSION_FIELD = {
    ExportDimension.DATE: "date",
    ExportDimension.USER: "user_id",
    ExportDimension.API_KEY: "api_key",
    ExportDimension.MODEL: "model",
    ExportDimension.PROVIDER: "provider",
    ExportDimension.TEAM: "team_id",
}
HYPERLINK = '=HYPERLINK("http://x","y")'
# Directory names that a spreadsheet would run as formulas.
USERS = {"alice": (HYPERLINK, "alice@example.test"), "bob": ("+1", "@SUM(1)"), "Zoë": ("-2+3", None)}
API_KEYS = {KEYS[0]: ("key-0", "@SUM(1)", "\tname"), KEYS[1]: ("key-1", 'plain, "quoted"', "\rname")}
LITELLM_ALIASES = {KEYS[2]: "-2+3", "raw:abc": "=1+1"}
TEAM_ALIASES = {"team-a": "@Team A"}  # "Team-B" is no synced team: no alias; "no-team" never has one


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await Database.open(database_url, max_size=4)
    async with database.transaction() as conn:
        for user_id, (username, email) in USERS.items():
            await conn.execute(
                "INSERT INTO users (id, username, email) VALUES (%s, %s, %s)", (user_id, username, email)
            )
        for token, (key_id, alias, name) in API_KEYS.items():
            await conn.execute(
                "INSERT INTO api_keys (id, token_hash, key_alias, name) VALUES (%s, %s, %s, %s)",
                (key_id, token, alias, name),
            )
        for team_id, alias in TEAM_ALIASES.items():
            await conn.execute("INSERT INTO teams (id, alias) VALUES (%s, %s)", (team_id, alias))
        for bucket, alias in LITELLM_ALIASES.items():
            await conn.execute(
                "INSERT INTO litellm_keys (api_key, key_alias, last_seen) VALUES (%s, %s, %s)",
                (bucket, alias, BASE),
            )
    try:
        yield database
    finally:
        await database.close()


# --- The Python model -----------------------------------------------------------------------------------


def names(dimension: ExportDimension, value: Any) -> list[Any]:
    if dimension is ExportDimension.USER:
        return [value, *USERS.get(value, (None, None))]
    if dimension is ExportDimension.API_KEY:
        key_id, alias, name = API_KEYS.get(value, (None, LITELLM_ALIASES.get(value), None))
        return [value, key_id, alias, name]
    if dimension is ExportDimension.TEAM:
        return [value, TEAM_ALIASES.get(value)]
    return [value]


def py_rows(facts: Sequence[Fact], f: FactFilter, group_by: Sequence[ExportDimension]) -> list[list[Any]]:
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for fact in facts:
        if fact.matches(f):
            key = tuple(getattr(fact, DIMENSION_FIELD[d]) for d in group_by)
            sums = groups.setdefault(key, [Decimal(0)] + [0] * (len(METRICS) - 1))
            for i, metric in enumerate(METRICS):
                sums[i] += getattr(fact, FACT_FIELD.get(metric, metric))
    if not group_by and not groups:
        groups[()] = [Decimal(0)] + [0] * (len(METRICS) - 1)
    return [
        [value for d, part in zip(group_by, key, strict=True) for value in names(d, part)] + sums
        for key, sums in sorted(groups.items())
    ]


# --- Reading files back into typed rows -----------------------------------------------------------------


def typed(column: Column, value: Any) -> Any:
    if value is None or value == "":
        return None
    if column.kind is Kind.DATE:
        if isinstance(value, datetime):  # XLSX
            return value.date()
        return value if isinstance(value, date) else date.fromisoformat(value)
    if column.kind is Kind.INT:
        return int(value)
    if column.kind is Kind.DECIMAL:
        return value if isinstance(value, float) else Decimal(value)
    return value


def read_back(path: Path, fmt: ExportFormat, columns: list[Column]) -> tuple[list[Any], list[list[Any]]]:
    """The header and the typed rows of an export file."""
    header: list[Any]
    rows: list[list[Any]]
    if fmt is ExportFormat.CSV:
        with path.open(encoding="utf-8", newline="") as file:
            header, *rows = list(csv.reader(file))
    elif fmt in (ExportFormat.JSON, ExportFormat.NDJSON):
        text = path.read_text(encoding="utf-8")
        if fmt is ExportFormat.JSON:
            objects = json.loads(text, parse_float=Decimal)["rows"]
        else:
            objects = [json.loads(line, parse_float=Decimal) for line in text.splitlines()]
        header = [column.name for column in columns]
        rows = [[obj[name] for name in header] for obj in objects]
    elif fmt is ExportFormat.XLSX:
        workbook = openpyxl.load_workbook(path, read_only=True)
        header, *rows = [list(row) for row in workbook.worksheets[0].iter_rows(values_only=True)]
        workbook.close()
        # openpyxl reads a number cell as a double: read spend's exact decimal from the sheet's XML.
        decimals = [i for i, column in enumerate(columns) if column.kind is Kind.DECIMAL]
        for i in decimals:
            for row, text in zip(rows, xlsx_number_texts(path, i), strict=True):
                row[i] = text
    else:
        table = pq.read_table(path).to_pylist()
        header = [column.name for column in columns]
        rows = []
        for record in table:
            assert record["spend"] == float(Decimal(record["spend_exact"]))
            rows.append([Decimal(record["spend_exact"]) if n == "spend" else record[n] for n in header])
    return header, [[typed(c, v) for c, v in zip(columns, row, strict=True)] for row in rows]


def xlsx_number_texts(path: Path, column: int) -> list[str]:
    """The text of each number cell of a column of the first sheet, below the header, in row order."""
    with zipfile.ZipFile(path) as archive:
        sheet = archive.read("xl/worksheets/sheet1.xml").decode()
    assert column < 26  # an export has at most 22 columns: one letter
    letter = chr(ord("A") + column)
    cells = re.findall(rf'<c r="{letter}([0-9]+)"><v>([^<]*)</v></c>', sheet)
    assert [int(row) for row, _ in cells] == list(range(2, len(cells) + 2))
    return [text for _, text in cells]


def expected_cells(fmt: ExportFormat, columns: list[Column], rows: list[list[Any]]) -> list[list[Any]]:
    """What a format holds: text neutralised in spreadsheets, spend the exact decimal everywhere."""
    if fmt not in (ExportFormat.CSV, ExportFormat.XLSX):
        return rows
    result = []
    for row in rows:
        cells = []
        for column, value in zip(columns, row, strict=True):
            if column.kind is Kind.TEXT and value is not None:
                value = neutralise(value)
            cells.append(value)
        result.append(cells)
    return result


# Dimensions of usage facts (TAG reads tag facts: tests/test_tags_end_to_end.py exports it; model groups,
# endpoints and MCP tools their roll-ups: tests/test_export_sides.py).
FACT_DIMENSIONS = tuple(d for d in ExportDimension if d is not ExportDimension.TAG and d not in SIDE_ROLLUPS)
group_bys = st.lists(st.sampled_from(FACT_DIMENSIONS), unique=True, max_size=5).map(tuple)


@examples
@given(facts=facts_lists, f=filters(), group_by=st.one_of(st.just(FACT_DIMENSIONS), group_bys))
async def test_every_format_holds_the_grouped_rows_and_sums_to_the_totals(
    db: Database, tmp_path: Path, facts: list[Fact], f: FactFilter, group_by: tuple[ExportDimension, ...]
) -> None:
    await replace_facts(db, facts)
    columns = export_columns(group_by)
    expected = py_rows(facts, f, group_by)
    expected_totals = await totals(db, f)
    for fmt in ExportFormat:
        path = tmp_path / f"out.{fmt.extension}"
        written = await write_export(db, f, fmt, group_by, path)
        header, rows = read_back(path, fmt, columns)
        assert header == [column.name for column in columns], fmt
        assert rows == expected_cells(fmt, columns, expected), fmt
        assert written.rows == len(rows)
        assert written.byte_size == path.stat().st_size
        assert written.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        for i, metric in enumerate(METRICS, start=len(columns) - len(METRICS)):
            assert sum((row[i] for row in rows), Decimal(0) if i == len(columns) - len(METRICS) else 0) == (
                getattr(expected_totals, metric)
            ), (fmt, metric)
    assert await estimate_rows(db, f) == sum(1 for fact in facts if fact.matches(f))


async def test_every_format_writes_spend_as_the_exact_decimal(db: Database, tmp_path: Path) -> None:
    # As doubles 500.1 + 69.69904768 is 569.7990476800001 and 0.1 + 0.2 is 0.30000000000000004.
    await replace_facts(
        db,
        [
            make_fact(BASE, user_id="alice", api_key=KEYS[0], spend="500.1"),
            make_fact(BASE, user_id="alice", api_key=KEYS[0], model="claude-3", spend="69.69904768"),
            make_fact(BASE, user_id="bob", api_key=KEYS[1], spend="0.1"),
            make_fact(BASE + timedelta(days=1), user_id="bob", api_key=KEYS[1], spend="0.2"),
            make_fact(BASE, user_id="Zoë", api_key=KEYS[2], spend="0.0000001"),
        ],
    )
    f = FactFilter(BASE, BASE + timedelta(days=1))
    expected = {"Zoë": "0.0000001", "alice": "569.79904768", "bob": "0.3"}  # plain notation, no 1E-7
    for group_by, wanted in (((ExportDimension.USER,), list(expected.values())), ((), ["570.09904778"])):
        columns = export_columns(group_by)
        spend = [column.name for column in columns].index("spend")
        for fmt in ExportFormat:
            path = tmp_path / f"out.{fmt.extension}"
            await write_export(db, f, fmt, group_by, path)
            if fmt is ExportFormat.CSV:
                with path.open(encoding="utf-8", newline="") as file:
                    texts = [row[spend] for row in list(csv.reader(file))[1:]]
            elif fmt is ExportFormat.XLSX:
                texts = xlsx_number_texts(path, spend)
            elif fmt is ExportFormat.PARQUET:
                table = pq.read_table(path)
                texts = table.column("spend_exact").to_pylist()
                assert table.column("spend").to_pylist() == [float(text) for text in wanted]
            else:
                raw = path.read_text(encoding="utf-8")
                texts = re.findall(r'"spend":([^,}]*)', raw)  # JSON numbers, as written
            assert texts == wanted, fmt


async def test_spreadsheet_cells_that_look_like_formulas_are_inert(db: Database, tmp_path: Path) -> None:
    await replace_facts(
        db,
        [
            make_fact(BASE, user_id="alice", api_key=KEYS[0], spend="-1.5"),
            make_fact(BASE, user_id="bob", api_key=KEYS[1], model="=cmd|' /C calc'!A0"),
            make_fact(BASE, user_id="Zoë", api_key=KEYS[2], provider="@provider"),
        ],
    )
    f = FactFilter(BASE, BASE)
    await write_export(db, f, ExportFormat.CSV, FACT_DIMENSIONS, tmp_path / "out.csv")
    with (tmp_path / "out.csv").open(encoding="utf-8", newline="") as file:
        csv_rows = list(csv.DictReader(file))
    await write_export(db, f, ExportFormat.XLSX, FACT_DIMENSIONS, tmp_path / "out.xlsx")
    sheet = openpyxl.load_workbook(tmp_path / "out.xlsx").worksheets[0]
    header = [cell.value for cell in sheet[1]]
    xlsx_rows = [dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=2)]

    by_user = {row["user_id"]: row for row in csv_rows}
    assert by_user["alice"]["username"] == "'" + HYPERLINK
    assert by_user["alice"]["key_alias"] == "'@SUM(1)"
    assert by_user["alice"]["key_name"] == "'\tname"
    assert by_user["alice"]["spend"] == "-1.5"  # a number, untouched
    assert by_user["bob"]["username"] == "'+1"
    assert by_user["bob"]["user_email"] == "'@SUM(1)"
    assert by_user["bob"]["key_name"] == "'\rname"
    assert by_user["bob"]["model"] == "'=cmd|' /C calc'!A0"
    assert by_user["Zoë"]["username"] == "'-2+3"
    assert by_user["Zoë"]["key_alias"] == "'-2+3"
    assert by_user["Zoë"]["provider"] == "'@provider"
    assert (tmp_path / "out.csv").read_bytes().split(b"\r\n")[0].startswith(b"date,user_id,username")

    cells = {row["user_id"].value: row for row in xlsx_rows}
    assert cells["alice"]["username"].value == "'" + HYPERLINK
    assert cells["alice"]["key_name"].value == "'\tname"
    assert cells["bob"]["key_name"].value == "'\rname"
    assert cells["bob"]["model"].value == "'=cmd|' /C calc'!A0"
    assert cells["Zoë"]["key_alias"].value == "'-2+3"
    for row in xlsx_rows:
        assert all(cell.data_type != "f" for cell in row.values())
        assert row["spend"].data_type == "n"
        assert row["requests"].data_type == "n"
        assert isinstance(row["date"].value, datetime)
    assert cells["alice"]["spend"].value == -1.5


async def test_json_carries_its_filter_and_generation_time(db: Database, tmp_path: Path) -> None:
    await replace_facts(db, [make_fact(BASE), make_fact(BASE + timedelta(days=1), user_id="bob")])
    f = FactFilter(BASE, BASE + timedelta(days=3), models=("gpt-4o",))
    before = datetime.now(UTC)
    await write_export(
        db, f, ExportFormat.JSON, [ExportDimension.USER, ExportDimension.DATE], tmp_path / "a.json"
    )
    document = json.loads((tmp_path / "a.json").read_text(encoding="utf-8"))
    metadata = document["metadata"]
    assert metadata["filter"] == filter_to_json(f)
    assert metadata["filter"]["from"] == BASE.isoformat()
    assert metadata["groupBy"] == ["USER", "DATE"]
    assert metadata["rowCount"] == len(document["rows"]) == 2
    assert before <= datetime.fromisoformat(metadata["generatedAt"]) <= datetime.now(UTC)
    assert list(document["rows"][0])[:4] == ["user_id", "username", "user_email", "date"]


async def test_an_export_runs_to_a_file_with_its_hash_and_expires(db: Database, tmp_path: Path) -> None:
    await replace_facts(db, [make_fact(BASE), make_fact(BASE, user_id="bob", spend="2.25")])
    record = await create_export(
        db, requested_by="alice", filter=EVERYTHING, fmt=ExportFormat.CSV, group_by=None, ttl_hours=24
    )
    assert record.status is ExportStatus.PENDING
    assert record.group_by == ALL_DIMENSIONS
    done = await run_export(db, record.id, tmp_path)
    assert done.status is ExportStatus.DONE
    assert done.path == f"{record.id}.csv"
    content = (tmp_path / done.path).read_bytes()
    assert (done.row_count, done.byte_size, done.sha256) == (
        2,
        len(content),
        hashlib.sha256(content).hexdigest(),
    )
    assert await get_export(db, record.id) == done
    assert await run_export(db, record.id, tmp_path) == done  # not PENDING: left as it is

    keep = await create_export(
        db, requested_by="bob", filter=EVERYTHING, fmt=ExportFormat.NDJSON, ttl_hours=48
    )
    keep = await run_export(db, keep.id, tmp_path)
    assert keep.path is not None
    crashed = await create_export(
        db, requested_by="bob", filter=EVERYTHING, fmt=ExportFormat.CSV, ttl_hours=24
    )
    leftover = tmp_path / f".{crashed.id}.csv.0123abcd.partial"
    leftover.write_text("half a file")
    assert await expire_exports(db, tmp_path, done.expires_at - timedelta(seconds=1)) == 0
    assert await expire_exports(db, tmp_path, done.expires_at + timedelta(seconds=1)) == 2
    assert not (tmp_path / done.path).exists()
    assert not leftover.exists()
    assert (tmp_path / keep.path).exists()
    expired = await get_export(db, record.id)
    assert expired is not None
    assert expired.status is ExportStatus.EXPIRED
    assert await expire_exports(db, tmp_path, done.expires_at + timedelta(seconds=1)) == 0


async def test_an_unwritable_export_dir_fails_the_export(db: Database, tmp_path: Path) -> None:
    await replace_facts(db, [make_fact(BASE)])
    not_a_dir = tmp_path / "exports"
    not_a_dir.write_text("in the way")
    record = await create_export(
        db, requested_by="alice", filter=EVERYTHING, fmt=ExportFormat.CSV, ttl_hours=1
    )
    failed = await run_export(db, record.id, not_a_dir)
    assert failed.status is ExportStatus.FAILED
    assert failed.error is not None
    assert "could not be written" in failed.error
    assert (failed.path, failed.sha256, failed.row_count) == (None, None, None)


@pytest.mark.parametrize("fmt", list(ExportFormat))
async def test_a_failure_mid_export_leaves_no_file(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: ExportFormat
) -> None:
    await replace_facts(
        db, [replace(make_fact(BASE + timedelta(days=n)), spend=Decimal(n)) for n in range(10)]
    )
    real_open_writer = exports.open_writer  # type: ignore[attr-defined]

    class Failing:
        def __init__(self, inner: RowWriter) -> None:
            self.inner, self.batches = inner, 0

        def write(self, rows: Sequence[Sequence[Any]]) -> None:
            self.batches += 1
            if self.batches == 3:
                raise OSError(28, "No space left on device")
            self.inner.write(rows)

        def close(self) -> None:
            self.inner.close()

        def abort(self) -> None:
            self.inner.abort()

    monkeypatch.setattr(exports, "FETCH_ROWS", 2)
    monkeypatch.setattr(exports, "open_writer", lambda *args: Failing(real_open_writer(*args)))
    record = await create_export(db, requested_by="alice", filter=EVERYTHING, fmt=fmt, ttl_hours=1)
    failed = await run_export(db, record.id, tmp_path)
    assert failed.status is ExportStatus.FAILED
    assert failed.error == "the export file could not be written (No space left on device)"
    assert await asyncio.to_thread(os.listdir, tmp_path) == []


async def test_json_numbers_and_csv_quoting_follow_the_standards(db: Database) -> None:
    from usage_gateway.datasources.exports.writers import open_writer

    columns = [Column("name", Kind.TEXT), Column("spend", Kind.DECIMAL), Column("n", Kind.INT)]
    rows = [("a,b", "0.000000000000000000012345", 2**62), ('say "hi"\nbye', "NaN", 0), (None, "-3", -1)]
    out = io.BytesIO()
    writer = open_writer(ExportFormat.CSV, out, columns, {})
    writer.write(await copy_lines(db, columns, rows))
    writer.close()
    assert out.getvalue().decode() == (
        'name,spend,n\r\n"a,b",0.000000000000000000012345,4611686018427387904\r\n'
        '"say ""hi""\nbye",NaN,0\r\n,-3,-1\r\n'
    )
    out = io.BytesIO()
    writer = open_writer(ExportFormat.NDJSON, out, columns, {})
    writer.write(rows)
    writer.close()
    lines = [json.loads(line, parse_float=Decimal) for line in out.getvalue().splitlines()]
    assert lines[0]["spend"] == Decimal("0.000000000000000000012345")
    assert lines[1]["spend"] == "NaN"
    assert lines[2] == {"name": None, "spend": -3, "n": -1}


async def test_xlsx_continues_on_a_new_sheet_past_the_row_limit(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from usage_gateway.datasources.exports import xlsx as export_xlsx
    from usage_gateway.datasources.exports.writers import open_writer

    monkeypatch.setattr(export_xlsx, "XLSX_MAX_ROWS", 3)  # the header and two rows per sheet
    columns = [Column("day", Kind.DATE), Column("name", Kind.TEXT), Column("n", Kind.INT)]
    rows = [(BASE + timedelta(days=n), f" x\x01<{n}> & ", n) for n in range(5)]
    path = tmp_path / "out.xlsx"
    with path.open("wb") as file:
        writer = open_writer(ExportFormat.XLSX, file, columns, {})
        writer.write(copy_table(await copy_lines(db, columns, rows[:1]), columns))
        writer.write(copy_table(await copy_lines(db, columns, rows[1:]), columns))
        writer.close()
    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == ["usage", "usage 2", "usage 3"]
    read = []
    for sheet in workbook.worksheets:
        header, *body = list(sheet.iter_rows(values_only=True))
        assert header == ("day", "name", "n")
        read += body
    assert read == [(datetime.combine(d, datetime.min.time()), f" x<{n}> & ", n) for d, _, n in rows]
