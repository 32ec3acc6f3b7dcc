"""Directory keys (with their owner) by LiteLLM key bucket: one ``token_hash = ANY`` query per site (see
:data:`resolvers.slices.Site`), so per request a fixed number whatever the number of nodes."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from usage_gateway.datasources.db import Database
from usage_gateway.datasources.directory.lookups import ApiKeyRecord, api_keys_by_token_hashes
from usage_gateway.resolvers.loaders.base import Loader
from usage_gateway.resolvers.slices import Site

ApiKeyKey = tuple[Site, str]
ApiKeyLoader = Loader[ApiKeyKey, ApiKeyRecord | None]


def api_key_loader(db: Database) -> ApiKeyLoader:
    async def load(keys: list[ApiKeyKey]) -> list[ApiKeyRecord | None]:
        by_site: dict[Site, list[str]] = defaultdict(list)
        for site, bucket in keys:
            by_site[site].append(bucket)
        found = await asyncio.gather(*(api_keys_by_token_hashes(db, buckets) for buckets in by_site.values()))
        records = {bucket: record for part in found for bucket, record in part.items()}
        return [records.get(bucket) for _, bucket in keys]

    return Loader(load)
