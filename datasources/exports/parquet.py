"""The Parquet writer: zstd row groups, the export's metadata in the file's key-value metadata (what
readers show as the schema's), written last with the rows counted.

Parquet holds ``spend`` as float64 (what every Parquet reader aggregates natively) plus ``spend_exact``,
the exact decimal as a string: a fixed ``decimal128(38, 18)`` would silently round spends whose exact value
(LiteLLM's doubles, and their sums) has more than 18 decimal places.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, Any

import orjson
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from usage_gateway.datasources.exports.columns import Column, Kind
from usage_gateway.datasources.exports.tables import ARROW_TYPES

PARQUET_ROW_GROUP_ROWS = 50_000


class ParquetWriter:
    """Row groups of about :data:`PARQUET_ROW_GROUP_ROWS` rows, buffered as Arrow tables (compact).

    Takes Arrow tables with a column per export column (see :mod:`~.tables`), spend as its decimal text."""

    def __init__(self, sink: IO[bytes], columns: Sequence[Column], metadata: dict[str, Any]) -> None:
        fields = []
        for column in columns:
            if column.kind is Kind.DECIMAL:
                fields += [pa.field(column.name, pa.float64()), pa.field(f"{column.name}_exact", pa.string())]
            else:
                fields.append(pa.field(column.name, ARROW_TYPES[column.kind]))
        self._schema = pa.schema(fields)
        self._metadata = metadata
        self._kinds = [column.kind for column in columns]
        # No ARROW:schema entry: its copy of the metadata is fixed when the writer opens, before the rows
        # are counted, and would hide the one written at the end. The types need no Arrow hints.
        self._writer = pq.ParquetWriter(sink, self._schema, compression="zstd", store_schema=False)
        self._pending: list[Any] = []
        self._pending_rows = 0
        self._rows = 0

    def write(self, table: Any) -> None:
        if not table.num_rows:
            return
        arrays = []
        for kind, values in zip(self._kinds, table.columns, strict=True):
            if kind is Kind.DECIMAL:
                # Arrow reads decimal text into the nearest double, as float() does.
                arrays += [pc.cast(values, pa.float64()), values]
            else:
                arrays.append(values)
        self._pending.append(pa.Table.from_arrays(arrays, schema=self._schema))
        self._pending_rows += table.num_rows
        self._rows += table.num_rows
        if self._pending_rows >= PARQUET_ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(pa.concat_tables(self._pending), row_group_size=self._pending_rows)
            self._pending, self._pending_rows = [], 0

    def close(self) -> None:
        self._flush()
        metadata = {**self._metadata, "rowCount": self._rows}
        self._writer.add_key_value_metadata({"usage_gateway": orjson.dumps(metadata)})
        self._writer.close()

    def abort(self) -> None:
        self._pending = []
        self._writer.close()
