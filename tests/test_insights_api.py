"""``Usage.anomalies`` and ``Usage.movers`` through GraphQL: one case each end to end, the ``user`` role's
scope, and arguments refused before anything runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.api_client import (
    DirectoryKey,
    DirectoryUser,
    Gateway,
    open_gateway,
    seed_days,
    seed_directory,
    token_hash,
)
from tests.facts_data import Fact, make_fact, replace_facts
from usage_gateway.resolvers.viewer import Role

START = date(2025, 6, 2)  # the range: a week
END = START + timedelta(days=6)
SPIKE = START + timedelta(days=3)
FIRST_STORED = START - timedelta(days=28)  # the baselines' first day (and before the previous period)
KEY_A, KEY_B = token_hash("key-a"), token_hash("key-b")
F = {"from": START.isoformat(), "to": END.isoformat()}

ANOMALIES = """query($f: UsageFilter!, $d: AnomalyDimension!, $first: Int!, $after: String, $min: Float,
    $m: AnomalyMetric) {
  usage(filter: $f) {
    anomalies(dimension: $d, first: $first, after: $after, minSpend: $min, metric: $m) {
      totalCount complete skippedDays pageInfo { hasNextPage endCursor }
      nodes { dimension id name date metric value baseline mad spread threshold size baselineDays
              spend spendExact requests failedRequests
              filter { from to userIds apiKeyIds models teamIds providers } }
    }
  }
}"""
MOVERS = """query($f: UsageFilter!, $d: MoverDimension!, $first: Int!, $after: String, $m: UsageMetric!) {
  usage(filter: $f) {
    movers(dimension: $d, first: $first, after: $after, metric: $m) {
      totalCount pageInfo { hasNextPage endCursor }
      nodes { dimension id name metric current previous change changeRelative status
              currentExact previousExact changeExact }
    }
  }
}"""


def history() -> list[Fact]:
    """alice spends 10, 11, 12, … a day on key-a throughout, 100 on SPIKE; bob 5 a day on key-b until the
    range starts, then nothing; carol (no key of her own) starts on the range's first day."""
    rows = []
    for n in range((END - FIRST_STORED).days + 1):
        day = FIRST_STORED + timedelta(days=n)
        rows.append(
            make_fact(day, user_id="alice", api_key=KEY_A, spend=Decimal(100 if day == SPIKE else 10 + n % 3))
        )
        if day < START:
            rows.append(make_fact(day, user_id="bob", api_key=KEY_B, model="claude-3", spend="5"))
        else:
            rows.append(make_fact(day, user_id="carol", api_key="raw:carol", spend="2.5"))
    return rows


@pytest.fixture
async def gw(database_url: str, redis_url: str) -> AsyncIterator[Gateway]:
    async with open_gateway(database_url, redis_url) as gateway:
        await seed_directory(
            gateway.db,
            [DirectoryUser("alice", username="Alice A"), DirectoryUser("bob", email="bob@example.test")],
            [DirectoryKey("key-a", KEY_A, "alice", name="alice's key"), DirectoryKey("key-b", KEY_B, "bob")],
        )
        await replace_facts(gateway.db, history())
        await seed_days(gateway.db, FIRST_STORED, END)
        yield gateway


def variables(dimension: str, **more: Any) -> dict[str, Any]:
    return {"f": F, "d": dimension, "first": 50, **more}


async def test_a_spike_is_listed_with_its_baseline_and_a_filter_that_shows_it(gw: Gateway) -> None:
    data = await gw.data(ANOMALIES, variables("API_KEY"))
    found = data["usage"]["anomalies"]
    assert (found["totalCount"], found["complete"], found["skippedDays"]) == (1, True, [])
    (node,) = found["nodes"]
    # The 28 days before SPIKE: 10, 11, 12 repeating from FIRST_STORED: median 11, MAD 1, floored at $1.
    assert node == {
        "dimension": "API_KEY",
        "id": "key-a",
        "name": "alice's key",
        "date": SPIKE.isoformat(),
        "metric": "SPEND",
        "value": 100.0,
        "baseline": 11.0,
        "mad": 1.0,
        "spread": 1.0,
        "threshold": 16.0,
        "size": 89.0,
        "baselineDays": 28,
        "spend": 100.0,
        "spendExact": "100",
        "requests": 1,
        "failedRequests": 0,
        "filter": {
            "from": SPIKE.isoformat(),
            "to": SPIKE.isoformat(),
            "userIds": None,
            "apiKeyIds": ["key-a"],
            "models": None,
            "teamIds": None,
            "providers": None,
        },
    }
    # The link is a UsageFilter: it shows that key on that day, with the anomaly's spend.
    link = {k: v for k, v in node["filter"].items() if v is not None}
    totals = await gw.data("query($f: UsageFilter!) { usage(filter: $f) { totals { spend } } }", {"f": link})
    assert totals["usage"]["totals"]["spend"] == node["spend"]
    # By user, the same day is alice's, named; minSpend above it and FAILURE_RATE leave it out.
    users = (await gw.data(ANOMALIES, variables("USER")))["usage"]["anomalies"]["nodes"]
    assert [(n["id"], n["name"], n["filter"]["userIds"]) for n in users] == [("alice", "Alice A", ["alice"])]
    for more in ({"min": 100.5}, {"m": "FAILURE_RATE"}):
        assert (await gw.data(ANOMALIES, variables("USER", **more)))["usage"]["anomalies"]["totalCount"] == 0


async def test_an_open_day_in_the_range_is_skipped_and_said_so(gw: Gateway) -> None:
    await gw.db.execute("UPDATE usage_days SET status = 'open' WHERE date = %s", (SPIKE,))
    found = (await gw.data(ANOMALIES, variables("USER")))["usage"]["anomalies"]
    assert (found["totalCount"], found["complete"], found["skippedDays"]) == (0, False, [SPIKE.isoformat()])


async def test_movers_mark_new_and_vanished_and_page_by_the_size_of_the_change(gw: Gateway) -> None:
    data = await gw.data(MOVERS, variables("USER", first=2, m="SPEND"))
    movers = data["usage"]["movers"]
    # alice: 7 days this week (with the spike) against the 7 before; bob 35 → 0; carol 0 → 17.5.
    alice_now = sum(Decimal(100 if d == 3 else 10 + (28 + d) % 3) for d in range(7))
    alice_before = sum(Decimal(10 + (21 + d) % 3) for d in range(7))
    assert movers["totalCount"] == 3
    assert movers["pageInfo"]["hasNextPage"] is True
    assert [(n["id"], n["name"], n["status"], n["changeExact"]) for n in movers["nodes"]] == [
        ("alice", "Alice A", "CHANGED", str(alice_now - alice_before)),
        ("bob", "bob@example.test", "VANISHED", "-35"),
    ]
    assert movers["nodes"][1]["changeRelative"] == -1.0
    rest = await gw.data(MOVERS, variables("USER", first=2, m="SPEND", after=movers["pageInfo"]["endCursor"]))
    (carol,) = rest["usage"]["movers"]["nodes"]
    assert carol == {
        "dimension": "USER",
        "id": "carol",
        "name": None,
        "metric": "SPEND",
        "current": 17.5,
        "previous": 0.0,
        "change": 17.5,
        "changeRelative": None,
        "status": "NEW",
        "currentExact": "17.5",
        "previousExact": "0",
        "changeExact": "17.5",
    }
    # Equal to the two periods' byUser, through the API.
    by_user = (
        "query($f: UsageFilter!) { usage(filter: $f) { byUser { nodes { userId metrics { requests } } } } }"
    )
    before = {"from": (START - timedelta(days=7)).isoformat(), "to": (START - timedelta(days=1)).isoformat()}
    counts = []
    for period in (F, before):
        nodes = (await gw.data(by_user, {"f": period}))["usage"]["byUser"]["nodes"]
        counts.append({n["userId"]: n["metrics"]["requests"] for n in nodes})
    requests = await gw.data(MOVERS, variables("USER", m="REQUESTS"))
    assert {n["id"]: (n["current"], n["previous"]) for n in requests["usage"]["movers"]["nodes"]} == {
        user: (counts[0].get(user, 0), counts[1].get(user, 0)) for user in {*counts[0], *counts[1]}
    }
    assert all(n["currentExact"] is None for n in requests["usage"]["movers"]["nodes"])


async def test_a_user_sees_only_their_own_anomalies_and_movers(gw: Gateway) -> None:
    bob = gw.token("bob", Role.USER)
    alice = gw.token("alice", Role.USER)
    assert (await gw.data(ANOMALIES, variables("USER"), token=bob))["usage"]["anomalies"]["nodes"] == []
    # By model, bob's usage alone: claude-3 vanished, and alice's gpt-4o (and its spike) is not there.
    models = await gw.data(ANOMALIES, variables("MODEL"), token=bob)
    assert models["usage"]["anomalies"]["totalCount"] == 0
    movers = await gw.data(MOVERS, variables("MODEL", m="SPEND"), token=bob)
    assert [(n["id"], n["status"]) for n in movers["usage"]["movers"]["nodes"]] == [("claude-3", "VANISHED")]
    users = await gw.data(MOVERS, variables("USER", m="SPEND"), token=alice)
    assert [n["id"] for n in users["usage"]["movers"]["nodes"]] == ["alice"]
    mine = await gw.data(ANOMALIES, variables("MODEL"), token=alice)
    assert [(n["id"], n["filter"]["userIds"]) for n in mine["usage"]["anomalies"]["nodes"]] == [
        ("gpt-4o", ["alice"])
    ]


@pytest.mark.parametrize(
    ("query", "more", "message"),
    [
        (ANOMALIES, {"d": "USER", "first": 501}, "`first` must be between 0 and 500"),
        (ANOMALIES, {"d": "USER", "min": -1.0}, "`minSpend` must be"),
        (ANOMALIES, {"d": "USER", "after": "bm90IGEgY3Vyc29y"}, "`after` is not a cursor"),
        (ANOMALIES, {"d": "USER", "f": {**F, "tag": "User-Agent:curl"}}, "under a `tag` filter"),
        (ANOMALIES, {"d": "USER", "f": {"from": "0001-01-05", "to": "0001-01-06"}}, "days before `from`"),
        (MOVERS, {"d": "USER", "m": "SPEND", "first": -1}, "`first` must be between 0 and 500"),
        (MOVERS, {"d": "USER", "m": "SPEND", "f": {"from": "0001-01-01", "to": "0001-01-02"}}, "no previous"),
        (MOVERS, {"d": "MODEL", "m": "SPEND", "after": "eyJjIjoibW92ZXJzIn0"}, "`after` is not a cursor"),
    ],
)
async def test_bad_arguments_are_refused_before_anything_runs(
    gw: Gateway, query: str, more: dict[str, Any], message: str
) -> None:
    # Had the field run, the baseline days (not stored, and no LiteLLM here) would be reported missing.
    await gw.db.execute("DELETE FROM usage_days WHERE date < %s", (START,))
    body = await gw.query(query, {**variables("USER"), **more})
    assert body["data"] is None
    assert [(e["extensions"]["code"], message in e["message"]) for e in body["errors"]] == [
        ("BAD_USER_INPUT", True)
    ]


async def test_a_cursor_of_another_dimension_is_refused(gw: Gateway) -> None:
    first = await gw.data(MOVERS, variables("USER", first=1, m="SPEND"))
    cursor = first["usage"]["movers"]["pageInfo"]["endCursor"]
    body = await gw.query(MOVERS, variables("MODEL", first=1, m="SPEND", after=cursor))
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    anomalies = await gw.data(ANOMALIES, variables("USER", first=1))
    cursor = anomalies["usage"]["anomalies"]["pageInfo"]["endCursor"]
    assert cursor is not None
    body = await gw.query(ANOMALIES, variables("API_KEY", first=1, after=cursor))
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    # And on its own connection it pages on: nothing after the only anomaly.
    rest = await gw.data(ANOMALIES, variables("USER", first=1, after=cursor))
    assert rest["usage"]["anomalies"]["nodes"] == []


async def test_anomalies_page_through_in_order(gw: Gateway) -> None:
    """dave, steady at 10 a day, spends 50, 80 and 120 on three days of the range: with alice's spike, four
    anomalies, the same one by one through the cursors as all at once, by size descending."""
    spikes = {START: 50, START + timedelta(days=1): 120, START + timedelta(days=5): 80}
    dave = [
        make_fact(FIRST_STORED + timedelta(days=n), user_id="dave", api_key="raw:dave", model="claude-3")
        for n in range((END - FIRST_STORED).days + 1)
    ]
    dave = [replace(fact, spend=Decimal(spikes.get(fact.date, 10))) for fact in dave]
    await replace_facts(gw.db, [*history(), *dave])
    whole = (await gw.data(ANOMALIES, variables("USER")))["usage"]["anomalies"]
    # dave's spread grows with his own spikes (the mean absolute deviation): 1, then 40/28, then 150/28.
    assert [(n["id"], n["value"], n["spread"]) for n in whole["nodes"]] == [
        ("alice", 100.0, 1.0),
        ("dave", 120.0, 40 / 28),
        ("dave", 50.0, 1.0),
        ("dave", 80.0, 150 / 28),
    ]
    seen, after = [], None
    while True:
        page = (await gw.data(ANOMALIES, variables("USER", first=1, after=after)))["usage"]["anomalies"]
        assert page["totalCount"] == 4
        seen += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == whole["nodes"]
