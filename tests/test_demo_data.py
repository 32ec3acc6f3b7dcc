"""The demo data set: deterministic, in LiteLLM's formats, and shaped like a real proxy's usage."""

from __future__ import annotations

import hashlib
import time
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest

from tests.golden_files import GOLDEN_DIR
from tests.litellm_rows import COUNTER_COLUMNS, UNIQUE_COLUMNS
from usage_gateway.devtools.demo_data import (
    DAYS,
    DELETED_TEAM,
    KEYS,
    MCP_TOOLS,
    TRIAL_PROVIDER,
    UPGRADE_DAY,
    USERS,
    DemoData,
    generate,
)
from usage_gateway.devtools.litellm_compat import ROW_COLUMNS

NOW = datetime(2026, 6, 10, 15, 30, tzinfo=UTC)
GOLDEN = GOLDEN_DIR / "directory.json"
PROVIDERS = {"openai", "azure", "anthropic", "bedrock", "vertex_ai", "mistral"}


@pytest.fixture(scope="module")
def data() -> DemoData:
    return generate(7, now=NOW)


def _spend_by(rows: list[dict[str, Any]], column: str) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for row in rows:
        totals[row[column]] += row["spend"]
    return totals


def test_same_seed_gives_the_same_data(data: DemoData) -> None:
    assert generate(7, now=NOW) == data


def test_another_seed_gives_other_data(data: DemoData) -> None:
    other = generate(8, now=NOW)
    assert other.rows != data.rows
    assert [key["token"] for key in other.keys] != [key["token"] for key in data.keys]


def test_generation_takes_under_five_seconds() -> None:
    started = time.perf_counter()
    generate(11)
    assert time.perf_counter() - started < 5


def test_rows_are_unique_on_litellms_constraint(data: DemoData) -> None:
    counts = Counter(tuple(row[column] for column in UNIQUE_COLUMNS) for row in data.rows)
    assert counts.most_common(1)[0][1] == 1
    assert len({row["id"] for row in data.rows}) == len(data.rows)


def test_rows_have_every_column_in_schema_order(data: DemoData) -> None:
    assert all(tuple(row) == ROW_COLUMNS for row in data.rows)


def test_users_and_keys_have_the_golden_fields(data: DemoData) -> None:
    golden = orjson.loads(GOLDEN.read_bytes())
    key_fields = {field for key in golden["keys"] if not key.get("deleted") for field in key}
    deleted_fields = {field for key in golden["keys"] if key.get("deleted") for field in key}
    # Beyond the golden bodies' fields, the demo's budgets (demo_budgets) use the budget columns every
    # LiteLLM user and key row has (CONTRACT.md §6: budget_duration, budget_reset_at).
    key_fields |= {"budget_duration", "budget_reset_at"}
    assert all(set(key) == (deleted_fields if key.get("deleted") else key_fields) for key in data.keys)
    assert all(
        set(user) == set(golden["users"][0]) | {"budget_duration", "budget_reset_at"} for user in data.users
    )
    assert all(key["token"] == hashlib.sha256(key["raw_key"].encode()).hexdigest() for key in data.keys)
    assert len({key["token"] for key in data.keys}) == len(data.keys)
    assert len({key["key_alias"] for key in data.keys}) == len(data.keys)


def test_shape(data: DemoData) -> None:
    assert len(data.users) == USERS == 200
    assert len([key for key in data.keys if not key.get("deleted")]) == KEYS == 600
    assert len({row["model"] for row in data.rows} - {None, ""}) == 25
    assert {row["custom_llm_provider"] for row in data.rows} - {None, ""} == PROVIDERS | {TRIAL_PROVIDER}
    days = sorted({row["date"] for row in data.rows})
    assert len(days) == DAYS == 120
    assert days[-1] == NOW.date().isoformat()
    assert days[0] == (NOW.date() - timedelta(days=119)).isoformat()
    assert {user["metadata"]["department"] for user in data.users} >= {"Engineering", "Research"}


def test_some_models_run_on_two_providers(data: DemoData) -> None:
    providers: dict[str | None, set[str | None]] = defaultdict(set)
    for row in data.rows:
        providers[row["model"]].add(row["custom_llm_provider"])
    assert providers["gpt-4o"] == {"openai", "azure", TRIAL_PROVIDER}
    assert providers["claude-sonnet-4-20250514"] == {"anthropic", "bedrock"}
    # A router splitting one model over two deployments: the same key, day and model on both; and one
    # key trying a third deployment: the same key, day and model on three.
    cells: dict[tuple[str, str, str | None], set[str | None]] = defaultdict(set)
    for row in data.rows:
        cells[(row["api_key"], row["date"], row["model"])].add(row["custom_llm_provider"])
    assert any(len(used) == 2 for used in cells.values())
    three = [cell for cell, used in cells.items() if len(used) >= 3]
    assert three
    assert {model for _, _, model in three} == {"gpt-4o"}
    assert len({key for key, _, _ in three}) == 1


def test_a_few_users_make_most_of_the_spend(data: DemoData) -> None:
    by_user = _spend_by(data.rows, "user_id")
    people = sorted(
        (spend for user, spend in by_user.items() if user not in ("", "default_user_id", None)), reverse=True
    )
    top = people[: len(data.users) // 20]
    assert sum(top) >= 0.5 * sum(by_user.values())


def test_weekends_are_quieter_and_usage_grows(data: DemoData) -> None:
    spend = _spend_by(data.rows, "date")
    requests: dict[str, int] = defaultdict(int)
    for row in data.rows:
        requests[row["date"]] += row["api_requests"]
    days = sorted(spend)[:-1]  # today is partial
    weekend = [spend[day] for day in days if date.fromisoformat(day).weekday() >= 5]
    weekday = [spend[day] for day in days if date.fromisoformat(day).weekday() < 5]
    assert sum(weekend) / len(weekend) < 0.6 * sum(weekday) / len(weekday)
    assert sum(requests[day] for day in days[-28:]) > 1.1 * sum(requests[day] for day in days[:28])


def test_today_is_partial(data: DemoData) -> None:
    today = NOW.date()
    requests: dict[date, int] = defaultdict(int)
    for row in data.rows:
        requests[date.fromisoformat(row["date"])] += row["api_requests"]
    same_weekdays = [requests[today - timedelta(days=7 * weeks)] for weeks in range(1, 5)]
    assert requests[today] < 0.8 * min(same_weekdays)
    stamp = NOW.strftime("%Y-%m-%dT%H:%M:%S")
    assert all(row["updated_at"] <= stamp for row in data.rows if row["date"] == today.isoformat())


def test_counters_are_consistent(data: DemoData) -> None:
    for row in data.rows:
        assert all(isinstance(row[column], int) and row[column] >= 0 for column in COUNTER_COLUMNS), row
        assert row["api_requests"] == row["successful_requests"] + row["failed_requests"], row
        assert row["api_requests"] > 0, row
        assert row["timed_requests"] <= row["api_requests"], row
        cached = row["cache_read_input_tokens"] + row["cache_creation_input_tokens"]
        assert cached <= row["prompt_tokens"], row
        assert row["spend"] >= 0


def test_failures_latency_and_caching_occur(data: DemoData) -> None:
    assert sum(row["failed_requests"] for row in data.rows) > 0
    all_failed = [row for row in data.rows if row["successful_requests"] == 0]
    assert all_failed
    assert all(row["spend"] == 0 and row["prompt_tokens"] == 0 for row in all_failed)
    assert sum(1 for row in data.rows if row["cache_read_input_tokens"] > 0) > 100
    assert all(row["total_response_time_ms"] > 0 for row in data.rows)
    assert {row["endpoint"] for row in data.rows} == {
        "/chat/completions", "/embeddings", "/responses", "/v1/messages", "/mcp",
    }  # fmt: skip


def test_some_spend_is_unmapped_or_unattributed(data: DemoData) -> None:
    directory_hashes = {key["token_hash"] for key in data.directory_keys}
    unmapped = [key for key in data.keys if key["token"] not in directory_hashes]
    assert 0.03 * len(data.keys) <= len(unmapped) <= 0.07 * len(data.keys)
    by_key = _spend_by(data.rows, "api_key")
    assert all(by_key[key["token"]] > 0 and key["user_id"] for key in unmapped)
    assert by_key[""] > 0  # requests without a virtual key
    ownerless = [key for key in data.keys if key["user_id"] is None]
    assert len(ownerless) == 1
    assert any(row["api_key"] == ownerless[0]["token"] and row["user_id"] == "" for row in data.rows)


def test_one_key_is_revoked_and_unused_since(data: DemoData) -> None:
    revoked = [key for key in data.keys if key["blocked"]]
    assert len(revoked) == 1
    entry = next(key for key in data.directory_keys if key["token_hash"] == revoked[0]["token"])
    assert entry["revoked_at"] is not None
    used = [row["date"] for row in data.rows if row["api_key"] == revoked[0]["token"]]
    assert used
    assert max(used) < entry["revoked_at"].date().isoformat()
    deleted = [key for key in data.keys if key.get("deleted")]
    revoked_in_directory = [key for key in data.directory_keys if key["revoked_at"] is not None]
    assert len(revoked_in_directory) == len(revoked) + len(deleted)


def test_a_deleted_key_keeps_its_spend(data: DemoData) -> None:
    deleted = [key for key in data.keys if key.get("deleted")]
    assert len(deleted) == 1
    key = deleted[0]
    assert key["user_id"]
    assert key["deleted_by_api_key"]
    rows = [row for row in data.rows if row["api_key"] == key["token"]]
    assert rows
    assert key["spend"] == sum(row["spend"] for row in rows) > 0
    deleted_on = key["deleted_at"][:10]
    assert max(row["date"] for row in rows) < deleted_on
    entry = next(entry for entry in data.directory_keys if entry["token_hash"] == key["token"])
    assert entry["revoked_at"].strftime("%Y-%m-%dT%H:%M:%S.000Z") == key["deleted_at"]


def test_a_small_share_of_rows_has_the_legacy_shapes(data: DemoData) -> None:
    """What a proxy with history holds beside clean rows (CONTRACT §5): NULL and '' where the schema
    allows them, several endpoints and MCP tools for one key, model and provider."""
    upgrade = (NOW.date() - timedelta(days=DAYS - 1 - UPGRADE_DAY)).isoformat()
    owners = {key["token"]: key["user_id"] for key in data.keys}
    null_user = [row for row in data.rows if row["user_id"] is None]
    assert all(row["date"] < upgrade for row in null_user)  # the old writer's
    assert {owners[row["api_key"]] is None for row in null_user} == {True, False}  # owned keys and not
    assert any(row["user_id"] == "" and owners.get(row["api_key"]) for row in data.rows)
    # NULL-user rows on a key that routes one model to two providers on the same day.
    providers: dict[tuple[str, str, str | None], set[str | None]] = defaultdict(set)
    for row in data.rows:
        providers[(row["api_key"], row["date"], row["model"])].add(row["custom_llm_provider"])
    assert any(len(providers[(row["api_key"], row["date"], row["model"])]) > 1 for row in null_user)

    unrouted = [row for row in data.rows if not row["model"]]
    assert {row["model"] for row in unrouted} == {None, ""}
    for row in unrouted:
        assert row["custom_llm_provider"] == row["model_group"] == row["model"]
        assert (row["model"] is None) == (row["date"] < upgrade)
        assert row["failed_requests"] == row["api_requests"] > 0
        assert row["spend"] == 0

    endpoints: dict[tuple[str, str, str | None, str | None], set[str]] = defaultdict(set)
    for row in data.rows:
        endpoints[(row["api_key"], row["date"], row["model"], row["custom_llm_provider"])].add(
            row["endpoint"]
        )
    assert max(len(found) for found in endpoints.values()) >= 3
    tools = [row for row in data.rows if row["mcp_namespaced_tool_name"]]
    assert tools
    assert all(row["endpoint"] == "/mcp" and row["mcp_namespaced_tool_name"] in MCP_TOOLS for row in tools)

    odd = [row for row in data.rows if row["user_id"] is None or not row["model"]]
    assert len(odd) < 0.02 * len(data.rows)
    assert sum(row["spend"] for row in odd) < 0.01 * sum(row["spend"] for row in data.rows)


def test_directory_matches_litellm(data: DemoData) -> None:
    assert [user["id"] for user in data.directory_users] == [user["user_id"] for user in data.users]
    assert {user["role"] for user in data.directory_users} == {"admin", "adminReadonly", "user"}
    user_ids = {user["id"] for user in data.directory_users}
    tokens = {key["token"]: key for key in data.keys}
    assert len({key["id"] for key in data.directory_keys}) == len(data.directory_keys)
    for entry in data.directory_keys:
        key = tokens[entry["token_hash"]]
        assert entry["user_id"] == key["user_id"] == entry["litellm_user_id"]
        assert entry["user_id"] is None or entry["user_id"] in user_ids
        assert entry["key_alias"] == key["key_alias"]
        assert set(entry) == {
            "id", "user_id", "name", "key_alias", "token_hash", "litellm_user_id", "team_id",
            "created_at", "revoked_at",
        }  # fmt: skip


def test_the_same_seed_gives_the_same_today_at_any_hour() -> None:
    """The day's figures do not follow the wall clock: two runs of the demo on one day agree."""
    morning = generate(7, now=NOW.replace(hour=0, minute=5))
    assert generate(7, now=NOW.replace(hour=23, minute=59, second=59)) == morning
    assert max(row["date"] for row in morning.rows) == NOW.date().isoformat()


def test_model_groups_gather_several_models_and_differ_from_them(data: DemoData) -> None:
    """As behind a LiteLLM router: some public names (model groups) serve several models, others keep
    the model's own name; the same seed gives the same groups."""
    groups: dict[str, set[str]] = defaultdict(set)
    for row in data.rows:
        if row["model"]:
            groups[row["model_group"]].add(row["model"])
    assert any(len(models) > 1 for models in groups.values())
    assert any(group not in models for group, models in groups.items())
    assert any(models == {group} for group, models in groups.items())


def test_teams_a_moved_key_and_a_deleted_team(data: DemoData) -> None:
    """Every department is a LiteLLM team; a team LiteLLM deleted stays in the directory with its alias;
    one busy key moved out of it on MOVE_DAY into its current team, with usage on both sides."""
    listed = {team["team_id"]: team["team_alias"] for team in data.teams}
    directory = {team["id"]: (team["alias"], team["deleted_at"] is not None) for team in data.directory_teams}
    assert {team: (alias, False) for team, alias in listed.items()} == {
        team: value for team, value in directory.items() if team != DELETED_TEAM
    }
    assert directory[DELETED_TEAM] == ("Innovation Labs", True)
    assert DELETED_TEAM not in listed
    key_teams = {key["token"]: key["team_id"] for key in data.keys}
    assert {team for team in key_teams.values() if team} <= set(listed)
    [move] = data.team_moves
    assert move["before"] == DELETED_TEAM
    assert move["team_id"] == key_teams[move["token_hash"]] in listed
    days = {date.fromisoformat(row["date"]) for row in data.rows if row["api_key"] == move["token_hash"]}
    assert min(days) < move["valid_from"] <= max(days)
    assert generate(7, now=NOW).team_moves == data.team_moves


def test_budgets_on_a_share_of_users_keys_and_teams(data: DemoData) -> None:
    """demo_budgets: a third of active users, an eighth of live keys, most teams (monthly); some limits
    below a period's recent spend, so some budgets are projected to run out."""
    budgeted = {
        name: [obj for obj in objects if obj.get("max_budget") is not None]
        for name, objects in (("users", data.users), ("keys", data.keys), ("teams", data.teams))
    }
    assert 40 <= len(budgeted["users"]) <= 90
    assert 50 <= len(budgeted["keys"]) <= 100
    assert Counter(team["budget_duration"] for team in budgeted["teams"]) == {"1mo": 8, "30d": 1}
    assert {user["budget_duration"] for user in budgeted["users"]} == {"30d", "1mo", "7d"}
    assert {key["budget_duration"] for key in budgeted["keys"]} == {"7d", "1d", "30d", "14d", None}
    assert not any(key.get("blocked") or key.get("deleted") for key in budgeted["keys"])
    for obj in (*budgeted["users"], *budgeted["keys"], *budgeted["teams"]):
        assert obj["max_budget"] > 0
        assert (obj["budget_reset_at"] is None) is (obj["budget_duration"] is None)
        if obj["budget_duration"] in ("30d", "1mo"):
            assert obj["budget_reset_at"] == "2026-07-01T00:00:00.000Z"  # LiteLLM: the 1st of next month
        if obj["budget_duration"] == "7d":
            assert obj["budget_reset_at"] == "2026-06-15T00:00:00.000Z"  # the next Monday
    # Spend so far this month (June 1-10) against monthly user limits: some already over.
    month: defaultdict[str, float] = defaultdict(float)
    for row in data.rows:
        if row["date"] >= "2026-06-01":
            month[row["user_id"]] += row["spend"]
    monthly = [u for u in budgeted["users"] if u["budget_duration"] in ("30d", "1mo")]
    assert any(month[u["user_id"]] >= u["max_budget"] for u in monthly)
    assert any(month[u["user_id"]] < u["max_budget"] / 3 for u in monthly)
