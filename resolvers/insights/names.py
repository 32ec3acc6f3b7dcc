"""What the insight lists call their entities: the id the rest of the API uses, and a display name."""

from __future__ import annotations

from collections.abc import Sequence

from usage_gateway.datasources.db import Database
from usage_gateway.datasources.directory import lookups as directory
from usage_gateway.datasources.facts.vocabulary import Dimension


async def identify(
    db: Database, dimension: Dimension, keys: Sequence[str]
) -> tuple[dict[str, str], dict[str, str | None]]:
    """(id, name) of each group key of ``dimension``, in one directory lookup at most: a key bucket's
    directory id (byApiKey's ``apiKeyId``) and alias, a user's username or email, a team's alias; the key
    itself and no name where the directory has none (models, providers, pseudo-users, outside keys)."""
    ids = {key: key for key in keys}
    names: dict[str, str | None] = {}
    if dimension is Dimension.USER:
        users = await directory.users_by_ids(db, list(keys))
        names = {key: user.username or user.email for key, user in users.items()}
    elif dimension is Dimension.TEAM:
        teams = await directory.teams_by_ids(db, list(keys))
        names = {key: team.alias for key, team in teams.items()}
    elif dimension is Dimension.API_KEY:
        records = await directory.api_keys_by_token_hashes(db, list(keys))
        ids.update({bucket: record.id for bucket, record in records.items()})
        names = {bucket: record.key_alias or record.name for bucket, record in records.items()}
    return ids, names
