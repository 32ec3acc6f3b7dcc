"""Rows as Postgres' COPY writes them: the input of the CSV, XLSX and Parquet export writers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import sql

from usage_gateway.datasources.db import Database
from usage_gateway.datasources.exports.columns import Column, Kind
from usage_gateway.datasources.exports.query import copy_statement

_SQL_TYPES = {Kind.DATE: "date", Kind.TEXT: "text", Kind.INT: "bigint", Kind.DECIMAL: "numeric"}


async def copy_lines(db: Database, columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> list[bytes]:
    """``rows`` (spend as decimal text, read as numeric and printed back) through ``COPY … (FORMAT csv)``."""
    if not rows:
        return []
    names = [sql.Identifier(f"c{i}") for i in range(len(columns))]
    values = sql.SQL(", ").join(
        sql.SQL("({})").format(
            sql.SQL(", ").join(
                [sql.Literal(n)]
                + [
                    sql.SQL("({})::{}").format(sql.Literal(value), sql.SQL(_SQL_TYPES[column.kind]))
                    for column, value in zip(columns, row, strict=True)
                ]
            )
        )
        for n, row in enumerate(rows)
    )
    selected = [
        sql.SQL("{}::text").format(name) if column.kind is Kind.DECIMAL else name
        for name, column in zip(names, columns, strict=True)
    ]
    query = sql.SQL("SELECT {} FROM (VALUES {}) v(n, {}) ORDER BY n").format(
        sql.SQL(", ").join(selected), values, sql.SQL(", ").join(names)
    )
    lines = []
    async with db.transaction() as conn, conn.cursor() as cursor:
        await cursor.execute("SET LOCAL DateStyle = 'ISO, YMD'")
        async with cursor.copy(copy_statement(query)) as copy:
            async for line in copy:
                lines.append(bytes(line))
    return lines
