"""The request's DataLoaders (aiodataloader, through :class:`base.Loader`), one per module, built fresh
for every request."""

from __future__ import annotations

from dataclasses import dataclass

from usage_gateway.datasources.db import Database
from usage_gateway.resolvers.loaders.api_keys import ApiKeyLoader, api_key_loader
from usage_gateway.resolvers.loaders.series import SeriesLoader, series_loader
from usage_gateway.resolvers.loaders.top import TopLoader, top_loader
from usage_gateway.resolvers.loaders.totals import TotalsLoader, totals_loader
from usage_gateway.resolvers.loaders.users import UserLoader, user_loader


@dataclass(frozen=True)
class Loaders:
    totals: TotalsLoader
    series: SeriesLoader
    top: TopLoader
    users: UserLoader
    api_keys: ApiKeyLoader

    @classmethod
    def build(cls, db: Database) -> Loaders:
        return cls(totals_loader(db), series_loader(db), top_loader(db), user_loader(db), api_key_loader(db))
