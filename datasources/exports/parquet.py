"""The Parquet writer: zstd row groups, the export's metadata in the file's schema.

Parquet holds ``spend`` as float64 (what every Parquet reader aggregates natively) plus ``spend_exact``,
the exact decimal as a string: a fixed ``decimal128(38, 18)`` would silently round spends whose exact value
(LiteLLM's doubles, and their sums) has more than 18 decimal places.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, Any

import orjson
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from usage_gateway.datasources.exports.columns import Column, Kind, Row

PARQUET_ROW_GROUP_ROWS = 50_000


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
