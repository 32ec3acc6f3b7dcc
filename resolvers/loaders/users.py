"""Directory users by id: one statement per site (see :data:`resolvers.slices.Site`)."""

from __future__ import annotations

from usage_gateway.datasources.db import Database
from usage_gateway.datasources.directory.lookups import UserRecord, users_by_ids
from usage_gateway.resolvers.loaders.base import Loader
from usage_gateway.resolvers.loaders.grouped import grouped
from usage_gateway.resolvers.slices import Site

UserKey = tuple[Site, str]
UserLoader = Loader[UserKey, UserRecord | None]


def user_loader(db: Database) -> UserLoader:
    async def of_site(_site: Site, ids: list[str]) -> dict[str, UserRecord | None]:
        found = await users_by_ids(db, ids)
        return {user_id: found.get(user_id) for user_id in ids}

    return Loader(grouped(lambda key: key, of_site))  # a key is (site, its own part) already
