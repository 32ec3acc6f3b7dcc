"""LiteLLM rows over the whole row domain → the LiteLLM-compatible server → the gateway's GraphQL API:
every field of ``usage`` equals SQL sums over the same rows (tests/usage_from_rows.py), at any LiteLLM
page size, with or without a directory, and paging every breakdown in both directions returns every node
once, in the promised order. The answer says it is complete, and it is."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from tests.api_client import METRICS, DirectoryKey, DirectoryUser, Gateway, metrics, seed_directory, share
from tests.gateway_harness import clock_at, long_after
from tests.litellm_rows import API_KEYS, EXACT_SPEND, NOISY_SPEND, Row, assert_close, make_row, rows_strategy
from tests.usage_from_rows import UsageFromRows, fresh_database, litellm_gateway
from usage_gateway.datasources.facts.aggregates import Dimension, Direction, GroupRow, Order, OrderMetric
from usage_gateway.devtools.litellm_compat import LiteLLMStore, running_litellm
from usage_gateway.devtools.local_services import LocalPostgres

FIRST_DAY = date(2026, 11, 16)
DAYS = tuple((FIRST_DAY + timedelta(days=n)).isoformat() for n in range(5))
HEX_KEYS = tuple(key for key in API_KEYS if key)
# The directory's people. "alice" is also a LiteLLM user name: her directory keys count for "alice", her
# LiteLLM rows on keys outside the directory for "litellm:alice". "cleo" owns nothing.
DIRECTORY_USERS = [DirectoryUser("alice", "Alice"), DirectoryUser("ben", "Ben"), DirectoryUser("cleo")]
# LiteLLM's own key table names owners too: the gateway must not attribute by it (a NULL or '' user on a
# key outside the directory is unattributed, whatever LiteLLM's key table says).
LITELLM_KEYS: list[dict[str, Any]] = [
    {"token": HEX_KEYS[0], "raw_key": "sk-e2e-a", "key_alias": "key-a", "user_id": "alice"},
    {"token": HEX_KEYS[1], "raw_key": "sk-e2e-b", "key_alias": "key-b", "user_id": "bob"},
    {"token": HEX_KEYS[2], "raw_key": "sk-e2e-c", "key_alias": "key-c", "user_id": None},
]

SERIES = f"date metrics {{ {METRICS} }}"
QUERY = f"""
query ($filter: UsageFilter!) {{
  usage(filter: $filter) {{
    from to
    totals {{ {METRICS} }}
    previousPeriod {{ {METRICS} }}
    timeSeries {{ {SERIES} }}
    byUser(first: 500) {{
      totalCount pageInfo {{ hasNextPage endCursor }}
      nodes {{ userId share lastActiveDate metrics {{ {METRICS} }} user {{ id username }} }}
    }}
    byModel(first: 500) {{
      totalCount pageInfo {{ hasNextPage endCursor }}
      nodes {{ model providers share metrics {{ {METRICS} }} }}
    }}
    byProvider(first: 500) {{
      totalCount pageInfo {{ hasNextPage endCursor }}
      nodes {{ provider models share metrics {{ {METRICS} }} }}
    }}
    byApiKey(first: 500) {{
      totalCount pageInfo {{ hasNextPage endCursor }}
      nodes {{
        apiKeyId tokenHashPrefix share lastActiveDate metrics {{ {METRICS} }}
        apiKey {{ id revoked user {{ id }} }} user {{ id }}
      }}
    }}
    freshness {{ complete days closedDays openDays missingDays unverifiedDays unattributedSpend }}
  }}
}}
"""
PAGE = """
query ($filter: UsageFilter!, $first: Int!, $order: UsageOrder, $afterUser: String, $afterModel: String,
       $afterProvider: String, $afterKey: String) {
  usage(filter: $filter) {
    byUser(first: $first, after: $afterUser, orderBy: $order) {
      totalCount pageInfo { hasNextPage endCursor } nodes { userId }
    }
    byModel(first: $first, after: $afterModel, orderBy: $order) {
      totalCount pageInfo { hasNextPage endCursor } nodes { model }
    }
    byProvider(first: $first, after: $afterProvider, orderBy: $order) {
      totalCount pageInfo { hasNextPage endCursor } nodes { provider }
    }
    byApiKey(first: $first, after: $afterKey, orderBy: $order) {
      totalCount pageInfo { hasNextPage endCursor } nodes { apiKeyId }
    }
  }
}
"""
# Breakdown → (connection field, node id field, cursor variable).
FIELDS = {
    Dimension.USER: ("byUser", "userId", "afterUser"),
    Dimension.MODEL: ("byModel", "model", "afterModel"),
    Dimension.PROVIDER: ("byProvider", "provider", "afterProvider"),
    Dimension.API_KEY: ("byApiKey", "apiKeyId", "afterKey"),
}
DEFAULT_ORDER = Order()  # what a breakdown without orderBy promises: spend, descending, ties by key


@dataclass(frozen=True)
class Scenario:
    rows: list[Row]
    exact_spend: bool  # every spend a multiple of 1/1024: every sum exact, every tie a true tie
    page_size: int  # LiteLLM rows per page
    owners: dict[str, str]  # directory keys: token hash → owner
    revoked: frozenset[str]  # directory keys marked revoked (their spend stays their owner's)
    start: date
    end: date
    metric: OrderMetric  # paged in both directions
    first: int  # nodes per page when paging

    def __repr__(self) -> str:
        """Compact: a failing example is reported as drawn (see ``examples``), rows one per line."""
        rows = "".join(
            f"\n  {row['date']} user={row['user_id']!r} key={row['api_key'][:4]!r} model={row['model']!r}"
            f" provider={row['custom_llm_provider']!r} tool={row['mcp_namespaced_tool_name']!r}"
            f" endpoint={row['endpoint']!r} spend={row['spend']!r} requests={row['api_requests']}"
            f" prompt={row['prompt_tokens']}"
            for row in sorted(self.rows, key=lambda row: (row["date"], row["id"]))
        )
        owners = {key[:4]: owner for key, owner in self.owners.items()}
        revoked = sorted(key[:4] for key in self.revoked)
        return (
            f"Scenario(exact_spend={self.exact_spend}, page_size={self.page_size}, owners={owners},"
            f" revoked={revoked}, range={self.start}..{self.end}, metric={self.metric.name},"
            f" first={self.first}, rows:{rows})"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Hypothesis prints a failing example with this (its own printer would spell out every row)."""
        printer.text(repr(self))

    @property
    def previous(self) -> tuple[date, date]:
        length = self.end - self.start + timedelta(days=1)
        return self.start - length, self.start - timedelta(days=1)

    def key_id(self, bucket: str) -> str:
        """How byApiKey names a key bucket: its directory id, else the bucket itself."""
        return f"key-{bucket[0]}" if bucket in self.owners else bucket


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    exact = draw(st.booleans())
    rows = draw(rows_strategy(1, 50, days=DAYS, spend=EXACT_SPEND if exact else NOISY_SPEND))
    page_size = draw(st.one_of(st.integers(1, 6), st.integers(1, 1000)))
    owners: dict[str, str] = {}
    if draw(st.booleans()):  # else no directory at all
        for key in HEX_KEYS:
            owner = draw(st.sampled_from((None, "alice", "ben")))
            if owner is not None:
                owners[key] = owner
    revoked = frozenset(draw(st.lists(st.sampled_from(sorted(owners)), unique=True)) if owners else [])
    # About the rows' days, give or take a day; a later start puts rows in the previous period.
    start = FIRST_DAY + timedelta(days=draw(st.integers(-1, 2)))
    end = max(start, FIRST_DAY + timedelta(days=len(DAYS) - 1 + draw(st.integers(-2, 1))))
    return Scenario(
        rows=rows,
        exact_spend=exact,
        page_size=page_size,
        owners=owners,
        revoked=revoked,
        start=start,
        end=end,
        metric=draw(st.sampled_from(OrderMetric)),
        first=draw(st.integers(1, 4)),
    )


@pytest.fixture(scope="module")
def litellm() -> Iterator[tuple[LiteLLMStore, str]]:
    """One LiteLLM for the module; each example puts its own rows in it."""
    store = LiteLLMStore(keys=LITELLM_KEYS, users=[], rows=[])
    with running_litellm(store) as url:
        yield store, url


# An example costs a LiteLLM fetch and dozens of GraphQL requests: no shrinking (it would take minutes);
# a failing example is reported as drawn, compactly (Scenario.__repr__), and replayed first next time.
examples = settings(
    max_examples=15,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@examples
@given(case=scenarios())
async def test_every_field_equals_sql_sums_over_the_rows(
    case: Scenario, litellm: tuple[LiteLLMStore, str], postgres_server: LocalPostgres, redis_url: str
) -> None:
    note(repr(case))  # the failure report leaves arguments out when it has not shrunk them
    store, litellm_url = litellm
    store.set_rows(case.rows)
    redis = Redis.from_url(redis_url)
    try:
        await redis.flushall()  # markers of an earlier example's days would lie about this database
    finally:
        await redis.aclose()
    clock = clock_at(long_after(max(case.end, FIRST_DAY + timedelta(days=len(DAYS)))))
    async with (
        fresh_database(postgres_server) as database_url,
        litellm_gateway(database_url, redis_url, litellm_url, clock=clock, page_size=case.page_size) as gw,
        UsageFromRows.over(database_url, case.rows, case.owners) as sql,
    ):
        await seed_directory(
            gw.db,
            DIRECTORY_USERS,
            [
                DirectoryKey(case.key_id(key), key, owner, revoked=key in case.revoked)
                for key, owner in case.owners.items()
            ],
        )
        whole = {"from": case.start.isoformat(), "to": case.end.isoformat()}
        body = await gw.query(QUERY, {"filter": whole})
        assert "errors" not in body, body["errors"]
        assert not body.get("extensions", {}).get("warnings"), body["extensions"]
        usage = body["data"]["usage"]
        groups = {dimension: await sql.groups(dimension, case.start, case.end) for dimension in FIELDS}
        await check_answer(case, usage, sql, groups)
        for order in (DEFAULT_ORDER, Order(case.metric, Direction.ASC), Order(case.metric, Direction.DESC)):
            await check_paging(gw, case, whole, order, groups)


async def check_answer(
    case: Scenario, usage: dict[str, Any], sql: UsageFromRows, groups: Mapping[Dimension, dict[str, GroupRow]]
) -> None:
    totals = await sql.totals(case.start, case.end)
    days = (case.end - case.start).days + 1
    unattributed = groups[Dimension.USER].get("unattributed")
    assert (usage["from"], usage["to"]) == (case.start.isoformat(), case.end.isoformat())
    assert_close(
        usage["freshness"],
        {
            "complete": True,
            "days": days,
            "closedDays": days,
            "openDays": [],
            "missingDays": [],
            "unverifiedDays": [],
            "unattributedSpend": 0.0 if unattributed is None else float(unattributed.totals.spend),
        },
        "freshness",
    )
    assert_close(usage["totals"], metrics(totals), "totals")
    assert_close(usage["previousPeriod"], metrics(await sql.totals(*case.previous)), "previousPeriod")
    assert_close(
        usage["timeSeries"],
        [
            {"date": day.isoformat(), "metrics": metrics(point)}
            for day, point in await sql.daily(case.start, case.end)
        ],
        "timeSeries",
    )

    def node_for(dimension: Dimension, group: GroupRow) -> dict[str, Any]:
        common = {"share": share(group.totals.spend, totals.spend), "metrics": metrics(group.totals)}
        last_active = None if group.last_active is None else group.last_active.isoformat()
        if dimension is Dimension.USER:
            person = next((u for u in DIRECTORY_USERS if u.id == group.key), None)
            user = None if person is None else {"id": person.id, "username": person.username}
            return {"userId": group.key, "lastActiveDate": last_active, "user": user, **common}
        if dimension is Dimension.MODEL:
            return {"model": group.key, "providers": list(group.related), **common}
        if dimension is Dimension.PROVIDER:
            return {"provider": group.key, "models": list(group.related), **common}
        owner = case.owners.get(group.key)
        return {
            "apiKeyId": case.key_id(group.key),
            "tokenHashPrefix": group.key[:12],
            "lastActiveDate": last_active,
            "apiKey": None
            if owner is None
            else {"id": case.key_id(group.key), "revoked": group.key in case.revoked, "user": {"id": owner}},
            "user": None if owner is None else {"id": owner},
            **common,
        }

    for dimension, (field, id_field, _) in FIELDS.items():
        connection = usage[field]
        expected = {
            node[id_field]: node for node in (node_for(dimension, g) for g in groups[dimension].values())
        }
        got = {node[id_field]: node for node in connection["nodes"]}
        assert len(got) == len(connection["nodes"]), f"{field}: a node twice"
        assert sorted(got) == sorted(expected), f"{field}: {sorted(got)} != {sorted(expected)}"
        for node_id, node in got.items():
            assert_close(node, expected[node_id], f"{field}[{node_id}]")
        assert connection["totalCount"] == len(expected)
        assert connection["pageInfo"]["hasNextPage"] is False
        assert_in_order(
            case, dimension, [node[id_field] for node in connection["nodes"]], DEFAULT_ORDER, groups
        )


async def check_paging(
    gw: Gateway,
    case: Scenario,
    whole: dict[str, str],
    order: Order,
    groups: Mapping[Dimension, dict[str, GroupRow]],
) -> None:
    """Page the four breakdowns together, ``case.first`` nodes at a time, checking every page."""
    variables: dict[str, Any] = {"filter": whole, "first": case.first}
    if order != DEFAULT_ORDER:
        variables["order"] = {"metric": order.metric.name, "direction": order.direction.name}
    seen: dict[Dimension, list[str]] = {dimension: [] for dimension in FIELDS}
    done: set[Dimension] = set()
    for _ in range(200):
        usage = (await gw.data(PAGE, variables))["usage"]
        for dimension, (field, id_field, after) in FIELDS.items():
            if dimension in done:
                continue
            connection = usage[field]
            nodes = [node[id_field] for node in connection["nodes"]]
            seen[dimension] += nodes
            info = connection["pageInfo"]
            assert connection["totalCount"] == len(groups[dimension]), (field, order)
            assert 0 < len(nodes) <= case.first or not groups[dimension], (field, order, nodes)
            assert info["hasNextPage"] == (len(seen[dimension]) < len(groups[dimension])), (field, order)
            assert (info["endCursor"] is None) == (not nodes), (field, order)
            variables[after] = info["endCursor"]
            if not info["hasNextPage"]:
                done.add(dimension)
        if len(done) == len(FIELDS):
            break
    else:
        raise AssertionError(f"paging {order} did not end")
    for dimension in FIELDS:
        assert_in_order(case, dimension, seen[dimension], order, groups)


def assert_in_order(
    case: Scenario,
    dimension: Dimension,
    node_ids: Sequence[str],
    order: Order,
    groups: Mapping[Dimension, dict[str, GroupRow]],
) -> None:
    """Every group once, by the metric in the direction, ties by the group key ascending.

    With noisy spends, groups whose spends differ by no more than rounding may come in either order: the
    gateway adds up the doubles LiteLLM summed, not the rows' exact values. Exact spends order strictly.
    """
    field = FIELDS[dimension][0]
    by_id = {
        case.key_id(key) if dimension is Dimension.API_KEY else key: g for key, g in groups[dimension].items()
    }
    assert len(set(node_ids)) == len(node_ids), f"{field} {order}: a node twice: {node_ids}"
    assert sorted(node_ids) == sorted(by_id), f"{field} {order}: {node_ids} != {sorted(by_id)}"
    for before, after in itertools.pairwise(node_ids):
        first, second = by_id[before], by_id[after]
        a, b = first.totals.metric(order.metric), second.totals.metric(order.metric)
        if order.metric is OrderMetric.SPEND and not case.exact_spend and _within_noise(a, b):
            continue
        if order.direction is Direction.DESC:
            a, b = b, a
        assert a < b or (a == b and first.key < second.key), (
            f"{field} {order}: {before} ({first.totals.metric(order.metric)}) before "
            f"{after} ({second.totals.metric(order.metric)})"
        )


def _within_noise(a: Decimal | int, b: Decimal | int) -> bool:
    """Equal up to 1e-9 relative, with an absolute floor of 1e-12."""
    scale = max(abs(Decimal(a)), abs(Decimal(b)))
    return abs(Decimal(a) - Decimal(b)) <= max(Decimal("1e-9") * scale, Decimal("1e-12"))


async def test_a_group_with_a_tiny_spend_pages_like_any_other(database_url: str, redis_url: str) -> None:
    """Any double LiteLLM holds is a spend: a cursor made after a group spending 1.2e-90 (an exact decimal
    of some hundred digits) must lead to the next page."""
    day = DAYS[0]
    rows = [
        make_row(
            day, "alice", HEX_KEYS[0], "tiny-model", "openai", spend=1.2345678901234567e-90, prompt_tokens=1
        ),
        make_row(day, "alice", HEX_KEYS[0], "gpt-4o", "openai", spend=1.0, prompt_tokens=1),
    ]
    variables = {
        "filter": {"from": day, "to": day},
        "first": 1,
        "order": {"metric": "SPEND", "direction": "ASC"},
    }
    store = LiteLLMStore(keys=[], users=[], rows=rows)
    with running_litellm(store) as url:
        async with litellm_gateway(database_url, redis_url, url, clock=clock_at(long_after(FIRST_DAY))) as gw:
            first = (await gw.data(PAGE, variables))["usage"]["byModel"]
            assert [node["model"] for node in first["nodes"]] == ["tiny-model"]
            second = await gw.data(PAGE, {**variables, "afterModel": first["pageInfo"]["endCursor"]})
            assert [node["model"] for node in second["usage"]["byModel"]["nodes"]] == ["gpt-4o"]
