"""The Postgres tier of the day cache: which days we hold, and replacing days atomically."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from usage_gateway.datasources.db import Database, note_statement
from usage_gateway.datasources.litellm.split import Fact, SideFact
from usage_gateway.datasources.litellm.wire import KeyMetadata

DayStatus = Literal["open", "closed"]

_METRIC_COLUMNS = (
    "spend, prompt_tokens, completion_tokens, cache_read_input_tokens, cache_creation_input_tokens,"
    " total_tokens, api_requests, successful_requests, failed_requests, total_response_time_ms,"
    " timed_requests"
)
_STATE_COLUMNS = (
    "date, status, fetched_at, verified, spend, api_requests, total_tokens, fact_count, unverified_fetches"
)
# Binary COPY: the text of each number is neither formatted here nor parsed there.
_FACT_TYPES = ("date", "text", "text", "text", "text", "text", "numeric", *["int8"] * 10)
_KEY_COLUMNS = "api_key, key_alias, team_id, user_id, user_email, key_exists, last_seen"
_KEY_TYPES = ("text", "text", "text", "text", "text", "bool", "date")
_FACT_COLUMNS = f"date, api_key, litellm_user_id, model, provider, user_id, {_METRIC_COLUMNS}"
# The staged rows carry no user and no team: attribution is the database's job (attributed_user, migration
# 0001; attributed_team, migration 0007).
_ATTRIBUTED_SELECT = (
    f"date, api_key, litellm_user_id, model, provider, attributed_user(api_key, date, litellm_user_id),"
    f" {_METRIC_COLUMNS}"
)


_SIDE_COLUMNS = f"date, rollup, bucket, api_key, model, {_METRIC_COLUMNS}"
_SIDE_TYPES = ("date", "text", "text", "text", "text", "numeric", *["int8"] * 10)


# The first key of the month locks of replace_days (pg_advisory_xact_lock(int, int)); the second is the
# month's day number since 2000-01-01.
_MONTH_LOCKS = 7_250_302


@dataclass(frozen=True)
class DayWrite:
    """A day's facts and keys as read, and how to store it."""

    day: date
    facts: Sequence[Fact]
    keys: dict[str, KeyMetadata]
    status: DayStatus
    verified: bool
    fetched_at: datetime
    side: Sequence[SideFact] = ()  # model groups, endpoints, MCP tools (migration 0009)


@dataclass(frozen=True)
class DayState:
    date: date
    status: DayStatus
    fetched_at: datetime
    verified: bool
    spend: Decimal
    api_requests: int
    total_tokens: int
    fact_count: int
    unverified_fetches: int = 0  # fetches in a row that did not verify (0 once one does)

    def same_numbers(self, other: DayState) -> bool:
        return (self.spend, self.api_requests, self.total_tokens, self.fact_count) == (
            other.spend,
            other.api_requests,
            other.total_tokens,
            other.fact_count,
        )


class DayStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def states(self, days: Sequence[date]) -> dict[date, DayState]:
        rows = await self._db.fetch_all(
            f"SELECT {_STATE_COLUMNS} FROM usage_days WHERE date = ANY(%s)",
            (list(days),),
        )
        return {row[0]: DayState(*row) for row in rows}

    async def state(self, day: date) -> DayState | None:
        return (await self.states([day])).get(day)

    async def reopen(self, days: Sequence[date]) -> None:
        await self._db.execute("UPDATE usage_days SET status = 'open' WHERE date = ANY(%s)", (list(days),))

    async def replace_days(self, writes: Sequence[DayWrite]) -> dict[date, DayState]:
        """Swap in the facts of several days in one transaction: readers see each day old or new, never
        half. Every statement works on all the days at once, so the triggers that keep the rollups run
        once per statement, not once per day.

        A cell with no usage at all (LiteLLM keeps rows whose every number is zero) is not a fact: it would
        count its user, key and model as active without a request, a token or a cent behind it. The facts go
        in by binary COPY; each day's sums are Postgres's, over what it stored. Writers of the same months
        take turns (an advisory lock per month, in order): the month rollups' rows they share are then
        never locked by two of them in opposite orders.
        """
        if not writes:
            return {}
        days = [write.day for write in writes]
        months = sorted({day.replace(day=1) for day in days})
        async with self._db.transaction() as conn:
            note_statement("replace_days")
            await conn.execute(
                "SELECT pg_advisory_xact_lock(%s, (m - DATE '2000-01-01')) FROM unnest(%s::date[]) AS m",
                (_MONTH_LOCKS, months),
            )
            await conn.execute("DELETE FROM usage_facts WHERE date = ANY(%s)", (days,))
            await conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS staged_facts (LIKE usage_facts INCLUDING DEFAULTS)"
                " ON COMMIT DELETE ROWS"
            )
            cursor = conn.cursor()
            async with cursor.copy(f"COPY staged_facts ({_FACT_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(_FACT_TYPES)
                for write in writes:
                    day = write.day
                    for api_key, user, model, provider, metrics in write.facts:
                        if any(metrics):
                            await copy.write_row((day, api_key, user, model, provider, "", *metrics))
            await conn.execute(
                f"INSERT INTO usage_facts ({_FACT_COLUMNS}, team_id)"
                f" SELECT {_ATTRIBUTED_SELECT}, attributed_team(api_key, date) FROM staged_facts"
            )
            await conn.execute("DELETE FROM usage_breakdown_facts WHERE date = ANY(%s)", (days,))
            async with cursor.copy(
                f"COPY usage_breakdown_facts ({_SIDE_COLUMNS}) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(_SIDE_TYPES)
                for write in writes:
                    day = write.day
                    for rollup, bucket, api_key, model, metrics in write.side:
                        if any(metrics):
                            await copy.write_row((day, rollup, bucket, api_key, model, *metrics))
            # Staged with COPY and upserted in one statement: a day names thousands of keys. A key of
            # several days keeps what its last day says. Sorted, so concurrent writers lock shared key
            # rows in one order and cannot deadlock.
            await conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS staged_keys (LIKE litellm_keys) ON COMMIT DELETE ROWS"
            )
            async with cursor.copy(f"COPY staged_keys ({_KEY_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(_KEY_TYPES)
                for write in writes:
                    for key, m in write.keys.items():
                        await copy.write_row(
                            (key, m.key_alias, m.team_id, m.user_id, m.user_email, m.key_exists, write.day)
                        )
            await conn.execute(
                f"INSERT INTO litellm_keys ({_KEY_COLUMNS})"
                f" SELECT DISTINCT ON (api_key) {_KEY_COLUMNS} FROM staged_keys"
                " ORDER BY api_key, last_seen DESC"
                " ON CONFLICT (api_key) DO UPDATE SET key_alias = EXCLUDED.key_alias,"
                " team_id = EXCLUDED.team_id, user_id = EXCLUDED.user_id, user_email = EXCLUDED.user_email,"
                " key_exists = EXCLUDED.key_exists, last_seen = EXCLUDED.last_seen"
                " WHERE litellm_keys.last_seen <= EXCLUDED.last_seen"
            )
            upserted = await conn.execute(
                "INSERT INTO usage_days (date, status, fetched_at, verified, fact_count, spend, api_requests,"
                " total_tokens, unverified_fetches)"
                " SELECT w.date, w.status, w.fetched_at, w.verified, coalesce(s.n, 0),"
                " coalesce(s.spend, 0), coalesce(s.api_requests, 0), coalesce(s.total_tokens, 0),"
                " CASE WHEN w.verified THEN 0 ELSE 1 END"
                " FROM unnest(%s::date[], %s::text[], %s::timestamptz[], %s::boolean[])"
                " AS w (date, status, fetched_at, verified)"
                " LEFT JOIN (SELECT date, count(*) AS n, sum(spend) AS spend,"
                " sum(api_requests) AS api_requests, sum(total_tokens) AS total_tokens"
                " FROM staged_facts GROUP BY date) s USING (date)"
                " ORDER BY w.date"
                " ON CONFLICT (date) DO UPDATE SET status = EXCLUDED.status,"
                " fetched_at = EXCLUDED.fetched_at, verified = EXCLUDED.verified,"
                " fact_count = EXCLUDED.fact_count, spend = EXCLUDED.spend,"
                " api_requests = EXCLUDED.api_requests, total_tokens = EXCLUDED.total_tokens,"
                " unverified_fetches = CASE WHEN EXCLUDED.verified THEN 0"
                " ELSE usage_days.unverified_fetches + 1 END"
                f" RETURNING {_STATE_COLUMNS}",
                (
                    days,
                    [write.status for write in writes],
                    [write.fetched_at for write in writes],
                    [write.verified for write in writes],
                ),
            )
            returned = await upserted.fetchall()
        states = [DayState(*row) for row in returned]
        return {state.date: state for state in states}
