"""DayStore.replace_days: the days of one read go in together, each day exactly as given, whatever the
days written before; writers of the same months never deadlock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from usage_gateway.datasources.daycache.store import DayStore, DayWrite
from usage_gateway.datasources.db import Database
from usage_gateway.datasources.litellm.day_metrics import DayMetrics
from usage_gateway.datasources.litellm.split import Fact
from usage_gateway.datasources.litellm.wire import KeyMetadata

FETCHED = datetime(2026, 11, 5, tzinfo=UTC)
KEY_A, KEY_B = "a" * 64, "b" * 64


def metrics(spend: str, requests: int) -> DayMetrics:
    return DayMetrics(spend=Decimal(spend), api_requests=requests, successful_requests=requests)


def write(day: date, facts: list[Fact], keys: dict[str, KeyMetadata] | None = None) -> DayWrite:
    return DayWrite(day, facts, keys or {}, "closed", True, FETCHED)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[tuple[DayStore, Database]]:
    db = await Database.open(database_url, max_size=4)
    yield DayStore(db), db
    await db.close()


async def test_days_of_one_write_are_stored_each_as_given(store: tuple[DayStore, Database]) -> None:
    days, db = store
    first, second = date(2026, 10, 30), date(2026, 11, 2)
    await days.replace_days([write(first, [Fact(KEY_A, "u1", "m", "p", metrics("9", 9))])])
    states = await days.replace_days(
        [
            write(
                first,
                [
                    Fact(KEY_A, "u1", "m", "p", metrics("0.1", 1)),
                    Fact(KEY_B, "u2", "m", "p", metrics("0.2", 2)),
                ],
                {KEY_A: KeyMetadata(key_alias="old")},
            ),
            write(
                second,
                [Fact(KEY_A, "u1", "m", "p", metrics("1.5", 3)), Fact(KEY_A, "u1", "m", "q", DayMetrics())],
                {KEY_A: KeyMetadata(key_alias="new")},
            ),
        ]
    )
    assert {d: (s.fact_count, s.spend, s.api_requests) for d, s in states.items()} == {
        first: (2, Decimal("0.3"), 3),
        second: (1, Decimal("1.5"), 3),  # the all-zero cell is not a fact
    }
    rows = await db.fetch_all("SELECT date, api_key, spend FROM usage_facts ORDER BY 1, 2", ())
    assert rows == [
        (first, KEY_A, Decimal("0.1")),
        (first, KEY_B, Decimal("0.2")),
        (second, KEY_A, Decimal("1.5")),
    ]
    alias = await db.fetch_one("SELECT key_alias, last_seen FROM litellm_keys WHERE api_key = %s", (KEY_A,))
    assert alias == ("new", second)  # a key of several days keeps what its last day says
    month = await db.fetch_all("SELECT month, spend FROM usage_model_months ORDER BY 1", ())
    assert month == [(date(2026, 10, 1), Decimal("0.3")), (date(2026, 11, 1), Decimal("1.5"))]


async def test_writers_of_the_same_month_take_turns(store: tuple[DayStore, Database]) -> None:
    """Rewrites of days of one month, each changing which groups a day has, all at once, many times."""
    days, db = store
    month = [date(2026, 10, n) for n in range(1, 9)]

    def facts(n: int, turn: int) -> list[Fact]:
        keys = [KEY_A, KEY_B][: 1 + (n + turn) % 2]
        return [Fact(key, f"u{(n + turn) % 3}", "m", "p", metrics("1", 1)) for key in keys]

    for turn in range(4):
        writers = (days.replace_days([write(day, facts(n, turn))]) for n, day in enumerate(month))
        await asyncio.gather(*writers)
    total = await db.fetch_one("SELECT sum(spend), count(*) FROM usage_facts", ())
    rolled = await db.fetch_one("SELECT sum(spend), bit_or(active_days) FROM usage_key_months", ())
    assert total is not None
    assert rolled == (total[0], 0b11111111)
