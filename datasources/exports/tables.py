"""COPY lines as an Arrow table: the input of the XLSX and Parquet writers.

Postgres' CSV (``COPY … TO STDOUT (FORMAT csv)``) is parsed by Arrow's C++ reader with the columns'
types: ``date32`` dates, ``int64`` counts, strings for text and for spend (the exact decimal text).
An unquoted empty field is NULL and a quoted one the empty string, as Postgres writes them; nothing else
(not even ``NaN``) reads as NULL.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.csv as pa_csv  # type: ignore[import-untyped]

from usage_gateway.datasources.exports.columns import Column, Kind

ARROW_TYPES = {
    Kind.DATE: pa.date32(),
    Kind.TEXT: pa.string(),
    Kind.INT: pa.int64(),
    Kind.DECIMAL: pa.string(),
}

_PARSE = pa_csv.ParseOptions(newlines_in_values=True)


def copy_table(lines: Sequence[bytes | memoryview], columns: Sequence[Column]) -> pa.Table:
    """The rows of ``lines`` (whole COPY lines, at least one) as a table with a column per export column."""
    names = [column.name for column in columns]
    data = b"".join(lines)
    return pa_csv.read_csv(
        pa.py_buffer(data),
        # One block on this thread: the lines are a batch already, and the other core runs Postgres.
        read_options=pa_csv.ReadOptions(column_names=names, block_size=len(data) + 1, use_threads=False),
        parse_options=_PARSE,
        convert_options=pa_csv.ConvertOptions(
            column_types={column.name: ARROW_TYPES[column.kind] for column in columns},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
