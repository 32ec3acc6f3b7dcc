"""Directory users by id: one statement per site (see :data:`resolvers.slices.Site`)."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from usage_gateway.datasources.db import Database
from usage_gateway.datasources.directory.lookups import UserRecord, users_by_ids
from usage_gateway.resolvers.loaders.base import Loader
from usage_gateway.resolvers.slices import Site

UserKey = tuple[Site, str]
UserLoader = Loader[UserKey, UserRecord | None]


def user_loader(db: Database) -> UserLoader:
    async def load(keys: list[UserKey]) -> list[UserRecord | None]:
        by_site: dict[Site, list[str]] = defaultdict(list)
        for site, user_id in keys:
            by_site[site].append(user_id)
        found = await asyncio.gather(*(users_by_ids(db, ids) for ids in by_site.values()))
        records = {user_id: record for part in found for user_id, record in part.items()}
        return [records.get(user_id) for _, user_id in keys]

    return Loader(load)
