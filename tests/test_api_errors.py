"""Client mistakes answer HTTP 200 with a stable ``extensions.code``; the unexpected is masked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from structlog.testing import capture_logs

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
from usage_gateway.datasources.facts.aggregates import UsageTotals
from usage_gateway.resolvers import usage as usage_resolvers
from usage_gateway.resolvers.context import Context
from usage_gateway.resolvers.usage import UsageRequest
from usage_gateway.resolvers.viewer import Role
from usage_gateway.server.tokens import issue_token

TOTALS = "query ($f: UsageFilter!) { usage(filter: $f) { totals { spend } } }"
DAY = BASE.isoformat()


@pytest.fixture
async def gw(database_url: str, redis_url: str) -> AsyncIterator[Gateway]:
    async with open_gateway(database_url, redis_url, max_range_days=60) as gateway:
        await seed_directory(
            gateway.db, [DirectoryUser("alice")], [DirectoryKey("key-1", token_hash("k1"), "alice")]
        )
        await seed_days(gateway.db, BASE - timedelta(days=70), BASE + timedelta(days=10))
        await store_facts(
            gateway.db,
            [
                make_fact(BASE, user_id="alice", api_key=token_hash("k1")),
                make_fact(BASE, user_id="bob", model="x"),
            ],
        )
        yield gateway


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def error_of(gw: Gateway, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    body = await gw.query(query, variables)
    assert len(body["errors"]) == 1, body
    error: dict[str, Any] = body["errors"][0]
    return error


@pytest.mark.parametrize(
    ("filter_", "code", "words"),
    [
        ({"from": "2024-02-02", "to": "2024-02-01"}, "BAD_USER_INPUT", "before"),
        ({"from": "2024-01-01", "to": "2024-03-01"}, "RANGE_TOO_LARGE", "at most 60"),
        (
            {"from": DAY, "to": DAY, "userIds": ["alice", "mallory", "litellm:x", "unattributed"]},
            "BAD_USER_INPUT",
            "mallory",
        ),
        ({"from": DAY, "to": DAY, "userIds": ["litellm:"]}, "BAD_USER_INPUT", "litellm:"),
        (
            {"from": DAY, "to": DAY, "apiKeyIds": ["key-1", "key-9", "raw:x", "unattributed"]},
            "BAD_USER_INPUT",
            "key-9",
        ),
        ({"from": DAY, "to": DAY, "apiKeyIds": ["ABCDEF" * 10 + "ABCD"]}, "BAD_USER_INPUT", "apiKeyIds"),
        ({"from": "2024-13-01", "to": DAY}, "BAD_USER_INPUT", "2024-13-01"),
        ({"from": "20240101", "to": DAY}, "BAD_USER_INPUT", "YYYY-MM-DD"),
        ({"from": 20240101, "to": DAY}, "BAD_USER_INPUT", "YYYY-MM-DD"),
        ({"to": DAY}, "BAD_USER_INPUT", "from"),
    ],
)
async def test_bad_filters_have_their_code(
    gw: Gateway, filter_: dict[str, Any], code: str, words: str
) -> None:
    error = await error_of(gw, TOTALS, {"f": filter_})
    assert error["extensions"]["code"] == code
    assert words in error["message"]


async def test_malformed_date_literal_is_bad_user_input(gw: Gateway) -> None:
    error = await error_of(
        gw, '{ usage(filter: {from: "2024-02-30", to: "2024-03-01"}) { totals { spend } } }'
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_syntax_and_unknown_fields_are_bad_user_input(gw: Gateway) -> None:
    assert codes(await gw.query("{ usage(filter: ")) == ["BAD_USER_INPUT"]
    assert codes(await gw.query(f'{{ usage(filter: {{from: "{DAY}", to: "{DAY}"}}) {{ nope }} }}')) == [
        "BAD_USER_INPUT"
    ]


@pytest.mark.parametrize(
    ("selection", "first"),
    [
        ("byUser(first: $n) { totalCount }", 501),
        ("byUser(first: $n) { totalCount }", -1),
        ("byModel(first: $n) { totalCount }", 501),
        ("byProvider(first: $n) { totalCount }", 1000),
        ("byApiKey(first: $n) { totalCount }", -5),
        ("byUser { nodes { models(first: $n) { model } } }", 501),
        ("byUser { nodes { apiKeys(first: $n) { apiKeyId } } }", -1),
        ("byModel { nodes { topUsers(first: $n) { userId } } }", 9999),
    ],
)
async def test_first_outside_the_cap_is_bad_user_input(gw: Gateway, selection: str, first: int) -> None:
    query = f"query ($f: UsageFilter!, $n: Int!) {{ usage(filter: $f) {{ {selection} }} }}"
    body = await gw.query(query, {"f": {"from": DAY, "to": DAY}, "n": first})
    assert set(codes(body)) == {"BAD_USER_INPUT"}
    assert "500" in body["errors"][0]["message"]


async def test_bad_cursors_are_bad_user_input(gw: Gateway) -> None:
    query = """query ($f: UsageFilter!, $after: String, $o: UsageOrder) { usage(filter: $f) {
        byModel(first: 1, after: $after, orderBy: $o) { pageInfo { endCursor } } } }"""
    f = {"f": {"from": DAY, "to": DAY}}
    cursor = (await gw.data(query, f))["usage"]["byModel"]["pageInfo"]["endCursor"]
    assert cursor
    for after, order in (("not a cursor", None), ("eyJ4IjoxfQ", None), (cursor, {"metric": "REQUESTS"})):
        error = await error_of(gw, query, {**f, "after": after, "o": order})
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["path"] == ["usage", "byModel"]


async def test_a_failing_resolver_is_masked_and_logged_once(
    gw: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(ctx: Context, request: UsageRequest) -> UsageTotals:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(usage_resolvers, "totals", broken)
    with capture_logs() as logs:
        response = await gw.post(TOTALS, {"f": {"from": DAY, "to": DAY}})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["message"] == "Internal error"
    assert error["extensions"] == {"code": "INTERNAL", "requestId": response.headers["x-request-id"]}
    assert "secret" not in response.text
    [logged] = [entry for entry in logs if entry["event"] == "graphql.internal_error"]
    assert logged["request_id"] == response.headers["x-request-id"]
    assert isinstance(logged["exc_info"], RuntimeError)


async def test_missing_days_come_with_data_and_an_upstream_error(gw: Gateway) -> None:
    start, end = BASE + timedelta(days=8), BASE + timedelta(days=12)  # the last two days are not stored
    query = """query ($f: UsageFilter!) { usage(filter: $f) {
        totals { spend } freshness { complete days closedDays missingDays } } }"""
    body = await gw.query(query, {"f": {"from": start.isoformat(), "to": end.isoformat()}})
    missing = [(BASE + timedelta(days=n)).isoformat() for n in (11, 12)]
    assert body["data"]["usage"]["freshness"] == {
        "complete": False,
        "days": 5,
        "closedDays": 3,
        "missingDays": missing,
    }
    assert body["data"]["usage"]["totals"] == {"spend": 0.0}
    [error] = body["errors"]
    assert error["extensions"] == {"code": "UPSTREAM_UNAVAILABLE", "missingDays": missing}
    assert all(day in error["message"] for day in missing)


async def test_previous_period_days_missing_are_reported_when_selected(gw: Gateway) -> None:
    start = BASE - timedelta(days=60)  # its previous period lies before the stored days
    f = {"f": {"from": start.isoformat(), "to": (start + timedelta(days=19)).isoformat()}}
    assert "errors" not in await gw.query(TOTALS, f)
    body = await gw.query("query ($f: UsageFilter!) { usage(filter: $f) { previousPeriod { spend } } }", f)
    assert codes(body) == ["UPSTREAM_UNAVAILABLE"]
    assert body["data"]["usage"]["previousPeriod"] == {"spend": 0.0}


async def test_refresh_without_litellm_is_upstream_unavailable_and_an_unknown_export_null(
    gw: Gateway,
) -> None:
    body = await gw.query("mutation { refreshToday { changed } }")
    assert codes(body) == ["UPSTREAM_UNAVAILABLE"]
    body = await gw.query('{ export(id: "x") { id } }')
    assert "errors" not in body
    assert body["data"] == {"export": None}


# --- Authentication -------------------------------------------------------------------------------------


def expired() -> str:
    return issue_token(SECRET, "admin", [Role.ADMIN], now=datetime.now(UTC) - timedelta(days=2))


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic YWRtaW46YWRtaW4=",
        "Bearer",
        "Bearer not-a-jwt",
        f"Bearer {issue_token('another-' + SECRET, 'admin', [Role.ADMIN])}",
        f"Bearer {expired()}",
        f"Bearer {issue_token(SECRET, 'admin', ['root'])}",
        f"Bearer {issue_token(SECRET, 'admin', [])}",
        f"Bearer {jwt.encode({'sub': 'admin', 'roles': ['admin']}, SECRET, algorithm='HS256')}",  # no exp
        f"Bearer {jwt.encode({'sub': 'a', 'roles': ['admin'], 'exp': 9e9}, SECRET, algorithm='HS384')}",
    ],
)
async def test_requests_without_a_valid_token_are_401(gw: Gateway, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await gw.client.post("/graphql", json={"query": "{ viewer { id } }"}, headers=headers)
    assert response.status_code == 401
    expected = (
        "Bearer"
        if authorization in (None, "Basic YWRtaW46YWRtaW4=", "Bearer")
        else 'Bearer error="invalid_token"'
    )
    assert response.headers["www-authenticate"] == expected
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_without_a_secret_every_request_is_401(database_url: str) -> None:
    async with open_gateway(database_url, jwt_secret=None) as gw:
        response = await gw.post("{ viewer { id } }")
        assert response.status_code == 401


async def test_viewer_and_user_scope(gw: Gateway) -> None:
    admin = await gw.data("{ viewer { id roles } }")
    assert admin == {"viewer": {"id": "admin", "roles": ["ADMIN"]}}
    alice = gw.token("alice", Role.USER)
    query = """query ($f: UsageFilter!) { viewer { roles }
        usage(filter: $f) { byUser { nodes { userId } } }
        filterOptions(from: "2024-01-22", to: "2024-01-22") { users { id } models } }"""
    data = await gw.data(query, {"f": {"from": DAY, "to": DAY}}, token=alice)
    assert data["viewer"]["roles"] == ["USER"]
    assert data["usage"]["byUser"]["nodes"] == [{"userId": "alice"}]
    assert data["filterOptions"] == {"users": [{"id": "alice"}], "models": ["gpt-4o"]}
