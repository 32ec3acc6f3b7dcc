"""The answer cache through the ASGI app, on real Postgres and Redis, with LiteLLM played by the project's
compatible server: hits skip execution (no SQL) but not the limits, and never cross viewers, data versions,
open-day freshness, mutations or errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
from redis.asyncio import Redis

from tests.api_client import (
    LITELLM_MASTER_KEY,
    SECRET,
    DirectoryKey,
    DirectoryUser,
    Gateway,
    seed_directory,
    token_hash,
)
from tests.gateway_harness import clock_at, long_after
from tests.litellm_rows import make_row
from usage_gateway.datasources.answer_cache import AnswerCache
from usage_gateway.datasources.daycache.days import Clock, RangeReport
from usage_gateway.datasources.db import count_statements
from usage_gateway.devtools.litellm_compat import LiteLLMStore, running_litellm
from usage_gateway.resolvers.viewer import Role
from usage_gateway.server.app import create_app
from usage_gateway.server.config import Settings
from usage_gateway.server.resources import Resources

DAYS = [date(2026, 10, 5), date(2026, 10, 6)]
RANGE = {"from": "2026-10-05", "to": "2026-10-06"}
ALICE_KEY, BOB_KEY, CAROL_KEY = token_hash("key-a"), token_hash("key-b"), token_hash("key-c")
DASHBOARD = """
query($from: Date!, $to: Date!) {
  usage(filter: {from: $from, to: $to}) {
    totals { spend requests activeUsers }
    previousPeriod { spend requests }
    timeSeries { date metrics { spend requests } }
    byUser(first: 10) { totalCount nodes { userId share metrics { spend requests } } }
    byModel(first: 10) { nodes { model providers metrics { requests } } }
    freshness { complete days closedDays openDays missingDays }
  }
}"""
ANSWERS = "ug:answer:*"


def rows_for(days: list[date], requests: int = 1) -> list[dict[str, Any]]:
    """Alice (key a), Bob (key b) and Carol (key c, not in the directory at first) on every day."""
    rows = []
    for day in days:
        for user, key, model, provider, n in [
            ("u-alice", ALICE_KEY, "gpt-4o", "openai", 1),
            ("u-bob", BOB_KEY, "claude-3", "anthropic", 2),
            ("u-carol", CAROL_KEY, "gpt-4o", "openai", 3),
        ]:
            rows.append(
                make_row(
                    day.isoformat(),
                    user,
                    key,
                    model,
                    provider,
                    spend=0.5 * n,
                    prompt_tokens=100 * n,
                    completion_tokens=10,
                    successful_requests=requests * n,
                )
            )
    return rows


def litellm_key(token: str, user_id: str) -> dict[str, Any]:
    return {"token": token, "key_name": f"sk-...{token[:4]}", "key_alias": None, "user_id": user_id}


@contextmanager
def litellm(rows: list[dict[str, Any]]) -> Iterator[tuple[LiteLLMStore, str]]:
    store = LiteLLMStore(keys=[], users=[], rows=rows)
    with running_litellm(store) as url:
        yield store, url


@asynccontextmanager
async def gateway(
    database_url: str,
    redis_url: str,
    litellm_url: str | None,
    *,
    clock: Clock,
    today_ttl_seconds: int = 300,
    answers_redis_url: str | None = None,
    **overrides: Any,
) -> AsyncIterator[tuple[Gateway, Redis]]:
    """The app with its day cache and answer cache on one (injected) clock; directory: alice and bob."""
    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        jwt_secret=SECRET,
        litellm_url=litellm_url,
        litellm_master_key=LITELLM_MASTER_KEY,
        litellm_retries=1,
        today_ttl_seconds=today_ttl_seconds,
        **overrides,
    )
    resources = await Resources.open(settings, clock=clock)
    db, redis = resources.db, resources.redis
    assert redis is not None
    answers_redis = redis
    if answers_redis_url:  # the answer cache on a Redis of its own
        answers_redis = Redis.from_url(answers_redis_url)
        resources.answers = AnswerCache(
            answers_redis, settings.answer_cache_ttl_seconds, today_ttl_seconds=today_ttl_seconds, clock=clock
        )
    if await db.fetch_one("SELECT 1 FROM users LIMIT 1") is None:
        await seed_directory(
            db,
            [DirectoryUser("alice"), DirectoryUser("bob")],
            [DirectoryKey("key-a", ALICE_KEY, "alice"), DirectoryKey("key-b", BOB_KEY, "bob")],
        )
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(settings, resources=resources)),
            base_url="http://gateway",
        ) as http:
            yield Gateway(http, db, settings), redis
    finally:
        if answers_redis is not redis:
            await answers_redis.aclose()
        await resources.close()


async def ask(gw: Gateway, query: str = DASHBOARD, *, token: str | None = None) -> tuple[str, dict[str, Any]]:
    """The X-Answer-Cache header and the body of an HTTP 200 answer."""
    response = await gw.post(query, RANGE, token=token)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return response.headers["x-answer-cache"], body


def user_ids(body: dict[str, Any]) -> set[str]:
    return {node["userId"] for node in body["data"]["usage"]["byUser"]["nodes"]}


async def test_a_repeated_query_is_answered_from_redis_without_sql(database_url: str, redis_url: str) -> None:
    with litellm(rows_for(DAYS)) as (_, url):
        async with gateway(database_url, redis_url, url, clock=clock_at(long_after(DAYS[-1]))) as (gw, redis):
            # The first answer fetches the days; a day written while an answer was computed voids it.
            assert (await ask(gw))[0] == "miss"
            status, computed = await ask(gw)
            assert status == "miss"
            assert len(await redis.keys(ANSWERS)) == 1
            with count_statements() as counter:
                response = await gw.post(DASHBOARD, RANGE)
            assert response.headers["x-answer-cache"] == "hit"
            assert counter.count == 0, counter.statements
            assert response.json() == computed
            assert computed["extensions"]["cost"]["requested"] > 0
            assert "errors" not in computed
            assert computed["data"]["usage"]["totals"]["requests"] == 2 * (1 + 2 + 3)
            # A closed range lives the whole ANSWER_CACHE_TTL_SECONDS.
            [key] = await redis.keys(ANSWERS)
            assert 290_000 < await redis.pttl(key) <= 300_000


async def test_other_viewers_never_get_an_answer_cached_for_someone_else(
    database_url: str, redis_url: str
) -> None:
    with litellm(rows_for(DAYS)) as (_, url):
        async with gateway(database_url, redis_url, url, clock=clock_at(long_after(DAYS[-1]))) as (gw, _):
            await ask(gw)
            await ask(gw)
            status, everyone = await ask(gw)
            assert status == "hit"
            assert user_ids(everyone) == {"alice", "bob", "litellm:u-carol"}

            alice = gw.token("alice", Role.USER)
            status, hers = await ask(gw, token=alice)
            assert status == "miss"
            assert user_ids(hers) == {"alice"}
            assert hers["data"]["usage"]["totals"]["requests"] == 2
            assert await ask(gw, token=alice) == ("hit", hers)

            status, his = await ask(gw, token=gw.token("bob", Role.USER))
            assert status == "miss"
            assert user_ids(his) == {"bob"}
            # Same data, different subject or roles: still a separate entry.
            assert (await ask(gw, token=gw.token("ro", Role.ADMIN_READONLY)))[0] == "miss"
            assert (await ask(gw, token=gw.token("admin", Role.ADMIN, Role.USER)))[0] == "miss"


async def test_a_written_day_or_a_changing_sync_invalidates_every_answer(
    database_url: str, redis_url: str
) -> None:
    refresh = "mutation($from: Date!, $to: Date!) { refreshRange(from: $from, to: $to) { changed } }"
    sync = "mutation { syncDirectory { usersCreated apiKeysCreated apiKeysUpdated } }"
    with litellm(rows_for(DAYS)) as (store, url):
        async with gateway(database_url, redis_url, url, clock=clock_at(long_after(DAYS[-1]))) as (gw, _):
            await ask(gw)
            await ask(gw)
            status, before = await ask(gw)
            assert status == "hit"

            store.set_rows(rows_for(DAYS, requests=10))
            # Closed days are not fetched again by themselves, so the answer stays the same...
            assert await ask(gw) == ("hit", before)
            # ...until an admin refreshes them: the write moves the data version.
            assert (await gw.data(refresh, RANGE))["refreshRange"]["changed"] is True
            status, after = await ask(gw)
            assert status == "miss"
            assert (
                after["data"]["usage"]["totals"]["requests"]
                == 10 * before["data"]["usage"]["totals"]["requests"]
            )
            assert (await ask(gw))[0] == "hit"

            # A sync that brings Carol and her key in re-attributes her spend: answers are void.
            store.set_users([{"user_id": u} for u in ("alice", "bob", "carol")])
            store.set_keys(
                [
                    litellm_key(ALICE_KEY, "alice"),
                    litellm_key(BOB_KEY, "bob"),
                    litellm_key(CAROL_KEY, "carol"),
                ]
            )
            assert (await gw.data(sync))["syncDirectory"]["usersCreated"] == 1
            status, synced = await ask(gw)
            assert status == "miss"
            assert user_ids(synced) == {"alice", "bob", "carol"}
            # A sync that changes nothing leaves them be.
            assert (await gw.data(sync))["syncDirectory"] == {
                "usersCreated": 0,
                "apiKeysCreated": 0,
                "apiKeysUpdated": 0,
            }
            assert await ask(gw) == ("hit", synced)


async def test_mutations_and_export_lookups_are_never_cached(database_url: str, redis_url: str) -> None:
    refresh = "mutation { refreshToday { changed } }"
    lookup = 'query { export(id: "no-such-export") { id status } }'
    with litellm(rows_for(DAYS)) as (_, url):
        async with gateway(database_url, redis_url, url, clock=clock_at(long_after(DAYS[-1]))) as (gw, redis):
            for _ in range(2):
                assert (await ask(gw, refresh))[0] == "bypass"
                status, body = await ask(gw, lookup)
                assert status == "bypass"
                assert body["data"] == {"export": None}
            assert await redis.keys(ANSWERS) == []


async def test_an_answer_over_open_days_expires_when_they_go_stale(database_url: str, redis_url: str) -> None:
    today = date(2026, 10, 6)
    ttl = 2
    with litellm(rows_for(DAYS)) as (store, url):
        async with gateway(
            database_url,
            redis_url,
            url,
            clock=clock_at(datetime.combine(today, time(15), UTC)),
            today_ttl_seconds=ttl,
        ) as (gw, redis):
            await ask(gw)
            status, first = await ask(gw)
            assert status == "miss"
            assert first["data"]["usage"]["freshness"]["openDays"] == [today.isoformat()]
            [key] = await redis.keys(ANSWERS)
            # Capped by the open day's freshness, not ANSWER_CACHE_TTL_SECONDS (300 s).
            assert 0 < await redis.pttl(key) <= ttl * 1000
            assert await ask(gw) == ("hit", first)

            store.set_rows(rows_for(DAYS, requests=2))
            await asyncio.sleep(ttl + 0.1)
            # Expired with the day's freshness: the day cache fetches today again, the answer shows it.
            status, later = await ask(gw)
            assert status == "miss"
            assert (
                later["data"]["usage"]["totals"]["requests"]
                == first["data"]["usage"]["totals"]["requests"] + 6
            )


async def test_answers_with_errors_or_missing_days_are_not_cached(database_url: str, redis_url: str) -> None:
    named = (
        "query($from: Date!, $to: Date!) {"
        ' usage(filter: {from: $from, to: $to, userIds: ["bob"]}) { totals { requests } } }'
    )
    with litellm(rows_for(DAYS)) as (_, url):
        async with gateway(database_url, redis_url, url, clock=clock_at(long_after(DAYS[-1]))) as (gw, redis):
            alice = gw.token("alice", Role.USER)
            for _ in range(2):
                status, body = await ask(gw, named, token=alice)
                assert status == "miss"
                assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            # A document that does not validate never reaches the cache.
            status, body = await ask(gw, "query { usage { nothing } }")
            assert status == "bypass"
            assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            assert await redis.keys(ANSWERS) == []
    # No LiteLLM and nothing stored: the days are missing, reported next to (empty) data, never cached.
    async with gateway(database_url, redis_url, None, clock=clock_at(long_after(DAYS[-1]))) as (gw, redis):
        for _ in range(2):
            status, body = await ask(gw)
            assert status == "miss"
            assert body["data"]["usage"]["freshness"]["missingDays"] == [d.isoformat() for d in DAYS]
            assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
        assert await redis.keys(ANSWERS) == []


async def test_cached_answers_still_charge_the_rate_limit(database_url: str, redis_url: str) -> None:
    with litellm(rows_for(DAYS)) as (_, url):
        clock = clock_at(long_after(DAYS[-1]))
        async with gateway(database_url, redis_url, url, clock=clock) as (gw, _):
            cost = (await ask(gw))[1]["extensions"]["cost"]["requested"]
        async with gateway(database_url, redis_url, url, clock=clock, rate_limit_cost=4 * cost) as (gw, _):
            statuses = [(await ask(gw))[0] for _ in range(3)]
            assert statuses == ["miss", "hit", "hit"]
            limited = await gw.post(DASHBOARD, RANGE)
            assert limited.status_code == 429
            assert limited.headers["x-answer-cache"] == "bypass"
            assert int(limited.headers["retry-after"]) >= 1
            assert limited.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_a_failing_redis_never_fails_a_request(database_url: str, redis_url: str) -> None:
    with litellm(rows_for(DAYS)) as (_, url):
        async with gateway(
            database_url,
            redis_url,
            url,
            clock=clock_at(long_after(DAYS[-1])),
            answers_redis_url="redis://127.0.0.1:1/0",
        ) as (gw, _):
            for _ in range(2):
                status, body = await ask(gw)
                assert status == "bypass"
                assert body["data"]["usage"]["totals"]["requests"] == 12


def test_how_long_an_answer_lives() -> None:
    now = datetime(2026, 10, 6, 15, 0, tzinfo=UTC)
    cache = AnswerCache(Redis(), 300, today_ttl_seconds=60, clock=lambda: now)
    closed = RangeReport(days=DAYS[:1], closed=DAYS[:1], as_of=now - timedelta(days=1))
    open_ = RangeReport(days=DAYS, closed=DAYS[:1], open=DAYS[1:], as_of=now - timedelta(seconds=20))
    assert cache.ttl_ms([]) == 300_000
    assert cache.ttl_ms([closed]) == 300_000
    assert cache.ttl_ms([closed, open_]) == 40_000
    assert cache.ttl_ms([RangeReport(days=DAYS, open=DAYS, as_of=now - timedelta(seconds=61))]) == 0
    assert cache.ttl_ms([RangeReport(days=DAYS, missing=DAYS)]) == 0
    assert cache.ttl_ms([RangeReport(days=DAYS, failures={DAYS[0]: "down"})]) == 0
    late = AnswerCache(Redis(), 300, clock=lambda: datetime(2026, 10, 6, 23, 59, 30, tzinfo=UTC))
    assert late.ttl_ms([closed]) == 30_000  # never past midnight: "today" moves every range


async def test_identical_requests_arriving_together_compute_the_answer_once(
    database_url: str, redis_url: str
) -> None:
    with litellm(rows_for(DAYS)) as (_, url):
        async with gateway(database_url, redis_url, url, clock=clock_at(long_after(DAYS[-1]))) as (gw, redis):
            other = DASHBOARD.replace("totals {", "totals { failedRequests")
            await ask(gw, other)  # fetches the days, so what follows only reads Postgres
            with count_statements() as alone:
                await ask(gw)
            await redis.delete(*await redis.keys(ANSWERS))
            with count_statements() as together:
                answers = await asyncio.gather(*(ask(gw) for _ in range(20)))
            # One computation's statements, not twenty.
            assert together.count == alone.count, together.statements
            assert sorted(status for status, _ in answers) == ["hit"] * 19 + ["miss"]
            assert all(body == answers[0][1] for _, body in answers)
