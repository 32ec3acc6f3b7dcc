"""The custom scalars: ``Date``, ``DateTime`` and ``BigInt`` (a JSON number, exact up to 2^63)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

BigInt = NewType("BigInt", int)

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_LIMIT = 2**63


def _parse_date(value: object) -> date:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise ValueError(f"Date must be a YYYY-MM-DD string, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a calendar date") from None


def _serialize_date(value: date) -> str:
    return value.isoformat()


def _parse_datetime(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"DateTime must be an ISO 8601 string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise ValueError(f"DateTime needs an offset, got {value!r}")
    return parsed


def _serialize_datetime(value: datetime) -> str:
    return value.isoformat()


def _check_bigint(value: object) -> int:
    # bool is an int in Python; in JSON it is not a number.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"BigInt must be an integer, got {value!r}")
    if not -_LIMIT <= value < _LIMIT:
        raise ValueError(f"BigInt must fit in 64 bits, got {value}")
    return value


DateScalar = strawberry.scalar(
    name="Date",
    description="A UTC calendar day, ISO 8601 (YYYY-MM-DD).",
    serialize=_serialize_date,
    parse_value=_parse_date,
)
DateTimeScalar = strawberry.scalar(
    name="DateTime",
    description="An instant, ISO 8601 with offset.",
    serialize=_serialize_datetime,
    parse_value=_parse_datetime,
)
BigIntScalar = strawberry.scalar(
    name="BigInt",
    description="A 64-bit integer, serialized as a JSON number.",
    serialize=_check_bigint,
    parse_value=_check_bigint,
)

SCALARS: dict[object, ScalarDefinition] = {date: DateScalar, datetime: DateTimeScalar, BigInt: BigIntScalar}
