"""Random LiteLLM tag rows (each request's cell copied once per tag it carries) → the compatible server →
the gateway's GraphQL API: every ``byTag`` node, and every field under ``tag:``, equals the sums of the
source rows exactly; several tags in one filter are refused, as are fields tag rows cannot answer."""

from __future__ import annotations

import asyncio
import csv
import io
from collections import defaultdict
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from tests.api_client import DirectoryKey, DirectoryUser, Gateway, seed_directory
from tests.gateway_harness import clock_at, long_after
from tests.usage_from_rows import fresh_database, litellm_gateway
from usage_gateway.devtools.litellm_compat import LiteLLMStore, running_litellm
from usage_gateway.devtools.local_services import LocalPostgres
from usage_gateway.resolvers.viewer import Role

DAYS = ("2026-11-16", "2026-11-17", "2026-11-18")
KEYS = tuple(f"{n:064x}" for n in (1, 2, 3))
TAGS = ("User-Agent:claude-code", "User-Agent:curl", "app:bot")
OWNERS = {KEYS[0]: "alice", KEYS[1]: "ben"}  # KEYS[2] is outside the directory: unattributed
KEY_IDS = {key: f"k{n}" for n, key in enumerate(OWNERS)}  # directory key ids
FILTER = {"from": DAYS[0], "to": DAYS[-1]}
M = "spend requests promptTokens totalTokens activeApiKeys"
QUERY = f"""
query ($filter: UsageFilter!) {{
  usage(filter: $filter) {{
    totals {{ {M} }}
    previousPeriod {{ requests }}
    timeSeries {{ date metrics {{ spend requests }} }}
    byTag(first: 50) {{ totalCount nodes {{ tag metrics {{ {M} }} }} }}
    byModel(first: 50) {{ nodes {{ model providers metrics {{ {M} }} }} }}
    byProvider(first: 50) {{ nodes {{ provider metrics {{ {M} }} }} }}
    byApiKey(first: 50) {{ nodes {{ apiKeyId metrics {{ {M} }} }} }}
    byUser(first: 50) {{ nodes {{ userId metrics {{ {M} }} }} }}
    freshness {{ complete days closedDays unverifiedDays }}
  }}
}}
"""

OWN = """
query ($filter: UsageFilter!) { usage(filter: $filter) { totals { requests } byUser { nodes { userId } } } }
"""
_REQUEST = st.fixed_dictionaries(
    {
        "date": st.sampled_from(DAYS),
        "api_key": st.sampled_from(KEYS),
        "model": st.sampled_from(["m1", "m2"]),
        "custom_llm_provider": st.sampled_from(["openai", "azure"]),
        "tags": st.sets(st.sampled_from(TAGS), min_size=1, max_size=3),
        "spend": st.integers(1, 10_000).map(lambda n: n / 10_000),
        "prompt_tokens": st.integers(0, 900),
        "completion_tokens": st.integers(0, 90),
        "api_requests": st.integers(1, 4),
    }
)


def tag_rows(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """LiteLLM's upsert: one row per (tag, date, key, model, provider), summing its requests."""
    cells: dict[tuple[str, ...], dict[str, Any]] = {}
    for request in requests:
        for tag in sorted(request["tags"]):
            cell = (
                tag,
                request["date"],
                request["api_key"],
                request["model"],
                request["custom_llm_provider"],
            )
            row = cells.setdefault(
                cell,
                {"tag": tag, **{k: v for k, v in request.items() if k != "tags"}, "spend": 0.0}
                | {"prompt_tokens": 0, "completion_tokens": 0, "api_requests": 0},
            )
            for column in ("spend", "prompt_tokens", "completion_tokens", "api_requests"):
                row[column] += request[column]
            row["successful_requests"] = row["api_requests"]
    return list(cells.values())


def _sums(rows: list[dict[str, Any]], key: Callable[[dict[str, Any]], str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"spend": Decimal(0), "requests": 0, "promptTokens": 0, "totalTokens": 0, "keys": set()}
    )
    for row in rows:
        found = out[key(row)]
        found["spend"] += Decimal(repr(row["spend"]))
        found["requests"] += row["api_requests"]
        found["promptTokens"] += row["prompt_tokens"]
        found["totalTokens"] += row["prompt_tokens"] + row["completion_tokens"]
        found["keys"].add(row["api_key"])
    return out


def _same(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert abs(Decimal(repr(got["spend"])) - want["spend"]) <= Decimal("1e-9") * max(1, want["spend"])
    assert (got["requests"], got["promptTokens"], got["totalTokens"]) == (
        want["requests"],
        want["promptTokens"],
        want["totalTokens"],
    )
    assert got["activeApiKeys"] == len(want["keys"])


def _nodes(data: dict[str, Any], field: str, key: str) -> dict[str, dict[str, Any]]:
    return {node[key]: node["metrics"] for node in data["usage"][field]["nodes"]}


def _check(data: dict[str, Any], rows: list[dict[str, Any]], tag: str | None) -> None:
    picked = [row for row in rows if tag is None or row["tag"] == tag]
    by_tag = _sums(rows, lambda r: r["tag"])
    assert _nodes(data, "byTag", "tag").keys() == ({tag} & by_tag.keys() if tag else by_tag.keys())
    for name, got in _nodes(data, "byTag", "tag").items():
        _same(got, by_tag[name])
    if tag is None:
        return  # the untagged fields are the user rows' (none here), never the tags' sum
    whole = _sums(picked, lambda r: "all")
    if picked:
        _same(data["usage"]["totals"], whole["all"])
    else:
        assert data["usage"]["totals"]["requests"] == 0
    for field, key, of in (
        ("byModel", "model", lambda r: r["model"]),
        ("byProvider", "provider", lambda r: r["custom_llm_provider"]),
        ("byApiKey", "apiKeyId", lambda r: KEY_IDS.get(r["api_key"], r["api_key"])),
        ("byUser", "userId", lambda r: OWNERS.get(r["api_key"], "unattributed")),
    ):
        want = _sums(picked, of)
        got = _nodes(data, field, key)
        assert got.keys() == want.keys(), field
        for name, metrics in got.items():
            _same(metrics, want[name])
    days = _sums(picked, lambda r: r["date"])
    for point in data["usage"]["timeSeries"]:
        assert point["metrics"]["requests"] == days.get(point["date"], {"requests": 0})["requests"]
    assert data["usage"]["freshness"]["complete"] is True
    assert data["usage"]["freshness"]["closedDays"] == len(DAYS)


EXPORT = """
mutation ($filter: UsageFilter!) {
  exportUsage(filter: $filter, format: CSV, groupBy: [TAG, MODEL]) { status rowCount downloadUrl }
}
"""


async def _check_export(gw: Gateway, rows: list[dict[str, Any]], tag: str | None) -> None:
    """A CSV export grouped by TAG and MODEL holds each (tag, model)'s sums of the rows."""
    variables = {"filter": FILTER if tag is None else {**FILTER, "tag": tag}}
    export = (await gw.data(EXPORT, variables))["exportUsage"]
    assert export["status"] == "DONE"
    response = await gw.client.get(httpx.URL(export["downloadUrl"]).raw_path.decode())
    assert response.status_code == 200, response.text
    got = {
        (line["tag"], line["model"]): (Decimal(line["spend"]), int(line["requests"]))
        for line in csv.DictReader(io.StringIO(response.text))
    }
    want = _sums([r for r in rows if tag is None or r["tag"] == tag], lambda r: f"{r['tag']}\t{r['model']}")
    assert got.keys() == {tuple(key.split("\t")) for key in want}
    for key, (spend, requests) in got.items():
        expected = want["\t".join(key)]
        assert requests == expected["requests"]
        assert abs(spend - expected["spend"]) <= Decimal("1e-9")


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=(Phase.explicit, Phase.reuse, Phase.generate),  # a shrink costs a gateway per step
)
@given(requests=st.lists(_REQUEST, min_size=1, max_size=15), tag=st.sampled_from((*TAGS, None)))
def test_by_tag_and_tag_filter_equal_the_rows(
    requests: list[dict[str, Any]], tag: str | None, postgres_server: LocalPostgres, redis_url: str
) -> None:
    rows = tag_rows(requests)
    store = LiteLLMStore(keys=[], users=[], rows=[], tag_rows=rows)

    async def run() -> None:
        redis = Redis.from_url(redis_url)
        try:
            await redis.flushall()  # markers of an earlier example's days would lie about this database
        finally:
            await redis.aclose()
        async with fresh_database(postgres_server) as url:
            with running_litellm(store) as litellm_url:
                clock = clock_at(long_after(date.fromisoformat(DAYS[-1])))
                async with litellm_gateway(url, redis_url, litellm_url, clock=clock) as gw:
                    await seed_directory(
                        gw.db,
                        [DirectoryUser("alice"), DirectoryUser("ben")],
                        [DirectoryKey(KEY_IDS[key], key, owner) for key, owner in OWNERS.items()],
                    )
                    variables = {"filter": FILTER if tag is None else {**FILTER, "tag": tag}}
                    _check(await gw.data(QUERY, variables), rows, tag)
                    await _check_export(gw, rows, tag)
                    if tag is not None:  # a plain user sees the tag's usage of their own keys only
                        mine = [r for r in rows if r["tag"] == tag and OWNERS.get(r["api_key"]) == "alice"]
                        own = await gw.data(OWN, variables, token=gw.token("alice", Role.USER))
                        assert own["usage"]["totals"]["requests"] == sum(r["api_requests"] for r in mine)
                        assert {n["userId"] for n in own["usage"]["byUser"]["nodes"]} <= {"alice"}

    asyncio.run(run())


async def test_several_tags_and_what_tag_rows_lack_are_refused(
    postgres_server: LocalPostgres, redis_url: str
) -> None:
    store = LiteLLMStore(keys=[], users=[], rows=[], tag_rows=[])
    async with fresh_database(postgres_server) as url:
        with running_litellm(store) as litellm_url:
            clock = clock_at(long_after(date.fromisoformat(DAYS[-1])))
            async with litellm_gateway(url, redis_url, litellm_url, clock=clock) as gw:
                several = await gw.query(
                    "query ($f: UsageFilter!) { usage(filter: $f) { totals { spend } } }",
                    {"f": {**FILTER, "tag": "User-Agent:curl,app:bot"}},
                )
                assert several["data"] is None
                assert several["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
                assert "twice" in several["errors"][0]["message"]
                groups = await gw.query(
                    "query ($f: UsageFilter!) { usage(filter: $f) { byModelGroup { totalCount } } }",
                    {"f": {**FILTER, "tag": "app:bot"}},
                )
                assert groups["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
                assert "model groups" in groups["errors"][0]["message"]
                assert store.requests_for("/tag/daily/activity/aggregated") == []
