"""What every export writer shares: the columns of a row and their kinds, and the spreadsheet safety rule.

A row is a tuple in column order: ``date`` values, ``str | None`` text, ``int`` counts and spend as the
exact decimal text Postgres printed (:attr:`Kind.DECIMAL`).

Spreadsheet safety: in CSV and XLSX a text cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage
return gets a leading ``'``, so no spreadsheet runs it as a formula; numbers are written as numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
FORMULA_FIRST = frozenset(FORMULA_PREFIXES)

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


def neutralise(value: str) -> str:
    """``value`` made inert for a spreadsheet: a leading ``'`` if it could start a formula."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def is_json_number(text: str) -> bool:
    """Postgres prints finite numerics as plain decimals; ``NaN`` and ``Infinity`` are not JSON numbers."""
    return text[-1:].isdigit()
