"""Teams end to end: LiteLLM rows → the LiteLLM-compatible server → the gateway's GraphQL API.

For random rows and random key → team histories (a key in one team, then another from some day on, or
in none), every ``byTeam`` node and every field asked under ``teamIds:`` equals sums computed here in
Python straight from the rows, and the teams sum to the totals. A key moved by ``syncDirectory`` keeps
its earlier usage under its earlier team. A plain user sees their own teams, and only their own usage.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import MAX_PREC, Decimal, localcontext
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from tests.api_client import DirectoryKey, DirectoryUser, Gateway, seed_directory
from tests.gateway_harness import clock_at, long_after
from tests.litellm_rows import API_KEYS, EXACT_SPEND, NOISY_SPEND, Row, make_row, rows_strategy
from tests.usage_from_rows import fresh_database, litellm_gateway
from usage_gateway.devtools.litellm_compat import LiteLLMStore, running_litellm
from usage_gateway.devtools.local_services import LocalPostgres
from usage_gateway.resolvers.viewer import Role

FIRST_DAY = date(2026, 11, 16)
DAYS = tuple((FIRST_DAY + timedelta(days=n)).isoformat() for n in range(5))
LAST_DAY = FIRST_DAY + timedelta(days=len(DAYS) - 1)
HEX_KEYS = tuple(key for key in API_KEYS if key)
TEAMS = ("team-red", "team-blue", "team-gone")
ALIASES = {"team-red": "Red", "team-blue": "Blue", "team-gone": "Gone"}
OWNERS = ("alice", "ben")
NO_TEAM = "no-team"

# Summed per group: (GraphQL metric, row column).
SUMMED = (
    ("requests", "api_requests"),
    ("promptTokens", "prompt_tokens"),
    ("completionTokens", "completion_tokens"),
)
NODE = "teamId teamAlias deleted metrics { spendExact requests promptTokens completionTokens }"
TOP = "share topUsers(first: 10) { userId metrics { spendExact } }"
QUERY = f"""
query ($from: Date!, $to: Date!, $teams: [ID!]) {{
  all: usage(filter: {{from: $from, to: $to}}) {{
    totals {{ spendExact requests promptTokens completionTokens }}
    byTeam(first: 500) {{ totalCount nodes {{ {NODE} {TOP} }} }}
  }}
  some: usage(filter: {{from: $from, to: $to, teamIds: $teams}}) {{
    totals {{ spendExact requests promptTokens completionTokens }}
    byTeam(first: 500) {{ nodes {{ teamId metrics {{ spendExact requests }} }} }}
    byUser(first: 500) {{ nodes {{ userId metrics {{ spendExact requests }} }} }}
    byModel(first: 500) {{ nodes {{ model metrics {{ spendExact requests }} }} }}
    timeSeries {{ date metrics {{ spendExact requests }} }}
  }}
}}
"""


@dataclass(frozen=True)
class History:
    """A key's team from ``-infinity`` (``first``), and from ``moved_on`` on (``then``), if it moved."""

    first: str | None
    moved_on: date | None = None
    then: str | None = None

    def team_on(self, day: date) -> str:
        team = self.then if self.moved_on is not None and day >= self.moved_on else self.first
        return team or NO_TEAM


@dataclass(frozen=True)
class Scenario:
    rows: list[Row]
    owners: dict[str, str]
    histories: dict[str, History]
    chosen: tuple[str, ...]  # the teamIds of the filtered half
    # Every spend a multiple of 1/1024: LiteLLM's own double sums (of rows it merges into one cell) are
    # then exact too, and so is every comparison. Else spends compare to 1e-9 relative (counters exactly).
    exact_spend: bool

    def __repr__(self) -> str:
        rows = "".join(
            f"\n  {r['date']} key={r['api_key'][:4]!r} model={r['model']!r} spend={r['spend']!r}"
            f" requests={r['api_requests']}"
            for r in sorted(self.rows, key=lambda r: (r["date"], r["id"]))
        )
        histories = {key[:4]: h for key, h in self.histories.items()}
        return f"Scenario(owners={self.owners}, histories={histories}, chosen={self.chosen}, rows:{rows})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def team_of(self, row: Row) -> str:
        history = self.histories.get(row["api_key"])
        return NO_TEAM if history is None else history.team_on(date.fromisoformat(row["date"]))

    def user_of(self, row: Row) -> str:
        if not row["api_key"]:
            return "unattributed"
        return self.owners[row["api_key"]]


@st.composite
def histories(draw: st.DrawFn) -> History:
    first = draw(st.sampled_from((None, *TEAMS)))
    if not draw(st.booleans()):
        return History(first)
    moved_on = FIRST_DAY + timedelta(days=draw(st.integers(0, len(DAYS))))
    return History(first, moved_on, draw(st.sampled_from((None, *TEAMS))))


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    exact = draw(st.booleans())
    rows = draw(rows_strategy(1, 40, days=DAYS, spend=EXACT_SPEND if exact else NOISY_SPEND))
    owners = {key: draw(st.sampled_from(OWNERS)) for key in HEX_KEYS}
    keyed = draw(st.lists(st.sampled_from(HEX_KEYS), unique=True))  # the others stay without a team
    chosen = draw(st.lists(st.sampled_from((NO_TEAM, *TEAMS)), min_size=1, max_size=3, unique=True))
    return Scenario(rows, owners, {key: draw(histories()) for key in keyed}, tuple(sorted(chosen)), exact)


@pytest.fixture(scope="module")
def litellm() -> Iterator[tuple[LiteLLMStore, str]]:
    store = LiteLLMStore(keys=[], users=[], rows=[])
    with running_litellm(store) as url:
        yield store, url


def _spend(row: Row) -> Decimal:
    return Decimal(repr(float(row["spend"])))


def _sums(rows: Sequence[Row], group: Any) -> dict[str, dict[str, Any]]:
    """Per group: exact spend and the counters; groups whose every number is zero hold no fact."""
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {"spend": Decimal(0), **{m: 0 for m, _ in SUMMED}})
    with localcontext(prec=MAX_PREC):  # exact: a sum of doubles' decimals never rounds here
        for row in rows:
            sums = out[group(row)]
            sums["spend"] += _spend(row)
            for metric, column in SUMMED:
                sums[metric] += int(row[column] or 0)
    return {key: sums for key, sums in out.items() if sums["spend"] or any(sums[m] for m, _ in SUMMED)}


def _got(node: Mapping[str, Any]) -> dict[str, Any]:
    found = node.get("metrics", node)  # a node, or a metrics object itself
    return {"spend": Decimal(found["spendExact"]), **{m: found[m] for m, _ in SUMMED if m in found}}


def _same(got: Mapping[str, Any], expected: Mapping[str, Any], exact: bool) -> bool:
    """Equal groups and counters; spends equal, or with noisy doubles within 1e-9 relative."""
    if got.keys() != expected.keys():
        return False
    for key, sums in expected.items():
        mine = dict(got[key])
        if mine.keys() != sums.keys():
            return False
        spend, want = mine.pop("spend"), sums["spend"]
        if {k: v for k, v in sums.items() if k != "spend"} != mine:
            return False
        if spend != want and (exact or abs(spend - want) > Decimal("1e-9") * max(abs(want), Decimal(1))):
            return False
    return True


def _only(expected: Mapping[str, dict[str, Any]], *names: str) -> dict[str, dict[str, Any]]:
    return {key: {name: sums[name] for name in names} for key, sums in expected.items()}


async def _seed(gw: Gateway, case: Scenario) -> None:
    """The directory with each key's team history as the triggers keep it (a move is a dated row)."""
    await seed_directory(
        gw.db,
        [DirectoryUser(owner) for owner in OWNERS],
        [DirectoryKey(f"key-{key[0]}", key, owner) for key, owner in case.owners.items()],
    )
    await gw.db.execute("INSERT INTO teams (id, alias) SELECT unnest(%s::text[]), unnest(%s::text[])",
                        (list(ALIASES), list(ALIASES.values())))  # fmt: skip
    await gw.db.execute("UPDATE teams SET deleted_at = now() WHERE id = 'team-gone'")
    for key, history in case.histories.items():
        await gw.db.execute(
            "UPDATE api_key_teams SET team_id = %s WHERE token_hash = %s", (history.first, key)
        )
        if history.moved_on is not None:
            await gw.db.execute(
                "INSERT INTO api_key_teams (token_hash, valid_from, team_id) VALUES (%s, %s, %s)",
                (key, history.moved_on, history.then),
            )


examples = settings(
    max_examples=12,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@examples
@given(case=scenarios())
async def test_teams_equal_the_rows_and_sum_to_the_totals(
    case: Scenario, litellm: tuple[LiteLLMStore, str], postgres_server: LocalPostgres, redis_url: str
) -> None:
    note(repr(case))
    store, litellm_url = litellm
    store.set_rows(case.rows)
    redis = Redis.from_url(redis_url)
    try:
        await redis.flushall()
    finally:
        await redis.aclose()
    clock = clock_at(long_after(LAST_DAY))
    async with (
        fresh_database(postgres_server) as database_url,
        litellm_gateway(database_url, redis_url, litellm_url, clock=clock) as gw,
    ):
        await _seed(gw, case)  # before the days are read: each fact gets its key's team on its day
        whole = {"from": FIRST_DAY.isoformat(), "to": LAST_DAY.isoformat()}
        data = await gw.data(QUERY, {**whole, "teams": list(case.chosen)})

    everything = _sums(case.rows, lambda row: "all")
    by_team = _sums(case.rows, case.team_of)
    nodes = data["all"]["byTeam"]["nodes"]
    exact = case.exact_spend
    got_teams = {node["teamId"]: _got(node) for node in nodes}
    assert _same(got_teams, by_team, exact), (got_teams, by_team)
    assert data["all"]["byTeam"]["totalCount"] == len(by_team)
    assert {node["teamId"]: (node["teamAlias"], node["deleted"]) for node in nodes} == {
        team: (ALIASES.get(team), team == "team-gone") for team in by_team
    }
    # The teams partition the facts: they sum to the totals, exactly.
    totals = _got(data["all"]["totals"])
    zero_all = {"all": {"spend": Decimal(0), **{m: 0 for m, _ in SUMMED}}}
    assert _same({"all": totals}, everything or zero_all, exact)
    with localcontext(prec=MAX_PREC):
        assert sum((_got(node)["spend"] for node in nodes), Decimal(0)) == totals["spend"]
    assert sum(_got(node)["requests"] for node in nodes) == totals["requests"]
    for node in nodes:
        own = [row for row in case.rows if case.team_of(row) == node["teamId"]]
        expected_users = _only(_sums(own, case.user_of), "spend")
        assert _same({u["userId"]: _got(u) for u in node["topUsers"]}, expected_users, exact)

    inside = [row for row in case.rows if case.team_of(row) in case.chosen]
    some = data["some"]
    assert _same({"all": _got(some["totals"])}, _sums(inside, lambda row: "all") or zero_all, exact)
    by: dict[str, tuple[str, Any]] = {
        "byTeam": ("teamId", case.team_of),
        "byUser": ("userId", case.user_of),
        "byModel": ("model", lambda row: row["model"] or "unknown-model"),
    }
    for field, (name, group) in by.items():
        got = {n[name]: _got(n) for n in some[field]["nodes"]}
        assert _same(got, _only(_sums(inside, group), "spend", "requests"), exact), field
    daily = _only(_sums(inside, lambda row: row["date"]), "spend", "requests")
    zero = {"spend": Decimal(0), "requests": 0}
    got_days = {p["date"]: _got(p) for p in some["timeSeries"]}
    assert _same(got_days, {day: daily.get(day, zero) for day in DAYS}, exact)


MOVE_QUERY = """
query ($filter: UsageFilter!) {
  usage(filter: $filter) { byTeam(first: 10) { nodes { teamId teamAlias deleted metrics { spendExact } } } }
}
"""


async def test_a_key_moved_by_sync_keeps_its_earlier_usage_under_its_earlier_team(
    postgres_server: LocalPostgres, redis_url: str
) -> None:
    """Days before the move stay with the old team, today's go to the new one; a team LiteLLM deleted
    keeps its alias; a plain user sees their own teams but naming another team is FORBIDDEN."""
    key, other = HEX_KEYS[0], HEX_KEYS[1]
    old_days = (date(2026, 11, 1), date(2026, 11, 2))
    today = date.today()
    rows = [
        make_row(day.isoformat(), "alice", k, "gpt-4o", "openai", spend=spend, successful_requests=1)
        for day in (*old_days, today)
        for k, spend in ((key, 1.5), (other, 0.25))
    ]
    litellm_keys = [
        {"token": key, "raw_key": "sk-moving", "key_alias": "moving", "user_id": "alice", "team_id": "t-old"},
        {"token": other, "raw_key": "sk-other", "key_alias": "other", "user_id": "bob", "team_id": "t-bob"},
    ]
    users = [{"user_id": "alice", "user_alias": "Alice"}, {"user_id": "bob", "user_alias": "Bob"}]
    teams = [{"team_id": "t-old", "team_alias": "Old"}, {"team_id": "t-bob", "team_alias": "Bob's"}]
    store = LiteLLMStore(keys=litellm_keys, users=users, rows=rows)
    store.set_teams(teams)
    sync = "mutation { syncDirectory { teamsCreated teamsUpdated teamsDeleted apiKeysUpdated } }"
    with running_litellm(store) as litellm_url:
        async with (
            fresh_database(postgres_server) as database_url,
            litellm_gateway(database_url, redis_url, litellm_url, clock=clock_at(long_after(today))) as gw,
        ):
            assert (await gw.data(sync))["syncDirectory"] == {
                "teamsCreated": 2, "teamsUpdated": 0, "teamsDeleted": 0, "apiKeysUpdated": 0
            }  # fmt: skip
            window = {"from": old_days[0].isoformat(), "to": today.isoformat()}
            before = await gw.data(MOVE_QUERY, {"filter": window})
            assert {n["teamId"]: n["metrics"]["spendExact"] for n in before["usage"]["byTeam"]["nodes"]} == {
                "t-old": "4.5", "t-bob": "0.75"
            }  # fmt: skip

            # LiteLLM moves the key to a new team and deletes the old one.
            store.set_keys([{**litellm_keys[0], "team_id": "t-new"}, litellm_keys[1]])
            store.set_teams([teams[1], {"team_id": "t-new", "team_alias": "New"}])
            assert (await gw.data(sync))["syncDirectory"] == {
                "teamsCreated": 1, "teamsUpdated": 0, "teamsDeleted": 1, "apiKeysUpdated": 1
            }  # fmt: skip
            after = await gw.data(MOVE_QUERY, {"filter": window})
            assert {
                n["teamId"]: (n["teamAlias"], n["deleted"], n["metrics"]["spendExact"])
                for n in after["usage"]["byTeam"]["nodes"]
            } == {
                "t-old": ("Old", True, "3"),  # the two days before the move
                "t-new": ("New", False, "1.5"),  # today
                "t-bob": ("Bob's", False, "0.75"),
            }

            alice = gw.token("alice", Role.USER)
            options = await gw.data(
                "query ($from: Date!, $to: Date!) {"
                " filterOptions(from: $from, to: $to) { teams { id alias } } }",
                {"from": window["from"], "to": window["to"]},
                token=alice,
            )
            assert options["filterOptions"]["teams"] == [
                {"id": "t-new", "alias": "New"}, {"id": "t-old", "alias": "Old"}
            ]  # fmt: skip
            cascade = await gw.data(
                "query ($from: Date!, $to: Date!, $teams: [ID!]) { all: filterOptions(from: $from, to: $to)"
                " { apiKeys { keyAlias } } some: filterOptions(from: $from, to: $to, teamIds: $teams)"
                " { apiKeys { keyAlias } teams { id } } }",
                {"from": window["from"], "to": window["to"], "teams": ["t-bob"]},
            )
            assert [k["keyAlias"] for k in cascade["all"]["apiKeys"]] == ["moving", "other"]
            assert [k["keyAlias"] for k in cascade["some"]["apiKeys"]] == ["other"]  # keys cascade from teams
            assert [t["id"] for t in cascade["some"]["teams"]] == ["t-bob", "t-new", "t-old"]  # teams do not
            refused_options = await gw.query(
                'query ($from: Date!, $to: Date!) { filterOptions(from: $from, to: $to, teamIds: ["t-bob"])'
                " { apiKeys { id } } }",
                {"from": window["from"], "to": window["to"]},
                token=alice,
            )
            assert refused_options["errors"][0]["extensions"]["code"] == "FORBIDDEN", refused_options
            own = await gw.data(
                "query ($f: UsageFilter!) { usage(filter: $f) { totals { spendExact } } }",
                {"f": {**window, "teamIds": ["t-old"]}},
                token=alice,
            )
            assert own["usage"]["totals"]["spendExact"] == "3"
            refused = await gw.query(
                "query ($f: UsageFilter!) { usage(filter: $f) { totals { spendExact } } }",
                {"f": {**window, "teamIds": ["t-bob"]}},
                token=alice,
            )
            assert refused["data"] is None
            assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN", refused
            unknown = await gw.query(
                "query ($f: UsageFilter!) { usage(filter: $f) { totals { spendExact } } }",
                {"f": {**window, "teamIds": ["t-nobody"]}},
            )
            assert unknown["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", unknown
