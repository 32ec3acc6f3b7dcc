"""Streaming file writers for exports: CSV, JSON, NDJSON, XLSX and Parquet.

A writer gets rows in batches (tuples in column order: ``date`` values, ``str | None`` text, ``int``
counts and spend as the exact decimal text Postgres printed) and writes them to a binary sink as it goes,
so memory holds one batch whatever the size of the export.

Spreadsheet safety: in CSV and XLSX a text cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage
return gets a leading ``'``, so no spreadsheet runs it as a formula; numbers are written as numbers.

XLSX is in :mod:`usage_gateway.datasources.exports.xlsx`.

Parquet holds ``spend`` as float64 (what every Parquet reader aggregates natively) plus ``spend_exact``,
the exact decimal as a string: a fixed ``decimal128(38, 18)`` would silently round spends whose exact value
(LiteLLM's doubles, and their sums) has more than 18 decimal places.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, Any, Protocol

import orjson
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
FORMULA_FIRST = frozenset(FORMULA_PREFIXES)
PARQUET_ROW_GROUP_ROWS = 50_000

Row = Sequence[Any]


class Kind(StrEnum):
    DATE = "date"
    TEXT = "text"
    INT = "int"
    DECIMAL = "decimal"  # exact decimal text, e.g. "12.5"


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind


class RowWriter(Protocol):
    def write(self, rows: Sequence[Row]) -> None: ...

    def close(self) -> None:
        """Write what the format needs after the last row and flush into the sink (left open)."""

    def abort(self) -> None:
        """Release what the writer holds after a failure (the sink is discarded already)."""


def neutralise(value: str) -> str:
    """``value`` made inert for a spreadsheet: a leading ``'`` if it could start a formula."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def is_json_number(text: str) -> bool:
    """Postgres prints finite numerics as plain decimals; ``NaN`` and ``Infinity`` are not JSON numbers."""
    return text[-1:].isdigit()


def _text_indexes(columns: Sequence[Column]) -> list[int]:
    return [i for i, column in enumerate(columns) if column.kind is Kind.TEXT]


class CsvWriter:
    """RFC 4180: comma separated, CRLF line ends, fields quoted when needed; UTF-8 with a header row."""

    def __init__(self, sink: IO[bytes], columns: Sequence[Column]) -> None:
        self._sink = sink
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\r\n")
        self._texts = _text_indexes(columns)
        self._csv.writerow([column.name for column in columns])

    def write(self, rows: Sequence[Row]) -> None:
        self._csv.writerows(map(self._neutralised, rows) if self._texts else rows)
        self._drain()

    def _neutralised(self, row: Row) -> Row:
        """The row, copied only in the rare case that a text cell needs a leading ``'``."""
        cells: list[Any] | None = None
        for i in self._texts:
            value = row[i]
            if value and value[0] in FORMULA_FIRST:
                if cells is None:
                    cells = list(row)
                cells[i] = "'" + value
        return row if cells is None else cells

    def _drain(self) -> None:
        self._sink.write(self._buffer.getvalue().encode())
        self._buffer.seek(0)
        self._buffer.truncate()

    def close(self) -> None:
        self._drain()
        self._sink.flush()

    def abort(self) -> None:
        pass


class _JsonRows:
    def __init__(self, sink: IO[bytes], columns: Sequence[Column]) -> None:
        self._sink = sink
        self._names = [column.name for column in columns]
        self._decimals = [i for i, column in enumerate(columns) if column.kind is Kind.DECIMAL]

    def _encode(self, row: Row) -> bytes:
        values = list(row)
        for i in self._decimals:
            text = values[i]
            if text is not None and is_json_number(text):
                values[i] = orjson.Fragment(text)  # the exact decimal, as a JSON number
        return orjson.dumps(dict(zip(self._names, values, strict=True)))

    def abort(self) -> None:
        pass


class NdjsonWriter(_JsonRows):
    """One JSON object per line."""

    def write(self, rows: Sequence[Row]) -> None:
        self._sink.write(b"".join(self._encode(row) + b"\n" for row in rows))

    def close(self) -> None:
        self._sink.flush()


class JsonWriter(_JsonRows):
    """``{"metadata": {...}, "rows": [...]}``, streamed: the metadata is known before the first row."""

    def __init__(self, sink: IO[bytes], columns: Sequence[Column], metadata: dict[str, Any]) -> None:
        super().__init__(sink, columns)
        sink.write(b'{"metadata":' + orjson.dumps(metadata) + b',"rows":[')
        self._separator = b"\n"

    def write(self, rows: Sequence[Row]) -> None:
        if not rows:
            return
        self._sink.write(self._separator + b",\n".join(self._encode(row) for row in rows))
        self._separator = b",\n"

    def close(self) -> None:
        self._sink.write(b"\n]}\n")
        self._sink.flush()


class ParquetWriter:
    """Row groups of about :data:`PARQUET_ROW_GROUP_ROWS` rows, buffered as Arrow batches (compact)."""

    def __init__(self, sink: IO[bytes], columns: Sequence[Column], metadata: dict[str, Any]) -> None:
        fields = []
        for column in columns:
            if column.kind is Kind.DECIMAL:
                fields += [pa.field(column.name, pa.float64()), pa.field(f"{column.name}_exact", pa.string())]
            else:
                fields.append(pa.field(column.name, _ARROW_TYPES[column.kind]))
        self._schema = pa.schema(fields, metadata={"usage_gateway": orjson.dumps(metadata)})
        self._kinds = [column.kind for column in columns]
        self._writer = pq.ParquetWriter(sink, self._schema, compression="zstd")
        self._pending: list[Any] = []
        self._pending_rows = 0

    def write(self, rows: Sequence[Row]) -> None:
        if not rows:
            return
        arrays = []
        for kind, values in zip(self._kinds, zip(*rows, strict=True), strict=True):
            if kind is Kind.DECIMAL:
                arrays.append(pa.array([None if v is None else float(v) for v in values], pa.float64()))
                arrays.append(pa.array(values, pa.string()))
            else:
                arrays.append(pa.array(values, _ARROW_TYPES[kind]))
        self._pending.append(pa.RecordBatch.from_arrays(arrays, schema=self._schema))
        self._pending_rows += len(rows)
        if self._pending_rows >= PARQUET_ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(pa.Table.from_batches(self._pending), row_group_size=self._pending_rows)
            self._pending, self._pending_rows = [], 0

    def close(self) -> None:
        self._flush()
        self._writer.close()

    def abort(self) -> None:
        self._pending = []
        self._writer.close()


_ARROW_TYPES = {Kind.DATE: pa.date32(), Kind.TEXT: pa.string(), Kind.INT: pa.int64()}


def open_writer(fmt: str, sink: IO[bytes], columns: Sequence[Column], metadata: dict[str, Any]) -> RowWriter:
    """A writer for ``fmt`` (an ExportFormat value) into ``sink``."""
    if fmt == "CSV":
        return CsvWriter(sink, columns)
    if fmt == "JSON":
        return JsonWriter(sink, columns, metadata)
    if fmt == "NDJSON":
        return NdjsonWriter(sink, columns)
    if fmt == "XLSX":
        from usage_gateway.datasources.exports.xlsx import XlsxWriter  # it builds on this module's vocabulary

        return XlsxWriter(sink, columns)
    if fmt == "PARQUET":
        return ParquetWriter(sink, columns, metadata)
    raise ValueError(f"unknown export format {fmt!r}")
