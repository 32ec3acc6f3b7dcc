"""Directory keys (with their owner) by LiteLLM key bucket: one ``token_hash = ANY`` query per site (see
:data:`resolvers.slices.Site`), so per request a fixed number whatever the number of nodes."""

from __future__ import annotations

from usage_gateway.datasources.db import Database
from usage_gateway.datasources.directory.lookups import ApiKeyRecord, api_keys_by_token_hashes
from usage_gateway.resolvers.loaders.base import Loader
from usage_gateway.resolvers.loaders.grouped import grouped
from usage_gateway.resolvers.slices import Site

ApiKeyKey = tuple[Site, str]
ApiKeyLoader = Loader[ApiKeyKey, ApiKeyRecord | None]


def api_key_loader(db: Database) -> ApiKeyLoader:
    async def of_site(_site: Site, buckets: list[str]) -> dict[str, ApiKeyRecord | None]:
        found = await api_keys_by_token_hashes(db, buckets)
        return {bucket: found.get(bucket) for bucket in buckets}

    return Loader(grouped(lambda key: key, of_site))  # a key is (site, its own part) already
