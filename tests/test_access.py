"""Authorisation: the role × operation matrix, and a ``user`` who tries every way the schema offers to see
someone else's usage."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from strawberry.types.base import StrawberryObjectDefinition

from tests.api_client import (
    SECRET,
    DirectoryKey,
    DirectoryUser,
    Gateway,
    open_gateway,
    seed_days,
    seed_directory,
    token_hash,
)
from tests.facts_data import BASE, make_fact
from tests.facts_data import replace_facts as store_facts
from usage_gateway.datasources.exports.records import ExportFormat, create_export, run_export
from usage_gateway.datasources.facts.aggregates import FactFilter
from usage_gateway.resolvers.permissions import ROOT_FIELDS
from usage_gateway.resolvers.viewer import Role
from usage_gateway.schema.schema import build_schema
from usage_gateway.server.tokens import issue_token

DAY = BASE.isoformat()
F = {"from": DAY, "to": DAY}
KEY_A, KEY_B = token_hash("key-a"), token_hash("key-b")
# Everything that names bob, his key, the pseudo-users, or the models and providers only others used.
NOT_ALICES = (
    "bob",
    "Bob",
    "key-b",
    KEY_B[:12],
    "litellm:",
    "raw:",
    "unattributed",
    "claude",
    "anthropic",
    "u-",
)


@dataclass
class World:
    gw: Gateway
    alice_export: str
    bob_export: str
    export_dir: Path


async def seed(gw: Gateway, export_dir: Path) -> World:
    await seed_directory(
        gw.db,
        [
            DirectoryUser("alice", "Alice Liddell", "alice@example.com", "research"),
            DirectoryUser("bob", "Bob Secret", "bob@example.com", "finance"),
        ],
        [
            DirectoryKey("key-a", KEY_A, "alice", "alice's key"),
            DirectoryKey("key-b", KEY_B, "bob", "bob's key"),
        ],
    )
    await seed_days(gw.db, BASE - timedelta(days=40), BASE + timedelta(days=2))
    previous = BASE - timedelta(days=1)
    await store_facts(
        gw.db,
        [
            make_fact(BASE, user_id="alice", api_key=KEY_A, model="gpt-4o", provider="openai", spend="2"),
            make_fact(previous, user_id="alice", api_key=KEY_A, model="gpt-4o", provider="openai", spend="1"),
            make_fact(BASE, user_id="bob", api_key=KEY_B, model="gpt-4o", provider="openai", spend="3"),
            make_fact(BASE, user_id="bob", api_key=KEY_B, model="claude-3", provider="anthropic", spend="5"),
            make_fact(
                previous, user_id="bob", api_key=KEY_B, model="claude-3", provider="anthropic", spend="4"
            ),
            make_fact(
                BASE, user_id="litellm:x", api_key="raw:abc", model="gpt-4o", provider="openai", spend="7"
            ),
            make_fact(BASE, user_id="unattributed", api_key="unattributed", model="gpt-4o", spend="11"),
        ],
    )
    exports = []
    for owner in ("alice", "bob"):
        f = FactFilter(BASE, BASE, user_ids=(owner,))
        record = await create_export(gw.db, requested_by=owner, filter=f, fmt=ExportFormat.CSV, ttl_hours=1)
        exports.append((await run_export(gw.db, record.id, export_dir)).id)
    return World(gw, exports[0], exports[1], export_dir)


@pytest.fixture
async def world(database_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with open_gateway(database_url, redis_url, export_dir=tmp_path) as gw:
        yield await seed(gw, tmp_path)


def values(answer: Any) -> str:
    """Every value of a JSON answer (not its keys: `unattributedSpend` names no one), as one text."""
    if isinstance(answer, dict):
        return " ".join(values(v) for v in answer.values())
    if isinstance(answer, list):
        return " ".join(values(v) for v in answer)
    return str(answer)


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors") or ()]


# --- The matrix -----------------------------------------------------------------------------------------

QUERIES = {
    "usage.from": "usage(filter: $f) { from to }",
    "usage.totals": "usage(filter: $f) { totals { spend } }",
    "usage.previousPeriod": "usage(filter: $f) { previousPeriod { spend } }",
    "usage.timeSeries": "usage(filter: $f) { timeSeries { date } }",
    "usage.byUser": "usage(filter: $f) { byUser { nodes { userId } } }",
    "usage.byModel": "usage(filter: $f) { byModel { nodes { model } } }",
    "usage.byProvider": "usage(filter: $f) { byProvider { nodes { provider } } }",
    "usage.byApiKey": "usage(filter: $f) { byApiKey { nodes { tokenHashPrefix } } }",
    "usage.freshness": "usage(filter: $f) { freshness { complete } }",
    "filterOptions": "filterOptions(from: $from, to: $to) { users { id } apiKeys { id } models providers }",
    "viewer": "viewer { id roles }",
    "export": "export(id: $id) { id status }",
}
MUTATIONS = {
    "refreshToday": "refreshToday { changed }",
    "refreshRange": "refreshRange(from: $from, to: $to) { changed }",
    "syncDirectory": "syncDirectory { usersCreated }",
    "exportUsage": "exportUsage(filter: $f, format: CSV) { id status }",
}
VARIABLE_TYPES = {"f": "UsageFilter!", "from": "Date!", "to": "Date!", "id": "ID!"}
OPERATIONS = [*QUERIES, *MUTATIONS, "download"]

SUBJECTS: dict[str, str] = {
    "no token": "",
    "bad signature": issue_token("another-" + SECRET, "root", [Role.ADMIN]),
    "expired": issue_token(SECRET, "root", [Role.ADMIN], now=datetime.now(UTC) - timedelta(days=2)),
    "user": issue_token(SECRET, "alice", [Role.USER]),
    "adminReadonly": issue_token(SECRET, "auditor", [Role.ADMIN_READONLY]),
    "admin": issue_token(SECRET, "root", [Role.ADMIN]),
}
# Without LiteLLM (as here), the admin's refreshes and sync get as far as asking it: UPSTREAM_UNAVAILABLE.
REFUSED = dict.fromkeys(OPERATIONS, "401")
READER = {
    **dict.fromkeys(QUERIES, "data"),
    "refreshToday": "FORBIDDEN",
    "refreshRange": "FORBIDDEN",
    "syncDirectory": "FORBIDDEN",
    "exportUsage": "data",
    "download": "200",
}
UPSTREAM = "UPSTREAM_UNAVAILABLE"
EXPECTED = {
    "no token": REFUSED,
    "bad signature": REFUSED,
    "expired": REFUSED,
    "user": READER,
    "adminReadonly": READER,
    "admin": {**READER, "refreshToday": UPSTREAM, "refreshRange": UPSTREAM, "syncDirectory": UPSTREAM},
}


def document(operation: str) -> tuple[str, set[str]]:
    kind, selection = (
        ("query", QUERIES[operation]) if operation in QUERIES else ("mutation", MUTATIONS[operation])
    )
    used = set(re.findall(r"\$(\w+)", selection))
    definitions = ", ".join(f"${name}: {VARIABLE_TYPES[name]}" for name in sorted(used))
    return f"{kind}{f' ({definitions})' if definitions else ''} {{ {selection} }}", used


async def outcome(world: World, operation: str, token: str) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if operation == "download":
        response = await world.gw.client.get(f"/exports/{world.alice_export}", headers=headers)
        return str(response.status_code)
    query, used = document(operation)
    refresh_day = (BASE - timedelta(days=30)).isoformat()  # a day no other cell reads
    values = {
        "f": F,
        "from": refresh_day if operation in MUTATIONS else DAY,
        "to": DAY,
        "id": world.alice_export,
    }
    if operation == "refreshRange":
        values["to"] = refresh_day
    variables = {name: values[name] for name in used}
    response = await world.gw.client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    if response.status_code != 200:
        return str(response.status_code)
    body = response.json()
    if body.get("errors"):
        return ",".join(sorted(set(codes(body))))
    return "data" if all(value is not None for value in body["data"].values()) else "null"


@pytest.mark.parametrize("subject", list(SUBJECTS))
async def test_role_by_operation_matrix(world: World, subject: str) -> None:
    actual = {operation: await outcome(world, operation, SUBJECTS[subject]) for operation in OPERATIONS}
    wrong = {op: (EXPECTED[subject][op], got) for op, got in actual.items() if EXPECTED[subject][op] != got}
    assert not wrong, f"{subject}: (expected, actual) per operation: {wrong}"


def test_every_root_field_has_a_policy() -> None:
    schema = build_schema()
    fields = set()
    for root in (schema.query, schema.mutation):
        definition: StrawberryObjectDefinition = root.__strawberry_definition__  # type: ignore[union-attr]
        fields |= {
            f"{definition.name}.{schema.config.name_converter.get_graphql_name(f)}" for f in definition.fields
        }
    assert fields == set(ROOT_FIELDS)
    assert {f"Query.{op}" for op in QUERIES if "." not in op} | {"Query.usage"} | {
        f"Mutation.{op}" for op in MUTATIONS
    } == fields


async def test_refused_mutations_are_audited_and_run_nothing(world: World) -> None:
    token = SUBJECTS["adminReadonly"]
    body = await world.gw.query(
        'mutation { refreshToday { changed } again: refreshRange(from: "2024-01-01", to: "2024-01-02") {'
        " days } }",
        token=token,
    )
    assert body["data"] is None
    assert [(e["extensions"]["code"], e["path"]) for e in body["errors"]] == [
        ("FORBIDDEN", ["refreshToday"]),
        ("FORBIDDEN", ["again"]),
    ]
    assert "admin" in body["errors"][0]["message"]
    rows = await world.gw.db.fetch_all("SELECT actor, action, arguments, outcome FROM audit_log ORDER BY id")
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("auditor", "refreshToday", "forbidden"),
        ("auditor", "refreshRange", "forbidden"),
    ]
    assert rows[1][2]["from"] == "2024-01-01"
    # A fragment does not hide a root field from the check.
    body = await world.gw.query(
        "mutation { ...M } fragment M on Mutation { syncDirectory { usersCreated } }", token=token
    )
    assert codes(body) == ["FORBIDDEN"]


# --- A user asking for someone else's usage -------------------------------------------------------------

ALICE = SUBJECTS["user"]
EVERYTHING = """
query ($f: UsageFilter!) {
  usage(filter: $f) {
    totals { spend activeUsers activeApiKeys activeModels }
    previousPeriod { spend activeUsers }
    timeSeries { date metrics { spend } }
    byUser { totalCount nodes { userId user { id username email department }
      models { model providers topUsers { userId user { id email } } }
      apiKeys { apiKeyId tokenHashPrefix apiKey { id name user { id email } } user { id email } } } }
    byModel { totalCount nodes { model providers topUsers(first: 20) { userId user { id username email }
      apiKeys { apiKeyId user { email } } } } }
    byProvider { totalCount nodes { provider models } }
    byApiKey { totalCount nodes { apiKeyId tokenHashPrefix apiKey { id name keyAlias user { id email } }
      user { id username email } } }
    freshness { complete unattributedSpend }
  }
  filterOptions(from: "2024-01-12", to: "2024-01-22") {
    users { id username email } apiKeys { id name user { id email } } models providers
  }
  viewer { id roles }
}
"""


async def test_a_user_sees_only_themselves_everywhere(world: World) -> None:
    body = await world.gw.query(EVERYTHING, {"f": F}, token=ALICE)
    assert "errors" not in body, body["errors"]
    text = values(body)
    assert [word for word in NOT_ALICES if word in text] == []
    usage = body["data"]["usage"]
    assert usage["totals"] == {"spend": 2.0, "activeUsers": 1, "activeApiKeys": 1, "activeModels": 1}
    assert usage["previousPeriod"] == {"spend": 1.0, "activeUsers": 1}
    assert [n["userId"] for n in usage["byUser"]["nodes"]] == ["alice"]
    assert [u["userId"] for u in usage["byModel"]["nodes"][0]["topUsers"]] == ["alice"]
    assert [n["apiKeyId"] for n in usage["byApiKey"]["nodes"]] == ["key-a"]
    assert usage["freshness"]["unattributedSpend"] == 0.0
    options = body["data"]["filterOptions"]
    assert [u["id"] for u in options["users"]] == ["alice"]
    assert [k["id"] for k in options["apiKeys"]] == ["key-a"]
    assert (options["models"], options["providers"]) == (["gpt-4o"], ["openai"])


async def test_a_user_token_naming_no_directory_user_is_told_so(world: World) -> None:
    query = "query ($f: UsageFilter!) { usage(filter: $f) { totals { spend requests } } }"
    known = await world.gw.query(query, {"f": F}, token=ALICE)
    assert "warnings" not in known.get("extensions", {})
    stranger = issue_token(SECRET, "carol@example.com", [Role.USER])  # an email, not the LiteLLM user id
    body = await world.gw.query(query, {"f": F}, token=stranger)
    assert "errors" not in body, body["errors"]
    assert body["data"]["usage"]["totals"] == {"spend": 0.0, "requests": 0}
    [warning] = body["extensions"]["warnings"]
    assert warning["code"] == "UNKNOWN_VIEWER"
    assert "'carol@example.com'" in warning["message"]
    assert "syncDirectory" in warning["message"]


async def test_an_admin_sees_everyone(world: World) -> None:
    body = await world.gw.query(EVERYTHING, {"f": F}, token=SUBJECTS["adminReadonly"])
    assert "errors" not in body
    usage = body["data"]["usage"]
    assert usage["totals"]["spend"] == 28.0
    assert {n["userId"] for n in usage["byUser"]["nodes"]} == {"alice", "bob", "litellm:x", "unattributed"}


@pytest.mark.parametrize(
    "filter_",
    [
        {"userIds": ["bob"]},
        {"userIds": ["alice", "bob"]},
        {"userIds": ["nobody-at-all"]},  # FORBIDDEN, not "unknown": a user learns nothing of who exists
        {"userIds": ["unattributed"]},
        {"userIds": ["litellm:x"]},
        {"apiKeyIds": ["key-b"]},
        {"apiKeyIds": ["key-a", "key-b"]},
        {"apiKeyIds": [KEY_B]},
        {"apiKeyIds": ["raw:abc"]},
        {"apiKeyIds": ["unattributed"]},
        {"apiKeyIds": ["no-such-key"]},
        {"userIds": ["alice"], "apiKeyIds": ["key-b"]},
    ],
)
async def test_a_user_naming_someone_else_is_forbidden(world: World, filter_: dict[str, Any]) -> None:
    for selection in ("totals { spend }", "byUser { nodes { userId } }", "previousPeriod { spend }"):
        body = await world.gw.query(
            f"query ($f: UsageFilter!) {{ usage(filter: $f) {{ {selection} }} }}",
            {"f": {**F, **filter_}},
            token=ALICE,
        )
        assert codes(body) == ["FORBIDDEN"], body
        assert body["data"] is None
        assert not [word for word in ("Bob", "bob@", KEY_B) if word in str(body)]
    body = await world.gw.query(
        "mutation ($f: UsageFilter!) { exportUsage(filter: $f, format: CSV) { id } }",
        {"f": {**F, **filter_}},
        token=ALICE,
    )
    assert codes(body) == ["FORBIDDEN"]


@pytest.mark.parametrize(
    "filter_",
    [
        {"userIds": ["alice"]},
        {"apiKeyIds": ["key-a"]},
        {"apiKeyIds": [KEY_A]},
        {"userIds": []},
        {"models": ["claude-3"]},
    ],
)
async def test_a_user_may_name_themselves_and_their_keys(world: World, filter_: dict[str, Any]) -> None:
    data = await world.gw.data(
        "query ($f: UsageFilter!) { usage(filter: $f) { byUser { nodes { userId } } } }",
        {"f": {**F, **filter_}},
        token=ALICE,
    )
    expected = [] if filter_ in ({"userIds": []}, {"models": ["claude-3"]}) else [{"userId": "alice"}]
    assert data["usage"]["byUser"]["nodes"] == expected


async def test_a_user_gets_nothing_of_another_users_export(world: World) -> None:
    headers = {"Authorization": f"Bearer {ALICE}"}
    for export_id in (world.bob_export, "00000000-0000-0000-0000-000000000000", "../" + world.bob_export):
        body = await world.gw.query(
            "query ($id: ID!) { export(id: $id) { id downloadUrl } }", {"id": export_id}, token=ALICE
        )
        assert body["data"] == {"export": None} or codes(body) == ["FORBIDDEN"]
        response = await world.gw.client.get(f"/exports/{export_id}", headers=headers)
        assert response.status_code in (403, 404)
        assert "Bob" not in response.text
        assert world.bob_export not in response.text
    own = await world.gw.data(
        "query ($id: ID!) { export(id: $id) { id } }", {"id": world.alice_export}, token=ALICE
    )
    assert own == {"export": {"id": world.alice_export}}


async def test_a_users_export_holds_only_their_rows(world: World) -> None:
    data = await world.gw.data(
        "mutation ($f: UsageFilter!) { exportUsage(filter: $f, format: CSV) { id status downloadUrl } }",
        {"f": F},
        token=ALICE,
    )
    export = data["exportUsage"]
    assert export["status"] == "DONE"
    response = await world.gw.client.get(export["downloadUrl"], headers={"Authorization": f"Bearer {ALICE}"})
    assert response.status_code == 200
    assert "alice" in response.text
    assert [word for word in NOT_ALICES if word in response.text] == []
    rows = await world.gw.db.fetch_all(
        "SELECT actor, action, outcome FROM audit_log WHERE action = 'exportUsage'"
    )
    assert [tuple(r) for r in rows] == [("alice", "exportUsage", "ok")]
