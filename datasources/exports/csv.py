"""The CSV writer: RFC 4180, UTF-8 with a header row, text cells neutralised for spreadsheets."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import IO, Any

from usage_gateway.datasources.exports.columns import FORMULA_FIRST, Column, Kind, Row


class CsvWriter:
    """RFC 4180: comma separated, CRLF line ends, fields quoted when needed; UTF-8 with a header row."""

    def __init__(self, sink: IO[bytes], columns: Sequence[Column]) -> None:
        self._sink = sink
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\r\n")
        self._texts = [i for i, column in enumerate(columns) if column.kind is Kind.TEXT]
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
