"""``syncDirectory``: LiteLLM's users, keys and teams into ``users``, ``api_keys`` and ``teams``, never
deleting anything.

Users are upserted by id, keys by ``token_hash`` (a key the sync creates gets its token hash as id; a key
the host application wrote keeps its own id). Only rows whose values differ are written, so a second run
over the same data changes nothing and counts zero. A key is revoked (``revoked_at``, set once) when
LiteLLM blocks it, deletes it, or no longer lists it; a key LiteLLM lists as active again is un-revoked,
which also heals a key missed by a listing that shifted while it was paged. A key whose owner changed
gets the new ``user_id``, a key that moved gets the new ``team_id``; the triggers on ``api_keys`` keep its
earlier spend with the earlier owner and the earlier team. Teams are upserted by id with their alias; a
team LiteLLM no longer lists is marked deleted (``deleted_at``, set once) and keeps its alias, so its past
usage keeps its name. Budgets (``max_budget``, ``budget_duration``, ``budget_reset_at`` of keys, users
and teams) replace the ``budgets`` rows (:mod:`.budgets`).

Everything is written in one transaction, set-based: the listings are COPied into temporary tables and
merged with one statement per table. Syncs are serialised by a transaction-scoped advisory lock.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass
from datetime import datetime
from typing import Any

import psycopg
import structlog
from psycopg.rows import TupleRow
from redis.asyncio import Redis

from usage_gateway.datasources.answer_cache import bump_data_version
from usage_gateway.datasources.db import Database, note_statement
from usage_gateway.datasources.directory.budgets import BudgetEntity, BudgetRow, budget_rows, merge_budgets
from usage_gateway.datasources.litellm.client import LiteLLMClient
from usage_gateway.errors import UpstreamUnavailable

log = structlog.get_logger(__name__)

_LOCK_KEY = 7_250_302  # arbitrary, fixed: identifies "directory sync" among advisory locks
_TOKEN_HASH = re.compile(r"[0-9a-f]{64}")

UserRow = tuple[str, str | None, str | None, str | None, str | None, datetime | None]
KeyRow = tuple[str, str | None, str | None, str | None, str | None, datetime | None, bool]
TeamRow = tuple[str, str | None]


@dataclass(frozen=True)
class SyncCounts:
    """What a sync changed. A key created already revoked counts as created and as revoked."""

    users_created: int = 0
    users_updated: int = 0
    api_keys_created: int = 0
    api_keys_updated: int = 0
    api_keys_revoked: int = 0
    teams_created: int = 0
    teams_updated: int = 0
    teams_deleted: int = 0
    budgets_changed: int = 0  # budget rows written or deleted

    @property
    def changed(self) -> bool:
        return any(astuple(self))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def user_row(user: Mapping[str, Any]) -> UserRow | None:
    """A ``users`` row from a ``/user/list`` object; None without a user id."""
    user_id = _text(user.get("user_id"))
    if user_id is None:
        return None
    metadata = user.get("metadata")
    department = _text(metadata.get("department")) if isinstance(metadata, Mapping) else None
    return (
        user_id,
        _text(user.get("user_alias")),
        _text(user.get("user_email")),
        _text(user.get("user_role")),
        department,
        _timestamp(user.get("created_at")),
    )


def key_row(key: Mapping[str, Any], *, deleted: bool) -> KeyRow | None:
    """A ``sync_keys`` row from a full ``/key/list`` object; None without a valid token hash."""
    token = key.get("token")
    if not isinstance(token, str) or not _TOKEN_HASH.fullmatch(token):
        return None
    return (
        token,
        _text(key.get("key_name")),
        _text(key.get("key_alias")),
        _text(key.get("user_id")),
        _text(key.get("team_id")),
        _timestamp(key.get("created_at")),
        deleted or key.get("blocked") is True,
    )


def team_row(team: Mapping[str, Any]) -> TeamRow | None:
    """A ``teams`` row from a ``/team/list`` object; None without a team id."""
    team_id = _text(team.get("team_id"))
    return None if team_id is None else (team_id, _text(team.get("team_alias")))


def _unique_teams(teams: Iterable[Mapping[str, Any]]) -> list[TeamRow]:
    rows: dict[str, TeamRow] = {}
    for team in teams:
        row = team_row(team)
        if row is not None:
            rows.setdefault(row[0], row)
    return list(rows.values())


def _unique_users(users: Iterable[Mapping[str, Any]]) -> list[UserRow]:
    rows: dict[str, UserRow] = {}
    for user in users:
        row = user_row(user)
        if row is not None:
            rows.setdefault(row[0], row)
    return list(rows.values())


def _unique_keys(active: Iterable[Mapping[str, Any]], deleted: Iterable[Mapping[str, Any]]) -> list[KeyRow]:
    """Key rows by token; a key both listed and in the deleted archive counts as listed."""
    rows: dict[str, KeyRow] = {}
    skipped = 0
    for keys, is_deleted in ((active, False), (deleted, True)):
        for key in keys:
            row = key_row(key, deleted=is_deleted)
            if row is None:
                skipped += 1
            else:
                rows.setdefault(row[0], row)
    if skipped:
        log.warning("directory_sync.keys_skipped", count=skipped, reason="token is not a sha256 hex digest")
    return list(rows.values())


_MERGE_USERS = """
WITH classified AS (
    SELECT s.*, u.id IS NULL AS is_new,
           u.id IS NOT NULL AND (
               (u.username, u.email, u.role) IS DISTINCT FROM (s.username, s.email, s.role)
               OR (s.department IS NOT NULL AND s.department IS DISTINCT FROM u.department)
           ) AS is_changed
      FROM sync_users s LEFT JOIN users u ON u.id = s.id
), merged AS (
    INSERT INTO users AS u (id, username, email, role, department, created_at)
    SELECT id, username, email, role, department, COALESCE(created_at, now())
      FROM classified WHERE is_new OR is_changed
    ON CONFLICT (id) DO UPDATE
       SET username = EXCLUDED.username, email = EXCLUDED.email, role = EXCLUDED.role,
           department = COALESCE(EXCLUDED.department, u.department)
     WHERE (u.username, u.email, u.role, u.department)
           IS DISTINCT FROM (EXCLUDED.username, EXCLUDED.email, EXCLUDED.role,
                             COALESCE(EXCLUDED.department, u.department))
    RETURNING 1
)
SELECT count(*) FILTER (WHERE is_new), count(*) FILTER (WHERE is_changed) FROM classified
"""

# The owner is the LiteLLM user when the directory has that user (users were merged first), else NULL
# (the facts then count for the pseudo-user 'litellm:<id>').
_MERGE_KEYS = """
WITH incoming AS (
    SELECT s.token_hash, u.id AS user_id, s.name, s.key_alias, s.litellm_user_id, s.team_id,
           s.created_at, s.revoked
      FROM sync_keys s LEFT JOIN users u ON u.id = s.litellm_user_id
), classified AS (
    SELECT i.*, k.id IS NULL AS is_new,
           k.id IS NOT NULL AND (
               (k.user_id, k.name, k.key_alias, k.litellm_user_id, k.team_id)
               IS DISTINCT FROM (i.user_id, i.name, i.key_alias, i.litellm_user_id, i.team_id)
               OR (k.revoked_at IS NOT NULL AND NOT i.revoked)
           ) AS is_changed,
           i.revoked AND k.revoked_at IS NULL AS is_revoked
      FROM incoming i LEFT JOIN api_keys k ON k.token_hash = i.token_hash
), merged AS (
    INSERT INTO api_keys AS k
           (id, user_id, name, key_alias, token_hash, litellm_user_id, team_id, created_at, revoked_at)
    SELECT token_hash, user_id, name, key_alias, token_hash, litellm_user_id, team_id,
           COALESCE(created_at, now()), CASE WHEN revoked THEN now() END
      FROM classified WHERE is_new OR is_changed OR is_revoked
    ON CONFLICT (token_hash) DO UPDATE
       SET user_id = EXCLUDED.user_id, name = EXCLUDED.name, key_alias = EXCLUDED.key_alias,
           litellm_user_id = EXCLUDED.litellm_user_id, team_id = EXCLUDED.team_id,
           revoked_at = CASE WHEN EXCLUDED.revoked_at IS NOT NULL
                             THEN COALESCE(k.revoked_at, EXCLUDED.revoked_at) END
     WHERE (k.user_id, k.name, k.key_alias, k.litellm_user_id, k.team_id, k.revoked_at IS NULL)
           IS DISTINCT FROM (EXCLUDED.user_id, EXCLUDED.name, EXCLUDED.key_alias, EXCLUDED.litellm_user_id,
                             EXCLUDED.team_id, EXCLUDED.revoked_at IS NULL)
    RETURNING 1
)
SELECT count(*) FILTER (WHERE is_new), count(*) FILTER (WHERE is_changed),
       count(*) FILTER (WHERE is_revoked)
  FROM classified
"""

_MERGE_TEAMS = """
WITH classified AS (
    SELECT s.*, t.id IS NULL AS is_new,
           t.id IS NOT NULL AND (t.alias IS DISTINCT FROM s.alias OR t.deleted_at IS NOT NULL) AS is_changed
      FROM sync_teams s LEFT JOIN teams t ON t.id = s.id
), merged AS (
    INSERT INTO teams AS t (id, alias, updated_at, deleted_at)
    SELECT id, alias, now(), NULL FROM classified WHERE is_new OR is_changed
    ON CONFLICT (id) DO UPDATE SET alias = EXCLUDED.alias, updated_at = now(), deleted_at = NULL
    RETURNING 1
)
SELECT count(*) FILTER (WHERE is_new), count(*) FILTER (WHERE is_changed) FROM classified
"""

_DELETE_GONE_TEAMS = """
UPDATE teams t SET deleted_at = now()
 WHERE t.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM sync_teams s WHERE s.id = t.id)
"""

_REVOKE_GONE = """
UPDATE api_keys k SET revoked_at = now()
 WHERE k.revoked_at IS NULL AND NOT EXISTS (SELECT 1 FROM sync_keys s WHERE s.token_hash = k.token_hash)
"""


async def _execute(
    conn: psycopg.AsyncConnection[TupleRow], query: str, params: Sequence[Any] | None = None
) -> psycopg.AsyncCursor[TupleRow]:
    note_statement(query)
    return await conn.execute(query, params)


async def _copy(
    conn: psycopg.AsyncConnection[TupleRow], table: str, columns: str, rows: Sequence[tuple[Any, ...]]
) -> None:
    statement = f"COPY {table} ({columns}) FROM STDIN"
    note_statement(statement)
    async with conn.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            await copy.write_row(row)


async def _counts(cursor: psycopg.AsyncCursor[TupleRow]) -> tuple[int, ...]:
    row = await cursor.fetchone()
    assert row is not None  # an aggregate without GROUP BY always returns one row
    return tuple(int(value) for value in row)


async def merge_directory(
    db: Database,
    users: Sequence[UserRow],
    keys: Sequence[KeyRow],
    teams: Sequence[TeamRow] | None = None,
    budgets: Sequence[BudgetRow] | None = None,
) -> SyncCounts:
    """Merge complete listings of users, keys and (unless None) teams into the directory (one
    transaction); unless None, ``budgets`` replace the keys', users' (and, with teams, teams') budgets."""
    async with db.transaction() as conn:
        await _execute(conn, "SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        await _execute(
            conn,
            "CREATE TEMP TABLE sync_users (id text PRIMARY KEY, username text, email text, role text,"
            " department text, created_at timestamptz) ON COMMIT DROP",
        )
        await _execute(
            conn,
            "CREATE TEMP TABLE sync_keys (token_hash char(64) PRIMARY KEY, name text, key_alias text,"
            " litellm_user_id text, team_id text, created_at timestamptz, revoked boolean NOT NULL)"
            " ON COMMIT DROP",
        )
        await _copy(conn, "sync_users", "id, username, email, role, department, created_at", users)
        await _copy(
            conn,
            "sync_keys",
            "token_hash, name, key_alias, litellm_user_id, team_id, created_at, revoked",
            keys,
        )
        await _execute(conn, "ANALYZE sync_users")
        await _execute(conn, "ANALYZE sync_keys")
        users_created, users_updated = await _counts(await _execute(conn, _MERGE_USERS))
        keys_created, keys_updated, keys_revoked = await _counts(await _execute(conn, _MERGE_KEYS))
        gone = (await _execute(conn, _REVOKE_GONE)).rowcount
        teams_created = teams_updated = teams_deleted = 0
        if teams is not None:
            await _execute(
                conn, "CREATE TEMP TABLE sync_teams (id text PRIMARY KEY, alias text) ON COMMIT DROP"
            )
            await _copy(conn, "sync_teams", "id, alias", teams)
            teams_created, teams_updated = await _counts(await _execute(conn, _MERGE_TEAMS))
            teams_deleted = (await _execute(conn, _DELETE_GONE_TEAMS)).rowcount
        budgets_changed = 0
        if budgets is not None:
            entities = [BudgetEntity.API_KEY, BudgetEntity.USER]
            budgets_changed = await merge_budgets(
                conn, budgets, [*entities, BudgetEntity.TEAM] if teams is not None else entities
            )
    return SyncCounts(
        users_created,
        users_updated,
        keys_created,
        keys_updated,
        keys_revoked + gone,
        teams_created,
        teams_updated,
        teams_deleted,
        budgets_changed,
    )


async def sync_directory(db: Database, client: LiteLLMClient, *, redis: Redis | None = None) -> SyncCounts:
    """Page through LiteLLM's users, keys and deleted keys and merge them into the directory.

    With ``redis``, a sync that changed anything invalidates the cached answers (who owns a key decides
    whose usage it is). Directory writes by the host application do not: cached answers can lag them by
    up to ``ANSWER_CACHE_TTL_SECONDS``.
    """
    users, active, deleted, teams = await asyncio.gather(
        client.list_users(), client.list_keys(), client.list_deleted_keys(), client.list_teams()
    )
    keys = _unique_keys(active, deleted)
    if not keys:
        row = await db.fetch_one("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL")
        live = int(row[0]) if row else 0
        if live:
            # An empty listing is far likelier a misconfigured LiteLLM than every key gone at once.
            raise UpstreamUnavailable(
                f"LiteLLM listed no keys at all; refusing to revoke {live} directory keys"
            )
    hashed = (key for key in active if _TOKEN_HASH.fullmatch(str(key.get("token"))))
    budgets = budget_rows(hashed, users, teams)
    counts = await merge_directory(db, _unique_users(users), keys, _unique_teams(teams), budgets)
    if counts.changed:
        await bump_data_version(redis)
    log.info("directory_sync.done", **{name: getattr(counts, name) for name in counts.__dataclass_fields__})
    return counts
