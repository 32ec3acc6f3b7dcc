"""LiteLLM rows → the LiteLLM-compatible server → the gateway: ``byModelGroup``, ``byEndpoint`` and
``byMcpServer`` equal the rows' sums, unfiltered and under every filter they allow (key, model, user through
the key's attributed user), and are refused where they cannot be exact (providers; a user filter reaching a
key bucket that served several users on a day)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from tests.api_client import DirectoryKey, DirectoryUser, seed_directory
from tests.gateway_harness import clock_at, long_after
from tests.litellm_rows import API_KEYS, EXACT_SPEND, Row, make_row, rows_strategy
from tests.usage_from_rows import fresh_database, litellm_gateway
from usage_gateway.datasources.facts.side_breakdowns import SideRollup
from usage_gateway.devtools.litellm_compat import LiteLLMStore, running_litellm
from usage_gateway.devtools.local_services import LocalPostgres
from usage_gateway.resolvers.side_rules import RULES, Applies
from usage_gateway.resolvers.viewer import Role

FIRST_DAY = date(2026, 11, 16)
DAYS = tuple((FIRST_DAY + timedelta(days=n)).isoformat() for n in range(3))
HEX_KEYS = tuple(key for key in API_KEYS if key)
TEAMS = ("team-a", "team-b")
GROUPS = (None, "", "claude-family", "gpt-family")  # None/'' → the model's name, else the group
METRICS = "spendExact requests successfulRequests failedRequests promptTokens completionTokens totalTokens"
COLUMNS = {
    "requests": "api_requests",
    "successfulRequests": "successful_requests",
    "failedRequests": "failed_requests",
    "promptTokens": "prompt_tokens",
    "completionTokens": "completion_tokens",
}
FIELDS = {
    SideRollup.MODEL_GROUP: ("byModelGroup", "modelGroup"),
    SideRollup.ENDPOINT: ("byEndpoint", "endpoint"),
    SideRollup.MCP_SERVER: ("byMcpServer", "mcpTool"),
}
QUERY = f"""
query ($filter: UsageFilter!) {{
  usage(filter: $filter) {{
    totals {{ {METRICS} }}
    byModelGroup(first: 500) {{ totalCount nodes {{ modelGroup models share metrics {{ {METRICS} }} }} }}
    byEndpoint(first: 500) {{ totalCount nodes {{ endpoint models share metrics {{ {METRICS} }} }} }}
    byMcpServer(first: 500) {{ totalCount nodes {{ mcpTool models share metrics {{ {METRICS} }} }} }}
  }}
}}
"""
PAGE = """
query ($filter: UsageFilter!, $after: String, $order: UsageOrder) {
  usage(filter: $filter) {
    %s(first: 1, after: $after, orderBy: $order) {
      pageInfo { hasNextPage endCursor } nodes { %s metrics { %s } }
    }
  }
}
"""
ONE = """
query ($filter: UsageFilter!) {
  usage(filter: $filter) { %s(first: 500) { totalCount nodes { %s metrics { %s } } } }
}
"""


def bucket(rollup: SideRollup, row: Row) -> str | None:
    """The row's bucket in LiteLLM's roll-up (CONTRACT §2.4), None when the roll-up leaves it out."""
    if rollup is SideRollup.MODEL_GROUP:
        return str(row["model_group"] or row["model"] or "unknown-model-group")
    value = row["endpoint"] if rollup is SideRollup.ENDPOINT else row["mcp_namespaced_tool_name"]
    return str(value) if value else None


def model_of(row: Row) -> str:
    return str(row["model"] or "unknown-model")


def key_of(row: Row) -> str:
    return str(row["api_key"] or "unattributed")


def nonzero(row: Row) -> bool:
    return bool(row["spend"]) or any(row[column] for column in (*COLUMNS.values(), "total_response_time_ms"))


@dataclass(frozen=True)
class Scenario:
    rows: list[Row]
    owners: dict[str, str]  # directory keys: token hash → owner
    page_size: int
    teams: dict[str, tuple[str, str]]  # directory keys: team on DAYS[0], team from DAYS[1] on

    def team_of(self, row: Row) -> str:
        """The key's team on the row's day; ``no-team`` outside the directory (migration 0007)."""
        key = key_of(row)
        if key not in self.teams:
            return "no-team"
        first, then = self.teams[key]
        return first if row["date"] == DAYS[0] else then

    def user_of(self, row: Row) -> str:
        """The attributed user (DESIGN §4): the key's directory owner, else the LiteLLM user, else
        ``unattributed``; spend without a key is unattributed."""
        key = key_of(row)
        if key == "unattributed":
            return "unattributed"
        if key in self.owners:
            return self.owners[key]
        return f"litellm:{row['user_id']}" if row["user_id"] else "unattributed"

    def users_by_key_day(self) -> dict[tuple[str, str], set[str]]:
        users: dict[tuple[str, str], set[str]] = defaultdict(set)
        for row in self.rows:
            if nonzero(row):
                users[row["date"], key_of(row)].add(self.user_of(row))
        return users

    def __repr__(self) -> str:
        rows = "".join(
            f"\n  {r['date']} user={r['user_id']!r} key={r['api_key'][:4]!r} model={r['model']!r}"
            f" group={r['model_group']!r} tool={r['mcp_namespaced_tool_name']!r} endpoint={r['endpoint']!r}"
            f" spend={r['spend']!r} requests={r['api_requests']}"
            for r in self.rows
        )
        return f"Scenario(owners={ {k[:4]: v for k, v in self.owners.items()} }, page={self.page_size}{rows})"


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    rows = draw(rows_strategy(1, 40, days=DAYS, spend=EXACT_SPEND))
    for row in rows:
        group = draw(st.sampled_from(GROUPS))
        row["model_group"] = row["model"] if group is None else group
    owners: dict[str, str] = {}
    for key in HEX_KEYS:
        owner = draw(st.sampled_from((None, None, "alice", "ben")))
        if owner is not None:
            owners[key] = owner
    teams = {key: (draw(st.sampled_from(TEAMS)), draw(st.sampled_from(TEAMS))) for key in owners}
    return Scenario(rows, owners, draw(st.sampled_from((1, 3, 1000))), teams)


def expected(rows: Sequence[Row], rollup: SideRollup) -> dict[str, dict[str, Any]]:
    """Per bucket: the sums of its rows, and its models; buckets whose rows hold nothing are left out (as
    the gateway keeps no fact without usage)."""
    sums: dict[str, dict[str, Any]] = {}
    for row in rows:
        name = bucket(rollup, row)
        if name is None:
            continue
        empty = {"spendExact": Decimal(0), **dict.fromkeys(COLUMNS, 0), "models": set()}
        entry = sums.setdefault(name, empty)
        entry["spendExact"] += Decimal(repr(row["spend"]))
        for field, column in COLUMNS.items():
            entry[field] += row[column]
        if nonzero(row):
            entry["models"].add(model_of(row))
    return {name: entry for name, entry in sums.items() if entry["models"]}


def answered(nodes: list[dict[str, Any]], name_field: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for node in nodes:
        metrics = node["metrics"]
        found[node[name_field]] = {
            "spendExact": Decimal(metrics["spendExact"]),
            **{field: int(metrics[field]) for field in COLUMNS},
            "models": set(node["models"]),
        }
    return found


@pytest.fixture(scope="module")
def litellm() -> Iterator[tuple[LiteLLMStore, str]]:
    store = LiteLLMStore(keys=[], users=[], rows=[])
    with running_litellm(store) as url:
        yield store, url


examples = settings(
    max_examples=12,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@examples
@given(case=scenarios(), data=st.data())
async def test_side_breakdowns_equal_the_rows_where_exact_and_are_refused_elsewhere(
    case: Scenario,
    data: st.DataObject,
    litellm: tuple[LiteLLMStore, str],
    postgres_server: LocalPostgres,
    redis_url: str,
) -> None:
    note(repr(case))
    store, litellm_url = litellm
    store.set_rows(case.rows)
    redis = Redis.from_url(redis_url)
    try:
        await redis.flushall()
    finally:
        await redis.aclose()
    clock = clock_at(long_after(FIRST_DAY + timedelta(days=len(DAYS))))
    whole = {"from": DAYS[0], "to": DAYS[-1]}
    async with (
        fresh_database(postgres_server) as database_url,
        litellm_gateway(database_url, redis_url, litellm_url, clock=clock, page_size=case.page_size) as gw,
    ):
        await seed_directory(
            gw.db,
            [DirectoryUser("alice", "Alice"), DirectoryUser("ben", "Ben")],
            [DirectoryKey(f"key-{key[0]}", key, owner) for key, owner in case.owners.items()],
        )
        await gw.db.execute("INSERT INTO teams (id, alias) VALUES ('team-a', 'A'), ('team-b', 'B')")
        for key, (first, then) in case.teams.items():  # before the days are read, as a sync would
            await gw.db.execute("UPDATE api_key_teams SET team_id = %s WHERE token_hash = %s", (first, key))
            await gw.db.execute(
                "INSERT INTO api_key_teams (token_hash, valid_from, team_id) VALUES (%s, %s, %s)",
                (key, DAYS[1], then),
            )
        body = await gw.query(QUERY, {"filter": whole})
        assert "errors" not in body, body["errors"]
        usage = body["data"]["usage"]
        total_spend = Decimal(usage["totals"]["spendExact"])
        for rollup, (field, name_field) in FIELDS.items():
            want = expected(case.rows, rollup)
            got = answered(usage[field]["nodes"], name_field)
            assert got == want, (field, got, want)
            assert usage[field]["totalCount"] == len(want)
            node_spend = sum((entry["spendExact"] for entry in got.values()), Decimal(0))
            if rollup is SideRollup.MODEL_GROUP:  # every row has a model group: they sum to the totals
                assert node_spend == total_spend
                assert sum(e["requests"] for e in got.values()) == int(usage["totals"]["requests"])
            else:  # only rows with an endpoint / a tool: never more than the totals
                assert node_spend <= total_spend

        rollup = data.draw(st.sampled_from(list(SideRollup)), label="rollup")
        field, name_field = FIELDS[rollup]
        one = ONE % (field, f"{name_field} models", METRICS)

        # Paged one node at a time, in either direction of a metric: every node once, in order (ties by
        # name ascending).
        metric, field_name = data.draw(
            st.sampled_from(
                (("SPEND", "spendExact"), ("REQUESTS", "requests"), ("PROMPT_TOKENS", "promptTokens"))
            ),
            label="order",
        )
        for direction in ("ASC", "DESC"):
            want_order = sorted(
                ((Decimal(entry[field_name]), name) for name, entry in expected(case.rows, rollup).items()),
                key=lambda pair: (pair[0] if direction == "ASC" else -pair[0], pair[1]),
            )
            seen: list[tuple[Decimal, str]] = []
            after: str | None = None
            while True:
                page = await gw.query(
                    PAGE % (field, name_field, field_name),
                    {"filter": whole, "after": after, "order": {"metric": metric, "direction": direction}},
                )
                assert "errors" not in page, page["errors"]
                connection = page["data"]["usage"][field]
                seen += [(Decimal(n["metrics"][field_name]), n[name_field]) for n in connection["nodes"]]
                assert len(seen) <= len(want_order), ("paging returns a node twice", direction, seen)
                if not connection["pageInfo"]["hasNextPage"]:
                    break
                after = connection["pageInfo"]["endCursor"]
            assert seen == want_order, (direction, metric)

        # By key bucket: exact.
        key = data.draw(st.sampled_from(sorted({key_of(row) for row in case.rows})), label="key")
        key_id = f"key-{key[0]}" if key in case.owners else key
        found = await gw.query(one, {"filter": {**whole, "apiKeyIds": [key_id]}})
        assert "errors" not in found, found["errors"]
        want = expected([row for row in case.rows if key_of(row) == key], rollup)
        assert answered(found["data"]["usage"][field]["nodes"], name_field) == want

        # By model: exact (every day is read model by model).
        model = data.draw(st.sampled_from(sorted({model_of(row) for row in case.rows})), label="model")
        found = await gw.query(one, {"filter": {**whole, "models": [model]}})
        if any(model_of(row) == model and nonzero(row) for row in case.rows):
            assert "errors" not in found, found["errors"]
            want = expected([row for row in case.rows if model_of(row) == model], rollup)
            assert answered(found["data"]["usage"][field]["nodes"], name_field) == want

        # By user: exact through each key's user on the day, refused where a key served several users.
        users = case.users_by_key_day()
        user = data.draw(st.sampled_from(sorted({case.user_of(row) for row in case.rows})), label="user")
        found = await gw.query(one, {"filter": {**whole, "userIds": [user]}})
        reached = [
            row
            for row in case.rows
            if nonzero(row) and bucket(rollup, row) is not None and user in users[row["date"], key_of(row)]
        ]
        if any(len(users[row["date"], key_of(row)]) > 1 for row in reached):
            assert found["data"] is None
            (error,) = found["errors"]
            assert error["extensions"]["code"] == "BAD_USER_INPUT"
            assert "several users" in error["message"]
        else:
            assert "errors" not in found, found["errors"]
            mine = [row for row in case.rows if case.user_of(row) == user]
            assert answered(found["data"]["usage"][field]["nodes"], name_field) == expected(mine, rollup)

        # By team: exact through each key's team on the day (a key moved between teams keeps its days).
        team = data.draw(st.sampled_from(("no-team", *TEAMS)), label="team")
        found = await gw.query(one, {"filter": {**whole, "teamIds": [team]}})
        assert "errors" not in found, found["errors"]
        theirs = [row for row in case.rows if case.team_of(row) == team]
        assert answered(found["data"]["usage"][field]["nodes"], name_field) == expected(theirs, rollup)

        # A plain user sees only their own usage: the key buckets attributed to them (directory keys, one
        # owner a day, so never shared).
        token = gw.token("alice", Role.USER)
        found = await gw.query(one, {"filter": whole}, token=token)
        assert "errors" not in found, found["errors"]
        alices = [row for row in case.rows if case.user_of(row) == "alice"]
        assert answered(found["data"]["usage"][field]["nodes"], name_field) == expected(alices, rollup)

        # activeUsers: each key's user on the day; refused where a key bucket served several users.
        active = ONE % (field, name_field, "activeUsers activeApiKeys")
        found = await gw.query(active, {"filter": whole})
        in_rollup = [row for row in case.rows if nonzero(row) and bucket(rollup, row) is not None]
        if any(len(users[row["date"], key_of(row)]) > 1 for row in in_rollup):
            assert found["data"] is None
            assert "several users" in found["errors"][0]["message"]
        else:
            assert "errors" not in found, found["errors"]
            counted: dict[str, tuple[set[str], set[str]]] = defaultdict(lambda: (set(), set()))
            for row in in_rollup:
                people, keys = counted[str(bucket(rollup, row))]
                people.add(case.user_of(row))
                keys.add(key_of(row))
            got_counts = {
                node[name_field]: (node["metrics"]["activeUsers"], node["metrics"]["activeApiKeys"])
                for node in found["data"]["usage"][field]["nodes"]
            }
            assert got_counts == {
                name: (len(people - {"unattributed"}), len(keys - {"unattributed"}))
                for name, (people, keys) in counted.items()
            }

        # By provider: refused before anything runs, saying why.
        provider = str(case.rows[0]["custom_llm_provider"] or "unknown")
        found = await gw.query(one, {"filter": {**whole, "providers": [provider]}})
        assert found["data"] is None
        (error,) = found["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "not crossed with providers" in error["message"]

        # By tag: refused (LiteLLM's tag rows are another table, not crossed with these roll-ups).
        found = await gw.query(one, {"filter": {**whole, "tag": "User-Agent:claude-code"}})
        assert found["data"] is None
        (error,) = found["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "`tag` cannot filter" in error["message"]
        assert "without model groups" in error["message"]


def test_the_rules_table_refuses_providers_and_allows_keys_models_and_users_for_every_rollup() -> None:
    for rollup in SideRollup:
        assert RULES[rollup]["providers"] is Applies.REFUSED
        assert RULES[rollup]["apiKeyIds"] is Applies.EXACT
        assert RULES[rollup]["models"] is Applies.EXACT
        assert RULES[rollup]["userIds"] is Applies.BY_ATTRIBUTION
        assert RULES[rollup]["teamIds"] is Applies.BY_TEAM


async def test_a_day_stored_before_migration_0009_is_refused_until_read_again(
    litellm: tuple[LiteLLMStore, str], postgres_server: LocalPostgres, redis_url: str
) -> None:
    store, litellm_url = litellm
    rows = [
        make_row(DAYS[0], "alice", HEX_KEYS[0], "gpt-4o", "openai", spend=0.5, successful_requests=2),
        make_row(DAYS[1], "alice", HEX_KEYS[0], "gpt-4o", "openai", spend=0.25, successful_requests=1),
    ]
    store.set_rows(rows)
    redis = Redis.from_url(redis_url)
    try:
        await redis.flushall()
    finally:
        await redis.aclose()
    clock = clock_at(long_after(FIRST_DAY + timedelta(days=len(DAYS))))
    whole = {"from": DAYS[0], "to": DAYS[-1]}
    query = ONE % ("byModelGroup", "modelGroup models", METRICS)
    async with (
        fresh_database(postgres_server) as database_url,
        litellm_gateway(database_url, redis_url, litellm_url, clock=clock) as gw,
    ):
        first = await gw.query(query, {"filter": whole})
        assert "errors" not in first, first["errors"]
        # As a day stored before 0009: its facts, none of its model groups.
        await gw.db.execute(
            "DELETE FROM usage_breakdown_facts WHERE date = %s", (date.fromisoformat(DAYS[1]),)
        )
        refused = await gw.query(query, {"filter": whole})
        assert refused["data"] is None
        (error,) = refused["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert DAYS[1] in error["message"]
        assert "refreshRange" in error["message"]
        refreshed = await gw.query(
            "mutation ($from: Date!, $to: Date!) { refreshRange(from: $from, to: $to) { days } }",
            {"from": DAYS[1], "to": DAYS[1]},
        )
        assert "errors" not in refreshed, refreshed["errors"]
        again = await gw.query(query, {"filter": whole})
        assert again == first
