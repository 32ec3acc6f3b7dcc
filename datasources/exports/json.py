"""The JSON and NDJSON writers: spend as an exact JSON number (``NaN`` and ``Infinity`` stay strings)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, Any

import orjson

from usage_gateway.datasources.exports.columns import Column, Kind, Row, is_json_number


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
