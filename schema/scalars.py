"""The custom scalars: ``Date``, ``DateTime``, ``BigInt`` (a JSON number, exact up to 2^63) and
``Decimal`` (an exact decimal, a JSON string)."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
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


def decimal_text(value: Decimal) -> str:
    """``value`` in plain notation without trailing zeros, as Postgres' ``trim_scale`` prints it (what the
    export files hold): ``569.79904768``, ``0.0000001``, ``100``. Never rounded: ``format`` without a
    precision keeps every digit, where ``normalize()`` would round to the context's 28."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _parse_decimal(value: object) -> Decimal:
    if not isinstance(value, str):
        raise ValueError(f"Decimal must be a string, got {value!r}")
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal number") from None
    if not parsed.is_finite():
        raise ValueError(f"Decimal must be finite, got {value!r}")
    return parsed


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

DecimalScalar = strawberry.scalar(
    name="Decimal",
    description='An exact decimal number as a JSON string in plain notation, e.g. "569.79904768":'
    " never rounded, unlike a Float.",
    serialize=decimal_text,
    parse_value=_parse_decimal,
)

SCALARS: dict[object, ScalarDefinition] = {
    date: DateScalar,
    datetime: DateTimeScalar,
    BigInt: BigIntScalar,
    Decimal: DecimalScalar,
}
