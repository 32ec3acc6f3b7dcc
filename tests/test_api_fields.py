"""Every field of ``usage`` equals the sums computed in Python from the inserted facts."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import graphql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api_client import (
    EXACT_METRICS,
    DirectoryKey,
    DirectoryUser,
    Gateway,
    exact_metrics,
    open_gateway,
    own,
    ranked,
    seed_days,
    seed_directory,
    series,
    share,
    token_hash,
)
from tests.facts_data import BASE, DAYS, KEYS, Fact, facts_lists, filters, make_fact, py_totals
from tests.facts_data import replace_facts as store_facts
from usage_gateway.datasources.facts.aggregates import (
    Dimension,
    FactFilter,
    Granularity,
    GroupRow,
    UsageTotals,
)
from usage_gateway.schema.scalars import decimal_text
from usage_gateway.schema.schema import schema_sdl

examples = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

USERS = [
    DirectoryUser("alice", "Alice", "alice@example.com", "R&D"),
    DirectoryUser("bob"),
    DirectoryUser("Zoë"),
]
# k1..k3 of tests.facts_data are directory keys; its raw:abc and unattributed buckets are not.
KEY_IDS = {KEYS[0]: "key-1", KEYS[1]: "key-2", KEYS[2]: "key-3"}
DIRECTORY_KEYS = [
    DirectoryKey("key-1", KEYS[0], "alice", "laptop"),
    DirectoryKey("key-2", KEYS[1], "bob"),
    DirectoryKey("key-3", KEYS[2], "Zoë", revoked=True),
]
OWNERS = {key.token_hash: key.user_id for key in DIRECTORY_KEYS}
assert KEYS[0] == token_hash("k1")

SERIES = f"date from to metrics {{ {EXACT_METRICS} }}"
QUERY = f"""
query ($filter: UsageFilter!, $g: Granularity!) {{
  usage(filter: $filter) {{
    from to
    totals {{ {EXACT_METRICS} }}
    previousPeriod {{ {EXACT_METRICS} }}
    day: timeSeries {{ {SERIES} }}
    week: timeSeries(granularity: WEEK) {{ {SERIES} }}
    month: timeSeries(granularity: MONTH) {{ {SERIES} }}
    byUser(first: 500) {{
      totalCount pageInfo {{ hasNextPage }}
      nodes {{
        userId share lastActiveDate metrics {{ {EXACT_METRICS} }} user {{ id username email department }}
        timeSeries(granularity: $g) {{ {SERIES} }}
        models(first: 2) {{
          model providers share metrics {{ {EXACT_METRICS} }} timeSeries(granularity: $g) {{ {SERIES} }}
          topUsers {{ userId share metrics {{ {EXACT_METRICS} }} }}
        }}
        apiKeys(first: 2) {{
          apiKeyId tokenHashPrefix share lastActiveDate metrics {{ {EXACT_METRICS} }}
          timeSeries(granularity: $g) {{ {SERIES} }}
        }}
      }}
    }}
    byModel(first: 500) {{
      totalCount
      nodes {{
        model providers share metrics {{ {EXACT_METRICS} }} timeSeries(granularity: $g) {{ {SERIES} }}
        topUsers(first: 2) {{
          userId share lastActiveDate metrics {{ {EXACT_METRICS} }} timeSeries(granularity: $g) {{ {SERIES} }}
          models {{ model metrics {{ {EXACT_METRICS} }} }}
        }}
      }}
    }}
    byProvider(first: 500) {{
      totalCount
      nodes {{
        provider models share metrics {{ {EXACT_METRICS} }} timeSeries(granularity: $g) {{ {SERIES} }}
      }}
    }}
    byApiKey(first: 500) {{
      totalCount
      nodes {{
        apiKeyId tokenHashPrefix share lastActiveDate metrics {{ {EXACT_METRICS} }}
        apiKey {{ id name revoked user {{ id }} }} user {{ id }}
        timeSeries(granularity: $g) {{ {SERIES} }}
      }}
    }}
    freshness {{ complete days closedDays openDays missingDays unattributedSpend unattributedSpendExact }}
  }}
}}
"""


@st.composite
def api_filters(draw: st.DrawFn) -> tuple[dict[str, Any], FactFilter]:
    """A UsageFilter (directory keys named by id) and the FactFilter it means."""
    f = draw(filters())
    users = None if f.user_ids is None else tuple(u for u in f.user_ids if u != "absent")
    buckets = None if f.api_keys is None else tuple(k for k in f.api_keys if k != "absent")
    variables: dict[str, Any] = {"from": f.date_from.isoformat(), "to": f.date_to.isoformat()}
    if users is not None:
        variables["userIds"] = list(users)
    if buckets is not None:
        variables["apiKeyIds"] = [KEY_IDS.get(bucket, bucket) for bucket in buckets]
    if f.models is not None:
        variables["models"] = list(f.models)
    if f.providers is not None:
        variables["providers"] = list(f.providers)
    return variables, FactFilter(f.date_from, f.date_to, users, buckets, f.models, f.providers)


Chosen = tuple[dict[str, Any], FactFilter]


def seen_only(chosen: Chosen, facts: list[Fact]) -> Chosen:
    """The filter without the models and providers no stored day has: the API refuses those as unknown,
    as it does users and keys (``absent``)."""
    variables, f = chosen
    seen_models, seen_providers = {x.model for x in facts}, {x.provider for x in facts}
    models = None if f.models is None else tuple(m for m in f.models if m in seen_models)
    providers = None if f.providers is None else tuple(p for p in f.providers if p in seen_providers)
    for name, values in (("models", models), ("providers", providers)):
        if values is not None:
            variables = {**variables, name: list(values)}
    return variables, dataclasses.replace(f, models=models, providers=providers)


@pytest.fixture
async def gw(database_url: str, redis_url: str) -> AsyncIterator[Gateway]:
    # Every field at once with first: 500: lift the cost and rate limits (tested in test_limits).
    async with open_gateway(database_url, redis_url, max_query_cost=10_000_000, rate_limit_cost=0) as gateway:
        await seed_directory(gateway.db, USERS, DIRECTORY_KEYS)
        await seed_days(
            gateway.db, BASE - timedelta(days=2 * DAYS + 10), BASE + timedelta(days=2 * DAYS + 10)
        )
        yield gateway


def user_json(user_id: str | None) -> dict[str, Any] | None:
    found = next((u for u in USERS if u.id == user_id), None)
    if found is None:
        return None
    return {"id": found.id, "username": found.username, "email": found.email, "department": found.department}


def key_id(bucket: str) -> str:
    return KEY_IDS.get(bucket, bucket)


def user_nodes(facts: list[Fact], f: FactFilter, g: Granularity, whole: UsageTotals) -> list[dict[str, Any]]:
    result = []
    for row in ranked(facts, f, Dimension.USER):
        mine = own(facts, Dimension.USER, row.key)
        models = []
        for model in ranked(mine, f, Dimension.MODEL)[:2]:
            theirs = own(mine, Dimension.MODEL, model.key)
            top_users = [
                {
                    "userId": u.key,
                    "share": share(u.totals.spend, model.totals.spend),
                    "metrics": exact_metrics(u.totals),
                }
                for u in ranked(theirs, f, Dimension.USER)[:5]
            ]
            models.append(
                {
                    "model": model.key,
                    "providers": list(model.related),
                    "share": share(model.totals.spend, row.totals.spend),
                    "metrics": exact_metrics(model.totals),
                    "timeSeries": series(theirs, f, g),
                    "topUsers": top_users,
                }
            )
        keys = [
            {
                "apiKeyId": key_id(key.key),
                "tokenHashPrefix": key.key[:12],
                "share": share(key.totals.spend, row.totals.spend),
                "lastActiveDate": last_active(key),
                "metrics": exact_metrics(key.totals),
                "timeSeries": series(own(mine, Dimension.API_KEY, key.key), f, g),
            }
            for key in ranked(mine, f, Dimension.API_KEY)[:2]
        ]
        result.append(
            {
                "userId": row.key,
                "share": share(row.totals.spend, whole.spend),
                "lastActiveDate": last_active(row),
                "metrics": exact_metrics(row.totals),
                "user": user_json(row.key),
                "timeSeries": series(mine, f, g),
                "models": models,
                "apiKeys": keys,
            }
        )
    return result


def model_nodes(facts: list[Fact], f: FactFilter, g: Granularity, whole: UsageTotals) -> list[dict[str, Any]]:
    result = []
    for row in ranked(facts, f, Dimension.MODEL):
        mine = own(facts, Dimension.MODEL, row.key)
        top_users = []
        for user in ranked(mine, f, Dimension.USER)[:2]:
            theirs = own(mine, Dimension.USER, user.key)
            top_users.append(
                {
                    "userId": user.key,
                    "share": share(user.totals.spend, row.totals.spend),
                    "lastActiveDate": last_active(user),
                    "metrics": exact_metrics(user.totals),
                    "timeSeries": series(theirs, f, g),
                    "models": [
                        {"model": m.key, "metrics": exact_metrics(m.totals)}
                        for m in ranked(theirs, f, Dimension.MODEL)
                    ],
                }
            )
        result.append(
            {
                "model": row.key,
                "providers": list(row.related),
                "share": share(row.totals.spend, whole.spend),
                "metrics": exact_metrics(row.totals),
                "timeSeries": series(mine, f, g),
                "topUsers": top_users,
            }
        )
    return result


def provider_nodes(
    facts: list[Fact], f: FactFilter, g: Granularity, whole: UsageTotals
) -> list[dict[str, Any]]:
    return [
        {
            "provider": row.key,
            "models": list(row.related),
            "share": share(row.totals.spend, whole.spend),
            "metrics": exact_metrics(row.totals),
            "timeSeries": series(own(facts, Dimension.PROVIDER, row.key), f, g),
        }
        for row in ranked(facts, f, Dimension.PROVIDER)
    ]


def key_nodes(facts: list[Fact], f: FactFilter, g: Granularity, whole: UsageTotals) -> list[dict[str, Any]]:
    result = []
    for row in ranked(facts, f, Dimension.API_KEY):
        known = next((k for k in DIRECTORY_KEYS if k.token_hash == row.key), None)
        result.append(
            {
                "apiKeyId": key_id(row.key),
                "tokenHashPrefix": row.key[:12],
                "share": share(row.totals.spend, whole.spend),
                "lastActiveDate": last_active(row),
                "metrics": exact_metrics(row.totals),
                "apiKey": None
                if known is None
                else {
                    "id": known.id,
                    "name": known.name,
                    "revoked": known.revoked,
                    "user": {"id": known.user_id},
                },
                "user": None if known is None else {"id": known.user_id},
                "timeSeries": series(own(facts, Dimension.API_KEY, row.key), f, g),
            }
        )
    return result


def last_active(row: GroupRow) -> str | None:
    return None if row.last_active is None else row.last_active.isoformat()


def previous(f: FactFilter) -> FactFilter:
    length = f.date_to - f.date_from + timedelta(days=1)
    return FactFilter(
        f.date_from - length, f.date_from - timedelta(days=1), f.user_ids, f.api_keys, f.models, f.providers
    )


def stored_days(f: FactFilter) -> int:
    return (min(f.date_to, date.today()) - f.date_from).days + 1


@examples
@given(facts=facts_lists, chosen=api_filters(), granularity=st.sampled_from(Granularity))
async def test_every_field_equals_python_sums(
    gw: Gateway, facts: list[Fact], chosen: tuple[dict[str, Any], FactFilter], granularity: Granularity
) -> None:
    await store_facts(gw.db, facts)
    variables, f = seen_only(chosen, facts)
    usage = (await gw.data(QUERY, {"filter": variables, "g": granularity.name}))["usage"]
    whole = py_totals(fact for fact in facts if fact.matches(f))

    assert (usage["from"], usage["to"]) == (f.date_from.isoformat(), f.date_to.isoformat())
    assert usage["totals"] == exact_metrics(whole)
    assert usage["previousPeriod"] == exact_metrics(
        py_totals(fact for fact in facts if fact.matches(previous(f)))
    )
    for alias, each in (("day", Granularity.DAY), ("week", Granularity.WEEK), ("month", Granularity.MONTH)):
        assert usage[alias] == series(facts, f, each)
    assert usage["byUser"]["nodes"] == user_nodes(facts, f, granularity, whole)
    assert usage["byModel"]["nodes"] == model_nodes(facts, f, granularity, whole)
    assert usage["byProvider"]["nodes"] == provider_nodes(facts, f, granularity, whole)
    assert usage["byApiKey"]["nodes"] == key_nodes(facts, f, granularity, whole)
    for name in ("byUser", "byModel", "byProvider", "byApiKey"):
        assert usage[name]["totalCount"] == len(usage[name]["nodes"])
    assert usage["byUser"]["pageInfo"] == {"hasNextPage": False}

    unattributed = [fact for fact in facts if fact.matches(f) and fact.user_id == "unattributed"]
    assert usage["freshness"] == {
        "complete": True,
        "days": stored_days(f),
        "closedDays": stored_days(f),
        "openDays": [],
        "missingDays": [],
        "unattributedSpend": float(py_totals(unattributed).spend),
        "unattributedSpendExact": decimal_text(py_totals(unattributed).spend),
    }


@examples
@given(facts=facts_lists, chosen=api_filters())
async def test_by_user_sums_to_totals(
    gw: Gateway, facts: list[Fact], chosen: tuple[dict[str, Any], FactFilter]
) -> None:
    await store_facts(gw.db, facts)
    query = f"""query ($filter: UsageFilter!) {{ usage(filter: $filter) {{
        totals {{ {EXACT_METRICS} }}
        byUser(first: 500) {{ nodes {{ metrics {{ {EXACT_METRICS} }} }} }} }} }}"""
    usage = (await gw.data(query, {"filter": seen_only(chosen, facts)[0]}))["usage"]
    by_user = [node["metrics"] for node in usage["byUser"]["nodes"]]
    for name in (
        "requests",
        "successfulRequests",
        "failedRequests",
        "promptTokens",
        "completionTokens",
        "totalTokens",
    ):
        assert sum(m[name] for m in by_user) == usage["totals"][name]
    assert sum(m["spend"] for m in by_user) == pytest.approx(usage["totals"]["spend"], rel=1e-9, abs=1e-9)
    assert sum((Decimal(m["spendExact"]) for m in by_user), Decimal(0)) == Decimal(
        usage["totals"]["spendExact"]
    )


async def test_counts_beyond_32_bits_are_json_numbers(gw: Gateway) -> None:
    await store_facts(gw.db, [make_fact(BASE, requests=3 * 10**12)])
    query = "query ($f: UsageFilter!) { usage(filter: $f) { totals { requests totalTokens } } }"
    response = await gw.post(query, {"f": {"from": BASE.isoformat(), "to": BASE.isoformat()}})
    assert response.headers["content-type"] == "application/json"
    assert b'"requests":3000000000000' in response.content
    assert response.json()["data"]["usage"]["totals"]["totalTokens"] == 3 * 10**13


async def test_filter_options_list_what_the_range_holds(gw: Gateway) -> None:
    await store_facts(
        gw.db,
        [
            make_fact(BASE, user_id="alice", api_key=KEYS[0], model="gpt-4o", provider="openai"),
            make_fact(BASE, user_id="litellm:x", api_key="raw:abc", model="claude-3", provider="bedrock"),
            make_fact(BASE, user_id="unattributed", api_key="unattributed", model="x", provider="anthropic"),
            make_fact(BASE + timedelta(days=3), user_id="bob", api_key=KEYS[1], model="late"),
        ],
    )
    query = """{ filterOptions(from: "2024-01-22", to: "2024-01-23") {
        users { id username email } apiKeys { id name keyAlias revoked user { id } } models providers } }"""
    options = (await gw.data(query))["filterOptions"]
    assert options["users"] == [
        {"id": "alice", "username": "Alice", "email": "alice@example.com"},
        {"id": "litellm:x", "username": None, "email": None},
        {"id": "unattributed", "username": None, "email": None},
    ]
    assert options["apiKeys"] == [
        {"id": "key-1", "name": "laptop", "keyAlias": None, "revoked": False, "user": {"id": "alice"}},
        {"id": "raw:abc", "name": None, "keyAlias": None, "revoked": False, "user": None},
        {"id": "unattributed", "name": None, "keyAlias": None, "revoked": False, "user": None},
    ]
    assert options["models"] == ["claude-3", "gpt-4o", "x"]
    assert options["providers"] == ["anthropic", "bedrock", "openai"]


async def test_keys_outside_the_directory_filter_by_their_api_key_id(gw: Gateway) -> None:
    outside = token_hash("not in the directory")
    await store_facts(
        gw.db,
        [
            make_fact(BASE, user_id="litellm:y", api_key=outside, spend="2"),
            make_fact(BASE, user_id="alice", api_key=KEYS[0], spend="3"),
        ],
    )
    query = """query ($f: UsageFilter!) { usage(filter: $f) {
        totals { spend } byApiKey { nodes { apiKeyId tokenHashPrefix apiKey { id } user { id } } } } }"""
    day = BASE.isoformat()
    usage = (await gw.data(query, {"f": {"from": day, "to": day}}))["usage"]
    ids = [node["apiKeyId"] for node in usage["byApiKey"]["nodes"]]
    assert ids == ["key-1", outside]
    assert usage["byApiKey"]["nodes"][1] == {
        "apiKeyId": outside,
        "tokenHashPrefix": outside[:12],
        "apiKey": None,
        "user": None,
    }
    for key_id, spend in (("key-1", 3.0), (outside, 2.0)):
        usage = (await gw.data(query, {"f": {"from": day, "to": day, "apiKeyIds": [key_id]}}))["usage"]
        assert usage["totals"] == {"spend": spend}


async def test_spend_exact_is_the_exact_decimal_sum_where_doubles_drift(gw: Gateway) -> None:
    # As doubles 500.1 + 69.69904768 is 569.7990476800001 and 0.1 + 0.2 is 0.30000000000000004.
    await store_facts(
        gw.db,
        [
            make_fact(BASE, user_id="alice", api_key=KEYS[0], spend="500.1"),
            make_fact(BASE, user_id="alice", api_key=KEYS[0], model="claude-3", spend="69.69904768"),
            make_fact(BASE, user_id="bob", api_key=KEYS[1], spend="0.1"),
            make_fact(BASE + timedelta(days=1), user_id="bob", api_key=KEYS[1], spend="0.2"),
            make_fact(BASE + timedelta(days=1), user_id="Zoë", api_key=KEYS[2], spend="0.0000001"),
        ],
    )
    query = """query ($f: UsageFilter!) { usage(filter: $f) {
        totals { spend spendExact }
        timeSeries { date metrics { spendExact } }
        byUser { nodes { userId metrics { spend spendExact } timeSeries { metrics { spendExact } } } } } }"""
    f = {"from": BASE.isoformat(), "to": (BASE + timedelta(days=1)).isoformat()}
    response = await gw.post(query, {"f": f})
    assert (
        b'"spendExact":"569.79904768"' in response.content
    )  # a JSON string: no client parses it to a double
    usage = response.json()["data"]["usage"]
    assert usage["totals"] == {"spend": 570.09904778, "spendExact": "570.09904778"}
    assert [point["metrics"]["spendExact"] for point in usage["timeSeries"]] == ["569.89904768", "0.2000001"]
    nodes = {node["userId"]: node for node in usage["byUser"]["nodes"]}
    assert nodes["alice"]["metrics"] == {"spend": 569.79904768, "spendExact": "569.79904768"}
    assert nodes["bob"]["metrics"] == {"spend": 0.3, "spendExact": "0.3"}
    assert nodes["Zoë"]["metrics"] == {"spend": 1e-7, "spendExact": "0.0000001"}  # never 1E-7
    assert [p["metrics"]["spendExact"] for p in nodes["bob"]["timeSeries"]] == ["0.1", "0.2"]
    assert [p["metrics"]["spendExact"] for p in nodes["Zoë"]["timeSeries"]] == ["0", "0.0000001"]


def _bounds(points: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(p["date"], p["from"], p["to"]) for p in points]


async def test_week_and_month_points_hold_their_buckets_clipped_to_the_range(gw: Gateway) -> None:
    start, end = BASE + timedelta(days=2), date(2024, 2, 14)  # Wednesday 2024-01-24 to Wednesday 02-14
    await store_facts(
        gw.db,
        [
            make_fact(BASE, spend="1000"),  # the Monday that labels the first week: outside the range
            make_fact(start, spend="2"),
            make_fact(end, spend="3"),
            make_fact(end + timedelta(days=1), spend="1000"),  # in the last week and month: outside the range
        ],
    )
    series = "date from to metrics { spendExact }"
    query = f"""query ($f: UsageFilter!) {{ usage(filter: $f) {{
        week: timeSeries(granularity: WEEK) {{ {series} }}
        month: timeSeries(granularity: MONTH) {{ {series} }}
        day: timeSeries(granularity: DAY) {{ {series} }}
        byUser {{ nodes {{ week: timeSeries(granularity: WEEK) {{ {series} }} }} }} }} }}"""
    usage = (await gw.data(query, {"f": {"from": start.isoformat(), "to": end.isoformat()}}))["usage"]
    weeks = [
        ("2024-01-22", "2024-01-24", "2024-01-28"),
        ("2024-01-29", "2024-01-29", "2024-02-04"),
        ("2024-02-05", "2024-02-05", "2024-02-11"),
        ("2024-02-12", "2024-02-12", "2024-02-14"),
    ]
    assert _bounds(usage["week"]) == weeks
    assert [p["metrics"]["spendExact"] for p in usage["week"]] == ["2", "0", "0", "3"]
    assert _bounds(usage["byUser"]["nodes"][0]["week"]) == weeks
    assert _bounds(usage["month"]) == [
        ("2024-01-01", "2024-01-24", "2024-01-31"),
        ("2024-02-01", "2024-02-01", "2024-02-14"),
    ]
    assert [p["metrics"]["spendExact"] for p in usage["month"]] == ["2", "3"]
    assert len(usage["day"]) == 22
    assert all(p["from"] == p["to"] == p["date"] for p in usage["day"])
    # A range inside one week and one month: a single point, clipped at both ends.
    one = {"from": "2024-01-30", "to": "2024-02-01"}
    usage = (await gw.data(query, {"f": one}))["usage"]
    assert _bounds(usage["week"]) == [("2024-01-29", "2024-01-30", "2024-02-01")]
    assert _bounds(usage["month"]) == [
        ("2024-01-01", "2024-01-30", "2024-01-31"),
        ("2024-02-01", "2024-02-01", "2024-02-01"),
    ]


def test_the_schema_says_how_week_and_month_buckets_are_clipped() -> None:
    schema = graphql.build_schema(schema_sdl())  # introspection is off in the gateway: read the SDL
    point, usage = schema.get_type("UsagePoint"), schema.get_type("Usage")
    assert isinstance(point, graphql.GraphQLObjectType)
    assert isinstance(usage, graphql.GraphQLObjectType)
    assert "Monday" in (point.description or "")
    assert "only the days inside the range" in (point.description or "")
    assert "may be before the range" in (point.fields["date"].description or "")
    assert point.fields.keys() >= {"from", "to"}
    assert "a Monday or a 1st before `from`" in (usage.fields["timeSeries"].description or "")
