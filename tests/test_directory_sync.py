from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pytest

from tests.gateway_harness import gateway, long_after
from tests.golden_files import GOLDEN_DIR
from usage_gateway.datasources.daycache.days import utc_now
from usage_gateway.datasources.db import Database
from usage_gateway.datasources.directory.sync import SyncCounts, sync_directory
from usage_gateway.datasources.litellm.client import LiteLLMClient
from usage_gateway.devtools.litellm_compat.app import running_litellm
from usage_gateway.devtools.litellm_compat.store import LiteLLMStore
from usage_gateway.errors import UpstreamUnavailable

GOLDEN = GOLDEN_DIR / "directory.json"
DATA = orjson.loads(GOLDEN.read_bytes())
TOKENS = {key["key_alias"]: key["token"] for key in DATA["keys"]}


@dataclass
class Env:
    db: Database
    client: LiteLLMClient
    store: LiteLLMStore
    url: str

    def golden_keys(self) -> list[dict[str, Any]]:
        return copy.deepcopy(DATA["keys"])

    async def sync(self) -> SyncCounts:
        return await sync_directory(self.db, self.client)

    async def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        tables = {
            "users": "SELECT * FROM users ORDER BY id",
            "api_keys": "SELECT * FROM api_keys ORDER BY id",
            "api_key_owners": "SELECT token_hash, valid_from::text, user_id FROM api_key_owners ORDER BY 1,2",
        }
        return {name: list(await self.db.fetch_all(query)) for name, query in tables.items()}

    async def key(self, alias: str) -> dict[str, Any]:
        row = await self.db.fetch_one(
            "SELECT id, user_id, name, key_alias, litellm_user_id, team_id, created_at, revoked_at"
            " FROM api_keys WHERE token_hash = %s",
            (TOKENS[alias],),
        )
        assert row is not None, alias
        names = (
            "id",
            "user_id",
            "name",
            "key_alias",
            "litellm_user_id",
            "team_id",
            "created_at",
            "revoked_at",
        )
        return dict(zip(names, row, strict=True))


@pytest.fixture
def litellm() -> Iterator[tuple[LiteLLMStore, str]]:
    store = LiteLLMStore.from_golden(GOLDEN)
    with running_litellm(store) as url:
        yield store, url


@pytest.fixture
async def env(database_url: str, litellm: tuple[LiteLLMStore, str]) -> AsyncIterator[Env]:
    store, url = litellm
    async with gateway(database_url, url, clock=utc_now, retries=1, timeout_seconds=30.0) as gw:
        yield Env(gw.db, gw.client, store, url)


async def test_the_first_sync_brings_in_every_user_and_key(env: Env) -> None:
    assert await env.sync() == SyncCounts(
        users_created=8,
        users_updated=0,
        api_keys_created=13,
        api_keys_updated=0,
        api_keys_revoked=2,
        budgets_changed=2,  # ned's and quinn's max_budget of 100 (no duration)
    )
    users = await env.db.fetch_all("SELECT id, username, email, role FROM users ORDER BY id")
    assert users == sorted(
        (u["user_id"], u["user_alias"], u["user_email"], u["user_role"]) for u in DATA["users"]
    )
    for golden in DATA["keys"]:
        key = await env.key(golden["key_alias"])
        assert key["id"] == golden["token"]
        assert (key["name"], key["litellm_user_id"], key["team_id"]) == (
            golden["key_name"],
            golden["user_id"],
            golden["team_id"],
        )
        assert key["user_id"] == golden["user_id"]  # every owner is a LiteLLM user; the service key has none
        assert key["created_at"] == datetime.fromisoformat(golden["created_at"])
        revoked = bool(golden.get("blocked")) or bool(golden.get("deleted"))
        assert (key["revoked_at"] is not None) is revoked, golden["key_alias"]
    assert (await env.key("ned-key-03"))["revoked_at"] is not None  # blocked
    assert (await env.key("leo-retired"))["revoked_at"] is not None  # deleted
    assert (await env.key("pat-key-05"))["revoked_at"] is None  # expired is not revoked


async def test_a_second_sync_changes_nothing(env: Env) -> None:
    await env.sync()
    before = await env.snapshot()
    assert await env.sync() == SyncCounts()
    assert await env.snapshot() == before


async def test_a_key_gone_from_litellm_is_revoked_once_and_kept(env: Env) -> None:
    await env.sync()
    env.store.set_keys([key for key in env.golden_keys() if key["key_alias"] != "mia-key-10"])
    assert await env.sync() == SyncCounts(api_keys_revoked=1)
    gone = await env.key("mia-key-10")
    assert gone["revoked_at"] is not None
    assert gone["user_id"] == "mia"
    assert await env.sync() == SyncCounts()
    assert (await env.key("mia-key-10"))["revoked_at"] == gone["revoked_at"]


async def test_keys_blocked_or_deleted_later_are_revoked_and_unblocked_ones_are_not(env: Env) -> None:
    await env.sync()
    keys = env.golden_keys()
    for key in keys:
        if key["key_alias"] == "kim-key-00":
            key["blocked"] = True
        if key["key_alias"] == "quinn-key-06":
            key.update(deleted=True, deleted_at="2026-11-03T10:00:00.000Z", deleted_by="kim")
        if key["key_alias"] == "ned-key-03":
            key["blocked"] = None
    env.store.set_keys(keys)
    assert await env.sync() == SyncCounts(api_keys_updated=1, api_keys_revoked=2)
    assert (await env.key("kim-key-00"))["revoked_at"] is not None
    assert (await env.key("quinn-key-06"))["revoked_at"] is not None
    assert (await env.key("ned-key-03"))["revoked_at"] is None
    assert await env.sync() == SyncCounts()


async def test_a_reassigned_key_keeps_its_old_spend_under_its_old_owner(env: Env, database_url: str) -> None:
    await env.sync()
    old_days = (date(2026, 11, 1), date(2026, 11, 2))
    async with gateway(database_url, env.url, clock=lambda: long_after(old_days[1])) as gw:
        report = await gw.days.ensure(*old_days)
    assert report.complete
    today = datetime.now(UTC).date()
    token = TOKENS["kim-key-00"]
    await env.db.execute(
        "INSERT INTO usage_facts SELECT %(today)s, api_key, litellm_user_id, model, provider,"
        " attributed_user(api_key, %(today)s, litellm_user_id), spend, prompt_tokens, completion_tokens,"
        " cache_read_input_tokens, cache_creation_input_tokens, total_tokens, api_requests,"
        " successful_requests, failed_requests, total_response_time_ms, timed_requests"
        " FROM usage_facts WHERE api_key = %(token)s AND date = %(day)s",
        {"today": today, "token": token, "day": old_days[0]},
    )
    owners = (
        "SELECT date, array_agg(DISTINCT user_id) FROM usage_facts WHERE api_key = %s GROUP BY 1 ORDER BY 1"
    )
    assert await env.db.fetch_all(owners, (token,)) == [(d, ["kim"]) for d in (*old_days, today)]
    old_spend = await env.db.fetch_one(
        "SELECT sum(spend) FROM usage_facts WHERE user_id = 'kim' AND date < %s", (today,)
    )

    keys = env.golden_keys()
    for key in keys:
        if key["key_alias"] == "kim-key-00":
            key["user_id"] = "leo"
    env.store.set_keys(keys)
    assert await env.sync() == SyncCounts(api_keys_updated=1)

    moved = await env.key("kim-key-00")
    assert (moved["user_id"], moved["litellm_user_id"]) == ("leo", "leo")
    assert await env.db.fetch_all(owners, (token,)) == [
        (old_days[0], ["kim"]),
        (old_days[1], ["kim"]),
        (today, ["leo"]),
    ]
    assert old_spend == await env.db.fetch_one(
        "SELECT sum(spend) FROM usage_facts WHERE user_id = 'kim' AND date < %s", (today,)
    )
    assert await env.sync() == SyncCounts()


async def test_users_are_updated_by_value_and_unknown_owners_stay_litellm_users(env: Env) -> None:
    await env.sync()
    await env.db.execute("UPDATE users SET department = 'finance' WHERE id = 'kim'")
    users = copy.deepcopy(DATA["users"])
    for user in users:
        if user["user_id"] == "leo":
            user["user_alias"] = "Leo H."
            user["metadata"] = {"department": "platform"}
    env.store.set_users(users)
    keys = env.golden_keys()
    ghost = {
        **keys[0],
        "token": "0" * 64,
        "raw_key": "sk-ghost",
        "key_alias": "ghost-key",
        "user_id": "ghost",
    }
    env.store.set_keys([*keys, ghost])
    assert await env.sync() == SyncCounts(users_updated=1, api_keys_created=1)
    assert await env.db.fetch_all(
        "SELECT id, username, department FROM users WHERE id IN ('kim', 'leo') ORDER BY id"
    ) == [
        ("kim", "Kim Lee", "finance"),  # LiteLLM has no department for kim: the directory's stays
        ("leo", "Leo H.", "platform"),
    ]
    row = await env.db.fetch_one(
        "SELECT user_id, litellm_user_id FROM api_keys WHERE token_hash = %s", ("0" * 64,)
    )
    assert row == (None, "ghost")
    assert await env.sync() == SyncCounts()


async def test_an_empty_key_listing_revokes_nothing(env: Env) -> None:
    await env.sync()
    before = await env.snapshot()
    env.store.set_keys([])
    with pytest.raises(UpstreamUnavailable, match="refusing to revoke 11"):
        await env.sync()
    assert await env.snapshot() == before
