"""The export formats, a writer for each, and :func:`open_writer`, which picks one.

A writer gets the rows in batches, in the form its :class:`Feed` names, and writes them to a binary sink
as it goes, so memory holds one batch whatever the size of the export: JSON and NDJSON take tuples in
column order (see :mod:`usage_gateway.datasources.exports.columns`) from a cursor; CSV takes the lines of
Postgres' own CSV (``COPY``), which it passes on nearly as they are; XLSX and Parquet take the same lines
parsed into Arrow tables (:mod:`~usage_gateway.datasources.exports.tables`), which they turn into their
format a column at a time. Each format has its module beside this one: ``csv``, ``json`` (JSON and
NDJSON), ``xlsx`` and ``parquet``; none imports this module, so this one imports them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import IO, Any, Protocol, assert_never

from usage_gateway.datasources.exports.columns import Column
from usage_gateway.datasources.exports.csv import CsvWriter
from usage_gateway.datasources.exports.json import JsonWriter, NdjsonWriter
from usage_gateway.datasources.exports.parquet import ParquetWriter
from usage_gateway.datasources.exports.xlsx import XlsxWriter


class ExportFormat(StrEnum):
    CSV = "CSV"
    JSON = "JSON"
    NDJSON = "NDJSON"
    XLSX = "XLSX"
    PARQUET = "PARQUET"

    @property
    def extension(self) -> str:
        return self.value.lower()

    @property
    def media_type(self) -> str:
        return _MEDIA_TYPES[self]


_MEDIA_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.JSON: "application/json",
    ExportFormat.NDJSON: "application/x-ndjson",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ExportFormat.PARQUET: "application/vnd.apache.parquet",
}


class Feed(StrEnum):
    ROWS = "rows"  # Sequence[Row], from a cursor
    COPY = "copy"  # Sequence[bytes | memoryview]: COPY lines of Postgres' CSV, one row each
    ARROW = "arrow"  # pyarrow.Table: the COPY lines parsed (tables.copy_table)


FEEDS = {
    ExportFormat.CSV: Feed.COPY,
    ExportFormat.JSON: Feed.ROWS,
    ExportFormat.NDJSON: Feed.ROWS,
    ExportFormat.XLSX: Feed.ARROW,
    ExportFormat.PARQUET: Feed.ARROW,
}


class RowWriter(Protocol):
    def write(self, batch: Any) -> None:
        """Write a batch of rows, in the form of the format's :data:`FEEDS` entry."""

    def close(self) -> None:
        """Write what the format needs after the last row and flush into the sink (left open)."""

    def abort(self) -> None:
        """Release what the writer holds after a failure (the sink is discarded already)."""


def open_writer(
    fmt: ExportFormat, sink: IO[bytes], columns: Sequence[Column], metadata: dict[str, Any]
) -> RowWriter:
    """A writer for ``fmt`` into ``sink`` (mypy checks that every format has one)."""
    match fmt:
        case ExportFormat.CSV:
            return CsvWriter(sink, columns)
        case ExportFormat.JSON:
            return JsonWriter(sink, columns, metadata)
        case ExportFormat.NDJSON:
            return NdjsonWriter(sink, columns)
        case ExportFormat.XLSX:
            return XlsxWriter(sink, columns)
        case ExportFormat.PARQUET:
            return ParquetWriter(sink, columns, metadata)
        case _:
            assert_never(fmt)
