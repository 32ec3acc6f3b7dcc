"""The CSV writer: RFC 4180, UTF-8 with a header row, text cells neutralised for spreadsheets.

Postgres writes the rows (``COPY … TO STDOUT (FORMAT csv)``, see :func:`~.query.copy_statement`); this
writer passes its lines on with CRLF line ends. Postgres and Python's ``csv`` module quote the same fields
(those holding a comma, a quote, CR or LF) except the empty string, which Postgres quotes to tell it from
NULL: a line with an empty quoted field, or with a field starting like a formula, is read and written
again with the ``csv`` module, the neutralised cells given their leading ``'``. So the file holds the same
bytes as ``csv.writer(lineterminator="\\r\\n")`` given the neutralised values (NULL written as empty).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from typing import IO

from usage_gateway.datasources.exports.columns import FORMULA_FIRST, Column, Kind

# A line that may need the csv module: one with a field that is empty and quoted, or starts (after its
# quote) like a formula. Matches inside quoted fields too, which only sends a line the slow way for nothing.
_SUSPECT = re.compile(rb'(?:^|,)(?:"?[=+\-@\t\r]|""(?:,|$))', re.MULTILINE)
# The same question for a whole batch, asked faster (a regular expression reads 70 MB/s): any quote, or an
# unquoted field starting like a formula, which bytes.translate turns into "\x01\x02" (comma or line end,
# then a formula character; every other byte "\x00").
_MARKS = bytes(1 if b in b",\n" else 2 if b in b"=+-@\t" else 0 for b in range(256))


class CsvWriter:
    """RFC 4180: comma separated, CRLF line ends, fields quoted when needed; UTF-8 with a header row.

    Takes batches of COPY lines: each one row of Postgres' CSV, ending with its ``\\n``."""

    def __init__(self, sink: IO[bytes], columns: Sequence[Column]) -> None:
        self._sink = sink
        self._texts = [i for i, column in enumerate(columns) if column.kind is Kind.TEXT]
        sink.write(_csv_line([column.name for column in columns]))

    def write(self, lines: Sequence[bytes | memoryview]) -> None:
        data = b"".join(lines)
        if data.count(b"\n") == len(lines) and not _suspect(data):
            self._sink.write(data.replace(b"\n", b"\r\n"))  # no field holds a line break
        else:
            self._sink.write(b"".join(map(self._line, lines)))

    def _line(self, line: bytes | memoryview) -> bytes:
        line = bytes(line)
        if _SUSPECT.search(line) is None:
            return line[:-1] + b"\r\n"
        [cells] = csv.reader([line.decode()])
        for i in self._texts:
            value = cells[i]
            if value and value[0] in FORMULA_FIRST:
                cells[i] = "'" + value
        return _csv_line(cells)

    def close(self) -> None:
        self._sink.flush()

    def abort(self) -> None:
        pass


def _suspect(data: bytes) -> bool:
    if b'"' in data:
        return True
    marks = data.translate(_MARKS)
    return marks.startswith(b"\x02") or b"\x01\x02" in marks


def _csv_line(cells: Sequence[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue().encode()
