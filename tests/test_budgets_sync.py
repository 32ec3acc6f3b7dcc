"""Budgets come through the LiteLLM-compatible server into Postgres: keys', users' and teams'
``max_budget``/``budget_duration``/``budget_reset_at`` as LiteLLM's listings give them, updated and removed
when LiteLLM changes them, and nothing written when nothing changed."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest

from tests.gateway_harness import gateway
from tests.golden_files import GOLDEN_DIR
from usage_gateway.datasources.daycache.days import utc_now
from usage_gateway.datasources.db import Database
from usage_gateway.datasources.directory.sync import sync_directory
from usage_gateway.datasources.litellm.client import LiteLLMClient
from usage_gateway.devtools.litellm_compat.app import running_litellm
from usage_gateway.devtools.litellm_compat.store import MASTER_KEY, LiteLLMStore

GOLDEN = GOLDEN_DIR / "directory.json"
DATA = orjson.loads(GOLDEN.read_bytes())
TOKENS = {key["key_alias"]: key["token"] for key in DATA["keys"]}
RESET = "2026-12-07T00:00:00"


def keys_with(budgets: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    keys: list[dict[str, Any]] = copy.deepcopy(DATA["keys"])
    for key in keys:
        key.update(budgets.get(key["key_alias"], {}))
    return keys


def users_with(budgets: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    users: list[dict[str, Any]] = copy.deepcopy(DATA["users"])
    for user in users:
        user.update(budgets.get(user["user_id"], {}))
    return users


TEAM = {"team_id": "team-a", "team_alias": "Alpha", "max_budget": 1000.0, "budget_duration": "30d",
        "budget_reset_at": "2027-01-01T00:00:00"}  # fmt: skip


@pytest.fixture
def litellm() -> Iterator[tuple[LiteLLMStore, str]]:
    store = LiteLLMStore.from_golden(GOLDEN)
    with running_litellm(store) as url:
        yield store, url


@pytest.fixture
async def env(
    database_url: str, litellm: tuple[LiteLLMStore, str]
) -> AsyncIterator[tuple[Database, LiteLLMClient, LiteLLMStore, str]]:
    store, url = litellm
    async with gateway(database_url, url, clock=utc_now, retries=1, timeout_seconds=30.0) as gw:
        yield gw.db, gw.client, store, url


async def budgets(db: Database) -> dict[tuple[str, str], tuple[Decimal, str | None, datetime | None]]:
    rows = await db.fetch_all(
        "SELECT entity, entity_id, max_budget, budget_duration, budget_reset_at FROM budgets"
    )
    return {(row[0], row[1]): (row[2], row[3], row[4]) for row in rows}


async def test_budgets_sync_in_update_and_go(env: tuple[Database, LiteLLMClient, LiteLLMStore, str]) -> None:
    db, client, store, url = env
    store.set_keys(
        keys_with(
            {
                "kim-key-00": {"max_budget": 50.0, "budget_duration": "7d", "budget_reset_at": RESET},
                "ned-key-03": {"max_budget": 5.0, "budget_duration": "1d"},  # blocked: no budget
                "leo-key-01": {"max_budget": 0.1},
            }
        )
    )
    store.set_users(users_with({"kim": {"max_budget": 200.0, "budget_duration": "1mo"}}))
    store.set_teams([TEAM])

    # The compatible server answers the budget fields as LiteLLM does: set, or null when unset.
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=headers) as http:
        listed = await http.get("/key/list", params={"return_full_object": "true", "size": 100})
        [team] = (await http.get("/team/list")).json()
    by_alias = {key["key_alias"]: key for key in listed.json()["keys"]}
    assert (by_alias["kim-key-00"]["max_budget"], by_alias["kim-key-00"]["budget_duration"]) == (50.0, "7d")
    assert by_alias["kim-key-00"]["budget_reset_at"] == "2026-12-07T00:00:00Z"
    unset = by_alias["mia-key-02"]
    assert (unset["max_budget"], unset["budget_duration"], unset["budget_reset_at"]) == (None, None, None)
    assert (team["max_budget"], team["budget_duration"], team["budget_reset_at"]) == (
        1000.0, "30d", "2027-01-01T00:00:00Z"
    )  # fmt: skip

    first = await sync_directory(db, client)
    reset = datetime(2026, 12, 7, tzinfo=UTC)
    assert await budgets(db) == {
        ("API_KEY", TOKENS["kim-key-00"]): (Decimal("50.0"), "7d", reset),
        ("API_KEY", TOKENS["leo-key-01"]): (Decimal("0.1"), None, None),
        ("USER", "kim"): (Decimal("200.0"), "1mo", None),
        ("USER", "ned"): (Decimal("100.0"), None, None),  # the golden users' own budgets
        ("USER", "quinn"): (Decimal("100.0"), None, None),
        ("TEAM", "team-a"): (Decimal("1000.0"), "30d", datetime(2027, 1, 1, tzinfo=UTC)),
    }
    assert first.budgets_changed == 6
    assert (await sync_directory(db, client)).budgets_changed == 0

    # A budget raised, one removed, a team gone, a user's duration changed.
    store.set_keys(
        keys_with(
            {
                "kim-key-00": {"max_budget": 75.5, "budget_duration": "7d", "budget_reset_at": RESET},
                "leo-key-01": {"max_budget": None},
            }
        )
    )
    store.set_users(
        users_with({"kim": {"max_budget": 200.0, "budget_duration": "30d"}, "ned": {"max_budget": None}})
    )
    store.set_teams([])
    changed = await sync_directory(db, client)
    assert await budgets(db) == {
        ("API_KEY", TOKENS["kim-key-00"]): (Decimal("75.5"), "7d", reset),
        ("USER", "kim"): (Decimal("200.0"), "30d", None),
        ("USER", "quinn"): (Decimal("100.0"), None, None),
    }
    assert changed.budgets_changed == 5  # 2 updated, 3 deleted
    assert (await sync_directory(db, client)).budgets_changed == 0
