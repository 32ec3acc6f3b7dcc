"""``Usage.budgets`` end to end: LiteLLM rows through the compatible server, the directory and the budgets
table, answered over HTTP; the order, paging, statuses and run-out dates; what a ``user`` sees; what is
refused before anything runs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from tests.api_client import DirectoryUser, Gateway, seed_directory
from tests.gateway_harness import clock_at
from tests.litellm_rows import make_row
from tests.usage_from_rows import litellm_gateway
from usage_gateway.devtools.litellm_compat import LiteLLMStore, running_litellm
from usage_gateway.resolvers.viewer import Role

TODAY = date(2026, 11, 20)
ALICE_KEY, BOB_KEY = "a" * 64, "b" * 64
MONTH = {"from": "2026-11-01", "to": "2026-11-30"}
QUERY = """
query ($filter: UsageFilter!, $first: Int!, $after: String, $entity: BudgetEntity, $status: BudgetStatus) {
  usage(filter: $filter) {
    budgets(first: $first, after: $after, entity: $entity, status: $status) {
      totalCount pageInfo { hasNextPage endCursor }
      nodes {
        entity id name limit limitExact duration periodFrom periodTo asOf spend spendExact shareUsed
        dailyRate rateDays projectedRunOut status complete
      }
    }
  }
}"""


def rows() -> list[dict[str, Any]]:
    """Alice spends 2 a day on her key, Bob 5 on his, every day of November up to today."""
    out = []
    for offset in range(TODAY.day):
        day = (date(2026, 11, 1) + timedelta(days=offset)).isoformat()
        out.append(make_row(day, "alice", ALICE_KEY, "gpt-4o", "openai", spend=2.0, successful_requests=1))
        out.append(make_row(day, "bob", BOB_KEY, "gpt-4o", "openai", spend=5.0, successful_requests=1))
    return out


BUDGETS = [
    ("USER", "alice", "100", "1mo", None),
    ("USER", "bob", "50", "30d", datetime(2026, 12, 1, tzinfo=UTC)),
    ("API_KEY", ALICE_KEY, "14", "7d", datetime(2026, 11, 23, tzinfo=UTC)),
    ("API_KEY", BOB_KEY, "1000", None, None),
    ("TEAM", "team-x", "200", "1mo", datetime(2026, 12, 1, tzinfo=UTC)),
]


@pytest.fixture(scope="module")
def litellm_url() -> Iterator[str]:
    with running_litellm(LiteLLMStore(keys=[], users=[], rows=rows())) as url:
        yield url


async def seed(gw: Gateway) -> None:
    await seed_directory(gw.db, [DirectoryUser("alice", "Alice A"), DirectoryUser("bob", "Bob B")], [])
    async with gw.db.transaction() as conn:
        await conn.execute("INSERT INTO teams (id, alias) VALUES ('team-x', 'Team X')")
        await conn.execute(
            "INSERT INTO api_keys (id, token_hash, user_id, key_alias, team_id, created_at) VALUES"
            " ('key-a', %s, 'alice', 'alice-laptop', 'team-x', '2026-10-01'),"
            " ('key-b', %s, 'bob', 'bob-ci', 'team-x', '2026-10-01')",
            (ALICE_KEY, BOB_KEY),
        )
        async with conn.cursor() as cursor:
            await cursor.executemany(
                "INSERT INTO budgets (entity, entity_id, max_budget, budget_duration, budget_reset_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                BUDGETS,
            )


async def test_budgets_where_they_stand_ordered_and_paged(
    litellm_url: str, database_url: str, redis_url: str
) -> None:
    clock = clock_at(datetime.combine(TODAY, time(12), UTC))
    async with litellm_gateway(database_url, redis_url, litellm_url, clock=clock) as gw:
        await seed(gw)
        page = (await gw.data(QUERY, {"filter": MONTH, "first": 10}))["usage"]["budgets"]
        nodes = page["nodes"]
        assert page["totalCount"] == 5
        assert [(n["entity"], n["id"]) for n in nodes] == [
            ("USER", "bob"),  # 100 of 50
            ("API_KEY", "key-a"),  # 10 of 14
            ("TEAM", "team-x"),  # 140 of 200
            ("USER", "alice"),  # 40 of 100
            ("API_KEY", "key-b"),  # 100 of 1000
        ]
        by_id = {n["id"]: n for n in nodes}
        bob = by_id["bob"]
        assert (bob["periodFrom"], bob["periodTo"], bob["asOf"]) == ("2026-11-01", "2026-11-30", "2026-11-20")
        assert (bob["spendExact"], bob["shareUsed"], bob["status"]) == ("100", 2.0, "EXCEEDED")
        assert bob["projectedRunOut"] == "2026-11-10"  # 5 a day reaches 50 on the 10th
        assert (bob["name"], bob["limitExact"], bob["duration"]) == ("Bob B", "50", "30d")
        key_a = by_id["key-a"]
        assert (key_a["periodFrom"], key_a["periodTo"], key_a["spend"]) == ("2026-11-16", "2026-11-22", 10.0)
        assert (key_a["dailyRate"], key_a["rateDays"]) == (2.0, 7)
        assert (key_a["projectedRunOut"], key_a["status"], key_a["name"]) == (
            "2026-11-22",
            "AT_RISK",
            "alice-laptop",
        )
        team = by_id["team-x"]
        assert (team["spend"], team["dailyRate"], team["name"]) == (140.0, 7.0, "Team X")
        assert (team["projectedRunOut"], team["status"]) == ("2026-11-29", "AT_RISK")  # 140 + 9 × 7 >= 200
        alice = by_id["alice"]
        assert (alice["spend"], alice["projectedRunOut"], alice["status"]) == (40.0, None, "OK")
        assert all(n["complete"] for n in nodes if n["duration"] is not None)
        lifetime = by_id["key-b"]
        assert (lifetime["periodTo"], lifetime["spend"], lifetime["complete"]) == ("2026-11-30", 100.0, False)

        # Keyset pages in the same order; a status or entity chooses among them.
        first = (await gw.data(QUERY, {"filter": MONTH, "first": 2}))["usage"]["budgets"]
        assert [n["id"] for n in first["nodes"]] == ["bob", "key-a"]
        assert first["pageInfo"]["hasNextPage"] is True
        rest = await gw.data(QUERY, {"filter": MONTH, "first": 10, "after": first["pageInfo"]["endCursor"]})
        assert [n["id"] for n in rest["usage"]["budgets"]["nodes"]] == ["team-x", "alice", "key-b"]
        at_risk = (await gw.data(QUERY, {"filter": MONTH, "first": 10, "status": "AT_RISK"}))["usage"][
            "budgets"
        ]
        assert [n["id"] for n in at_risk["nodes"]] == ["key-a", "team-x"]
        keys = (await gw.data(QUERY, {"filter": MONTH, "first": 10, "entity": "API_KEY"}))["usage"]["budgets"]
        assert [n["id"] for n in keys["nodes"]] == ["key-a", "key-b"]

        # The filter's ids choose related budgets: Bob, his key, and his key's team.
        bobs = await gw.data(QUERY, {"filter": {**MONTH, "userIds": ["bob"]}, "first": 10})
        assert [n["id"] for n in bobs["usage"]["budgets"]["nodes"]] == ["bob", "team-x", "key-b"]
        by_key = await gw.data(QUERY, {"filter": {**MONTH, "apiKeyIds": ["key-a"]}, "first": 10})
        assert [n["id"] for n in by_key["usage"]["budgets"]["nodes"]] == ["key-a", "team-x", "alice"]
        by_team = await gw.data(QUERY, {"filter": {**MONTH, "teamIds": ["team-x"]}, "first": 10})
        assert by_team["usage"]["budgets"]["totalCount"] == 5  # both keys are in it
        none = await gw.data(QUERY, {"filter": {**MONTH, "teamIds": ["no-team"]}, "first": 10})
        assert none["usage"]["budgets"]["totalCount"] == 0
        # An earlier `to` judges the budgets as of that day.
        early = await gw.data(QUERY, {"filter": {"from": "2026-11-01", "to": "2026-11-05"}, "first": 10})
        early_bob = next(n for n in early["usage"]["budgets"]["nodes"] if n["id"] == "bob")
        assert (early_bob["asOf"], early_bob["spend"], early_bob["status"]) == ("2026-11-05", 25.0, "AT_RISK")

        # A page asking for the list and its counts by status (aliases) judges the budgets once.
        counts = """query ($filter: UsageFilter!) { usage(filter: $filter) {
          all: budgets(first: 10) { totalCount } exceeded: budgets(status: EXCEEDED) { totalCount }
          atRisk: budgets(status: AT_RISK) { totalCount } } }"""
        once, _ = await gw.statements(QUERY, {"filter": MONTH, "first": 10})
        thrice, data = await gw.statements(counts, {"filter": MONTH})
        assert [data["usage"][name]["totalCount"] for name in ("all", "exceeded", "atRisk")] == [5, 1, 2]
        assert thrice == once


async def test_a_key_outside_the_directory_is_named_as_litellm_names_it(
    litellm_url: str, database_url: str, redis_url: str
) -> None:
    clock = clock_at(datetime.combine(TODAY, time(12), UTC))
    async with litellm_gateway(database_url, redis_url, litellm_url, clock=clock) as gw:
        await seed(gw)
        outside = "c" * 64  # in LiteLLM's activity (litellm_keys), in no directory user's keys
        async with gw.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO litellm_keys (api_key, key_alias, last_seen) VALUES (%s, 'ci-bot', %s)",
                (outside, TODAY),
            )
            await conn.execute(
                "INSERT INTO budgets (entity, entity_id, max_budget, budget_duration)"
                " VALUES ('API_KEY', %s, 10, '1mo')",
                (outside,),
            )
        keys = (await gw.data(QUERY, {"filter": MONTH, "first": 10, "entity": "API_KEY"}))["usage"]["budgets"]
        node = next(n for n in keys["nodes"] if n["id"] == outside)
        assert (node["name"], node["spend"], node["status"]) == ("ci-bot", 0.0, "OK")


async def test_a_user_sees_only_their_own_user_and_key_budgets(
    litellm_url: str, database_url: str, redis_url: str
) -> None:
    clock = clock_at(datetime.combine(TODAY, time(12), UTC))
    async with litellm_gateway(database_url, redis_url, litellm_url, clock=clock) as gw:
        await seed(gw)
        alice = gw.token("alice", Role.USER)
        mine = (await gw.data(QUERY, {"filter": MONTH, "first": 10}, token=alice))["usage"]["budgets"]
        assert [(n["entity"], n["id"]) for n in mine["nodes"]] == [("API_KEY", "key-a"), ("USER", "alice")]
        teams = await gw.data(QUERY, {"filter": MONTH, "first": 10, "entity": "TEAM"}, token=alice)
        assert teams["usage"]["budgets"]["totalCount"] == 0
        refused = await gw.query(QUERY, {"filter": {**MONTH, "userIds": ["bob"]}, "first": 10}, token=alice)
        assert refused["data"] is None
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize(
    ("extra", "variables", "message"),
    [
        ({"models": ["gpt-4o"]}, {}, "`models`"),
        ({"providers": ["openai"]}, {}, "`providers`"),
        ({"tag": "User-Agent:curl"}, {}, "`tag`"),
        ({}, {"after": "bm90IGEgY3Vyc29y"}, "cursor"),
        ({}, {"first": 100_000}, "`first`"),
    ],
)
async def test_what_a_budget_cannot_follow_is_refused_before_anything_runs(
    litellm_url: str,
    database_url: str,
    redis_url: str,
    extra: dict[str, Any],
    variables: dict[str, Any],
    message: str,
) -> None:
    clock = clock_at(datetime.combine(TODAY, time(12), UTC))
    async with litellm_gateway(database_url, redis_url, litellm_url, clock=clock) as gw:
        await seed(gw)
        body = await gw.query(QUERY, {"filter": {**MONTH, **extra}, "first": 10, **variables})
        assert body["data"] is None
        [error] = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert message in error["message"]
        assert await gw.db.fetch_one("SELECT count(*) FROM usage_days") == (0,)  # nothing fetched
