"""Answer-cache hits on texts the gateway has prepared (server/cached_answers.py, schema/prepared.py):
answered without Strawberry, yet byte for byte the answer Strawberry gives, keyed by the canonical text,
and still authenticated, access-checked, costed and charged per request."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from graphql import parse
from redis.asyncio import Redis

from tests.api_client import Gateway
from tests.gateway_harness import clock_at, long_after
from tests.test_answer_cache import ANSWERS, DASHBOARD, DAYS, RANGE, gateway, litellm, rows_for
from usage_gateway.datasources.answer_cache import AnswerCache
from usage_gateway.datasources.db import count_statements
from usage_gateway.resolvers.limits import Limits
from usage_gateway.resolvers.viewer import Role, Viewer
from usage_gateway.schema.prepared import PreparedDocuments
from usage_gateway.schema.schema import ServedSchema, build_schema
from usage_gateway.server.cached_answers import CachedAnswers, Outcome
from usage_gateway.server.resources import REDIS_CONNECTIONS

COST_WINDOWS = "usage-gateway:cost:"
# The dashboard with a comment, other whitespace and commas: the same canonical document.
VARIANT = "# the dashboard, reformatted\n" + re.sub(r"\s+", "  ,\n\t", DASHBOARD.strip())


@pytest.fixture
def strawberry_runs(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The query text of every operation Strawberry executes (a hit answered without it adds none)."""
    runs: list[str | None] = []
    execute = ServedSchema.execute

    async def counted(self: ServedSchema, query: str | None, *args: Any, **kwargs: Any) -> Any:
        runs.append(query)
        return await execute(self, query, *args, **kwargs)

    monkeypatch.setattr(ServedSchema, "execute", counted)
    return runs


@asynccontextmanager
async def warm(database_url: str, redis_url: str, **overrides: Any) -> AsyncIterator[tuple[Gateway, Redis]]:
    """A gateway whose dashboard answer is stored (the first answer fetches the days and is voided)."""
    with litellm(rows_for(DAYS)) as (_, url):
        clock = clock_at(long_after(DAYS[-1]))
        async with gateway(database_url, redis_url, url, clock=clock, **overrides) as (gw, redis):
            for _ in range(2):
                response = await gw.post(DASHBOARD, RANGE)
                assert response.headers["x-answer-cache"] == "miss", response.text
            yield gw, redis


async def post(gw: Gateway, query: str = DASHBOARD, *, token: str | None = None) -> httpx.Response:
    return await gw.post(query, RANGE, token=token)


async def test_a_hit_is_the_miss_byte_for_byte_without_sql(
    database_url: str, redis_url: str, strawberry_runs: list[str | None]
) -> None:
    with litellm(rows_for(DAYS)) as (_, url):
        async with gateway(database_url, redis_url, url, clock=clock_at(long_after(DAYS[-1]))) as (gw, _):
            await post(gw)  # fetches the days: this answer is voided
            miss = await post(gw)
            assert miss.headers["x-answer-cache"] == "miss"
            assert len(strawberry_runs) == 2
            with count_statements() as counter:
                hit = await gw.client.post(
                    "/graphql",
                    json={"query": DASHBOARD, "variables": RANGE},
                    headers={"Authorization": f"Bearer {gw.admin}", "X-Request-ID": "req-42"},
                )
            assert counter.count == 0
            assert len(strawberry_runs) == 2
            assert hit.status_code == 200
            assert hit.headers["x-answer-cache"] == "hit"
            assert hit.headers["x-request-id"] == "req-42"
            assert hit.headers["content-type"] == "application/json"
            assert hit.content == miss.content
            assert hit.json()["extensions"] == {"cost": miss.json()["extensions"]["cost"]}


async def test_whitespace_and_comment_variants_share_one_entry(
    database_url: str, redis_url: str, strawberry_runs: list[str | None]
) -> None:
    async with warm(database_url, redis_url) as (gw, redis):
        stored = await post(gw)
        assert stored.headers["x-answer-cache"] == "hit"
        # A text seen for the first time goes through Strawberry, and finds the canonical entry...
        first = await post(gw, VARIANT)
        assert strawberry_runs[-1] == VARIANT
        # ...and is answered without it from then on.
        runs = len(strawberry_runs)
        again = await post(gw, VARIANT)
        assert len(strawberry_runs) == runs
        assert [first.headers["x-answer-cache"], again.headers["x-answer-cache"]] == ["hit", "hit"]
        assert first.content == again.content == stored.content
        assert len(await redis.keys(ANSWERS)) == 1


async def test_a_named_operation_is_one_entry_named_or_not(
    database_url: str, redis_url: str, strawberry_runs: list[str | None]
) -> None:
    named = DASHBOARD.replace("query(", "query Dashboard(")
    async with warm(database_url, redis_url) as (gw, redis):
        answers = []
        for name in (None, "Dashboard", None, "Dashboard"):
            body = {"query": named, "variables": RANGE, "operationName": name}
            headers = {"Authorization": f"Bearer {gw.admin}"}
            answers.append(await gw.client.post("/graphql", json=body, headers=headers))
        assert [a.headers["x-answer-cache"] for a in answers] == ["miss", "hit", "hit", "hit"]
        assert len({a.content for a in answers}) == 1
        assert strawberry_runs.count(named) == 1  # then prepared, whether the request names it or not
        assert len(await redis.keys(ANSWERS)) == 2  # the anonymous dashboard's, and this one's
        wrong = {"query": named, "variables": RANGE, "operationName": "Other"}
        response = await gw.client.post(
            "/graphql", json=wrong, headers={"Authorization": f"Bearer {gw.admin}"}
        )
        assert response.status_code == 400


async def test_a_hit_still_needs_a_valid_token(database_url: str, redis_url: str) -> None:
    async with warm(database_url, redis_url) as (gw, _):
        assert (await post(gw)).headers["x-answer-cache"] == "hit"
        for headers in ({"Authorization": "Bearer not-a-token"}, {}):
            response = await gw.client.post(
                "/graphql", json={"query": DASHBOARD, "variables": RANGE}, headers=headers
            )
            assert response.status_code == 401
            assert "data" not in response.json()
            assert "x-answer-cache" not in response.headers


async def test_hits_are_charged_once_and_refused_over_the_rate_limit(
    database_url: str, redis_url: str
) -> None:
    with litellm(rows_for(DAYS)) as (_, url):
        clock = clock_at(long_after(DAYS[-1]))
        async with gateway(database_url, redis_url, url, clock=clock) as (gw, redis):
            await post(gw)  # fetches the days
            cost = (await post(gw)).json()["extensions"]["cost"]["requested"]
            await redis.delete(*await redis.keys(ANSWERS), *await redis.keys(f"{COST_WINDOWS}*"))
        async with gateway(database_url, redis_url, url, clock=clock, rate_limit_cost=4 * cost) as (
            gw,
            redis,
        ):
            assert (await post(gw)).headers["x-answer-cache"] == "miss"  # through Strawberry: prepared
            await redis.delete(*await redis.keys(ANSWERS))
            # Charged before its lookup missed, and not again by Strawberry, which computed it (else the
            # budget would run out a hit earlier).
            assert (await post(gw)).headers["x-answer-cache"] == "miss"
            assert [(await post(gw)).headers["x-answer-cache"] for _ in range(2)] == ["hit", "hit"]
            limited = await post(gw)
            assert limited.status_code == 429
            assert int(limited.headers["retry-after"]) >= 1
            assert limited.headers["x-answer-cache"] == "bypass"
            body = limited.json()
            assert body["data"] is None
            assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
            assert body["extensions"]["cost"]["requested"] == cost


async def test_viewers_and_roles_still_have_entries_of_their_own(database_url: str, redis_url: str) -> None:
    async with warm(database_url, redis_url) as (gw, redis):
        everyone = await post(gw)
        assert everyone.headers["x-answer-cache"] == "hit"
        alice = gw.token("alice", Role.USER)
        for expected in ("miss", "hit"):
            hers = await post(gw, token=alice)
            assert hers.headers["x-answer-cache"] == expected
            assert {n["userId"] for n in hers.json()["data"]["usage"]["byUser"]["nodes"]} == {"alice"}
        readonly = await post(gw, token=gw.token("admin", Role.ADMIN_READONLY))
        assert readonly.headers["x-answer-cache"] == "miss"
        assert len(await redis.keys(ANSWERS)) == 3


async def test_a_viewer_refused_a_root_field_is_left_to_strawberry() -> None:
    schema = build_schema()
    schema.documents.record(DASHBOARD, None, parse(DASHBOARD), schema._schema)
    body = orjson.dumps({"query": DASHBOARD, "variables": RANGE})
    nobody = Viewer("nobody", frozenset())
    # Refused before the rate limit and the lookup: this Redis is never connected to.
    outcome = await CachedAnswers(schema).answer(body, nobody, None, AnswerCache(Redis(port=1), 300))
    assert outcome == Outcome(None, None)


async def test_the_cost_is_checked_for_each_requests_variables(database_url: str, redis_url: str) -> None:
    paged = (
        "query($from: Date!, $to: Date!, $n: Int!) {"
        " usage(filter: {from: $from, to: $to}) { byUser(first: $n) { nodes { metrics { spend } } } } }"
    )
    with litellm(rows_for(DAYS)) as (_, url):
        clock = clock_at(long_after(DAYS[-1]))
        async with gateway(database_url, redis_url, url, clock=clock, max_query_cost=300) as (gw, _):
            for expected in ("miss", "miss", "hit"):
                small = await gw.post(paged, {**RANGE, "n": 2})
                assert small.headers["x-answer-cache"] == expected
            large = await gw.post(paged, {**RANGE, "n": 400})
            assert large.headers["x-answer-cache"] == "bypass"
            assert large.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
            assert large.json()["extensions"]["cost"]["requested"] > 300


def test_the_prepared_documents_are_bounded() -> None:
    schema = build_schema()
    documents = PreparedDocuments(Limits(), max_entries=2)
    texts = [f"query {{ viewer {{ id }} }} # {n}" for n in range(3)]
    for text in texts[:2]:
        documents.record(text, None, parse(text), schema._schema)
    assert documents.get(texts[0], None) is not None  # now the most recently used
    documents.record(texts[2], None, parse(texts[2]), schema._schema)
    assert len(documents) == 2
    assert documents.get(texts[1], None) is None
    assert documents.get(texts[0], None) is not None
    # Variants differ only in their comment: one canonical text.
    assert documents.get(texts[0], None).canonical == documents.get(texts[2], None).canonical  # type: ignore[union-attr]
    assert schema.documents.max_entries == 256
    # Bounded by the length of the texts too: a longer text pushes out as many as it takes.
    documents = PreparedDocuments(Limits(), max_chars=3 * len(texts[0]))
    for text in texts:
        documents.record(text, None, parse(text), schema._schema)
    assert len(documents) == 3
    long = texts[0] + "x" * len(texts[0])  # twice as long: two texts go
    documents.record(long, None, parse(long), schema._schema)
    assert [documents.get(text, None) is not None for text in (*texts, long)] == [False, False, True, True]
    longest = texts[0] + "x" * 3 * len(texts[0])  # longer than the whole budget: not kept
    documents.record(longest, None, parse(longest), schema._schema)
    assert documents.get(longest, None) is None
    assert documents.get(long, None) is not None


async def test_more_concurrent_hits_than_redis_connections_wait_for_one(
    database_url: str, redis_url: str
) -> None:
    """Four times as many hits at once as the Redis pool holds (more than redis-py's default pool would
    hand out): each waits for a connection, none fails."""
    async with warm(database_url, redis_url) as (gw, _):
        answers = await asyncio.gather(*(post(gw) for _ in range(4 * REDIS_CONNECTIONS)))
    assert [a.status_code for a in answers] == [200] * (4 * REDIS_CONNECTIONS)
    assert {a.headers["x-answer-cache"] for a in answers} == {"hit"}
