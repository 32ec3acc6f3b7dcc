"""The directory: users, their API keys (DESIGN §4) and LiteLLM's teams, looked up in batches.

Each function runs one SQL statement (none when asked about nothing), so a DataLoader built on it costs
one statement per request however many nodes ask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from usage_gateway.datasources.db import Database
from usage_gateway.datasources.facts.vocabulary import Dimension

UNATTRIBUTED = "unattributed"
LITELLM_USER_PREFIX = "litellm:"
NO_TEAM = "no-team"  # the team of a fact whose key had no team that day (migration 0007)


@dataclass(frozen=True)
class UserRecord:
    id: str
    username: str | None
    email: str | None
    role: str | None
    department: str | None


@dataclass(frozen=True)
class ApiKeyRecord:
    """A directory key; ``token_hash`` is the LiteLLM key bucket its usage is recorded under."""

    id: str
    token_hash: str
    user_id: str | None
    name: str | None
    key_alias: str | None
    revoked_at: datetime | None
    user: UserRecord | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def is_pseudo_user(user_id: str) -> bool:
    """``unattributed`` and ``litellm:<id>``: valid wherever a user id is, never in ``users``."""
    return user_id == UNATTRIBUTED or (
        user_id.startswith(LITELLM_USER_PREFIX) and len(user_id) > len(LITELLM_USER_PREFIX)
    )


_USER_COLUMNS = "u.id, u.username, u.email, u.role, u.department"
_KEY_SELECT = (
    "SELECT k.id, k.token_hash, k.user_id, k.name, k.key_alias, k.revoked_at, "
    f"{_USER_COLUMNS} FROM api_keys k LEFT JOIN users u ON u.id = k.user_id"
)


def _key(row: Sequence[Any]) -> ApiKeyRecord:
    key_id, token_hash, user_id, name, alias, revoked_at, *user = row
    owner = UserRecord(*user) if user[0] is not None else None
    return ApiKeyRecord(key_id, token_hash, user_id, name, alias, revoked_at, owner)


async def users_by_ids(db: Database, ids: Sequence[str]) -> dict[str, UserRecord]:
    """The directory users among ``ids`` (pseudo ids and unknown ids are simply absent)."""
    if not ids:
        return {}
    rows = await db.fetch_all(
        f"SELECT {_USER_COLUMNS} FROM users u WHERE u.id = ANY(%s::text[])", (list(set(ids)),)
    )
    return {row[0]: UserRecord(*row) for row in rows}


async def users_exist(db: Database, ids: Sequence[str]) -> set[str]:
    """The ids among ``ids`` that are directory users."""
    if not ids:
        return set()
    rows = await db.fetch_all("SELECT id FROM users WHERE id = ANY(%s::text[])", (list(set(ids)),))
    return {row[0] for row in rows}


async def api_keys_by_token_hashes(db: Database, hashes: Sequence[str]) -> dict[str, ApiKeyRecord]:
    """Directory keys (with their owner) by LiteLLM key bucket; buckets outside the directory are absent."""
    if not hashes:
        return {}
    rows = await db.fetch_all(f"{_KEY_SELECT} WHERE k.token_hash = ANY(%s::bpchar[])", (list(set(hashes)),))
    return {key.token_hash: key for key in map(_key, rows)}


async def api_keys_by_ids(db: Database, ids: Sequence[str]) -> dict[str, ApiKeyRecord]:
    """Directory keys (with their owner) by directory id."""
    if not ids:
        return {}
    rows = await db.fetch_all(f"{_KEY_SELECT} WHERE k.id = ANY(%s::text[])", (list(set(ids)),))
    return {key.id: key for key in map(_key, rows)}


@dataclass(frozen=True)
class TeamRecord:
    """A LiteLLM team; ``deleted`` once LiteLLM no longer lists it (its alias stays for its past usage)."""

    id: str
    alias: str | None
    deleted: bool


async def teams_by_ids(db: Database, ids: Sequence[str]) -> dict[str, TeamRecord]:
    """The synced teams among ``ids`` (``no-team`` and teams never listed are absent)."""
    if not ids:
        return {}
    rows = await db.fetch_all(
        "SELECT id, alias, deleted_at IS NOT NULL FROM teams WHERE id = ANY(%s::text[])", (list(set(ids)),)
    )
    return {row[0]: TeamRecord(*row) for row in rows}


async def teams_exist(db: Database, ids: Sequence[str]) -> set[str]:
    """The ids among ``ids`` that name a team: listed by LiteLLM, or the team of some directory key."""
    if not ids:
        return set()
    rows = await db.fetch_all(
        "SELECT id FROM teams WHERE id = ANY(%(ids)s::text[])"
        " UNION SELECT team_id FROM api_key_teams WHERE team_id = ANY(%(ids)s::text[])",
        {"ids": list(set(ids))},
    )
    return {row[0] for row in rows}


async def teams_of_user(db: Database, user_id: str) -> set[str]:
    """Every team a key of ``user_id``'s was in while it was theirs or since (its team history)."""
    rows = await db.fetch_all(
        "SELECT DISTINCT t.team_id FROM api_key_owners o JOIN api_key_teams t ON t.token_hash = o.token_hash"
        " WHERE o.user_id = %s AND t.team_id IS NOT NULL",
        (user_id,),
    )
    return {row[0] for row in rows}


async def identify(
    db: Database, dimension: Dimension, keys: Sequence[str]
) -> tuple[dict[str, str], dict[str, str | None]]:
    """(id, name) of each group key of ``dimension``, in one lookup at most: a key bucket's directory id
    (byApiKey's ``apiKeyId``) and alias, a user's username or email, a team's alias; the key itself and
    no name where the directory has none (models, providers, pseudo-users, outside keys)."""
    ids = {key: key for key in keys}
    names: dict[str, str | None] = {}
    if dimension is Dimension.USER:
        users = await users_by_ids(db, keys)
        names = {key: user.username or user.email for key, user in users.items()}
    elif dimension is Dimension.TEAM:
        teams = await teams_by_ids(db, keys)
        names = {key: team.alias for key, team in teams.items()}
    elif dimension is Dimension.API_KEY:
        records = await api_keys_by_token_hashes(db, keys)
        ids.update({bucket: record.id for bucket, record in records.items()})
        names = {bucket: record.key_alias or record.name for bucket, record in records.items()}
    return ids, names
