"""The daily and monthly rollups (migrations 0004, 0006 and 0013) always equal the facts they summarise,
whoever writes the facts: sums, and the days of each month a group has facts on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.facts_data import BASE, DAYS, KEYS, USERS, Fact, facts_lists, replace_facts
from usage_gateway.datasources.db import Database

_METRICS = (
    "spend, prompt_tokens, completion_tokens, cache_read_input_tokens, cache_creation_input_tokens,"
    " total_tokens, api_requests, successful_requests, failed_requests, total_response_time_ms,"
    " timed_requests"
)
_SUMS = ", ".join(f"sum({name.strip()})" for name in _METRICS.split(","))
_DAY_BITS = "bit_or(1 << (extract(day FROM date)::integer - 1))"
# Each rollup, and the same numbers grouped straight from the facts.
_PAIRS = {
    "user": (
        f"SELECT date, user_id, {_METRICS} FROM usage_user_days ORDER BY 1, 2",
        f"SELECT date, user_id, {_SUMS} FROM usage_facts GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    "model": (
        f"SELECT date, model, provider, {_METRICS} FROM usage_model_days ORDER BY 1, 2, 3",
        f"SELECT date, model, provider, {_SUMS} FROM usage_facts GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    ),
    "team": (
        f"SELECT date, team_id, {_METRICS} FROM usage_team_days ORDER BY 1, 2",
        f"SELECT date, team_id, {_SUMS} FROM usage_facts GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    **{
        f"{name} months": (
            f"SELECT month, {columns}, {_METRICS}, active_days FROM usage_{name}_months"
            f" ORDER BY 1, {columns}",
            f"SELECT date_trunc('month', date)::date AS month, {columns}, {_SUMS}, {_DAY_BITS}"
            f" FROM usage_facts GROUP BY 1, {columns} ORDER BY 1, {columns}",
        )
        for name, columns in (
            ("user", "user_id"),
            ("key", "api_key, user_id"),
            ("model", "model, provider"),
            ("team", "team_id"),
        )
    },
}


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await Database.open(database_url, max_size=2)
    yield database
    await database.close()


async def assert_rollups_match(db: Database) -> None:
    for name, (rollup, grouped) in _PAIRS.items():
        assert await db.fetch_all(rollup, ()) == await db.fetch_all(grouped, ()), name


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=facts_lists, second=facts_lists)
async def test_rollups_equal_the_facts_after_every_replacement(
    db: Database, first: list[Fact], second: list[Fact]
) -> None:
    await replace_facts(db, first)
    await assert_rollups_match(db)
    await replace_facts(db, second)  # deletes every fact, then writes others
    await assert_rollups_match(db)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    facts=facts_lists,
    days=st.sets(st.integers(0, DAYS), max_size=10),
    owner=st.sampled_from(USERS),
    moved_from=st.integers(0, DAYS),
)
async def test_rollups_follow_partial_deletes_and_updates(
    db: Database, facts: list[Fact], days: set[int], owner: str, moved_from: int
) -> None:
    """Some days deleted, leaving the rest of their months; then one key's facts moved to another user,
    and from some day on to a team (as migration 0007's triggers move them)."""
    await replace_facts(db, facts)
    await db.execute(
        "DELETE FROM usage_facts WHERE date = ANY(%s)", ([BASE + timedelta(days=n) for n in days],)
    )
    await assert_rollups_match(db)
    await db.execute("UPDATE usage_facts SET user_id = %s WHERE api_key = %s", (owner, KEYS[0]))
    await assert_rollups_match(db)
    await db.execute(
        "UPDATE usage_facts SET team_id = 'team-a' WHERE api_key = %s AND date >= %s",
        (KEYS[1], BASE + timedelta(days=moved_from)),
    )
    await assert_rollups_match(db)


async def test_rollups_follow_a_key_that_joins_the_directory(db: Database) -> None:
    """A new directory key re-attributes its facts (a trigger updates usage_facts.user_id)."""
    await db.execute(
        "INSERT INTO usage_facts (date, api_key, litellm_user_id, model, provider, user_id, spend,"
        " prompt_tokens, completion_tokens, cache_read_input_tokens, cache_creation_input_tokens,"
        " total_tokens, api_requests, successful_requests, failed_requests, total_response_time_ms,"
        " timed_requests) VALUES ('2024-01-22', %s, 'x', 'gpt-4o', 'openai', 'litellm:x', 2.5,"
        " 1, 1, 0, 0, 2, 3, 3, 0, 10, 3)",
        (KEYS[0],),
    )
    before = await db.fetch_all("SELECT user_id, spend FROM usage_user_days", ())
    assert [(user, float(spend)) for user, spend in before] == [("litellm:x", 2.5)]
    await db.execute("INSERT INTO users (id, username) VALUES ('carol', 'carol')", ())
    await db.execute(
        "INSERT INTO api_keys (id, user_id, token_hash) VALUES ('key-1', 'carol', %s)", (KEYS[0],)
    )
    after = await db.fetch_all("SELECT user_id, spend FROM usage_user_days", ())
    assert [(user, float(spend)) for user, spend in after] == [("carol", 2.5)]
    await assert_rollups_match(db)
