"""Time series of slices: every slice sharing (filter, pinned dimensions, granularity) costs one statement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import partial

from usage_gateway.datasources.db import Database
from usage_gateway.datasources.facts import aggregates as facts
from usage_gateway.datasources.facts.aggregates import Dimension, FactFilter, Granularity, UsageTotals
from usage_gateway.datasources.facts.nested import series_by_paths
from usage_gateway.resolvers.loaders.base import Loader
from usage_gateway.resolvers.loaders.grouped import grouped
from usage_gateway.resolvers.slices import Site, Slice

Series = list[tuple[date, UsageTotals]]
_Group = tuple[FactFilter, tuple[Dimension, ...], Granularity, bool, Site]


@dataclass(frozen=True)
class SeriesKey:
    slice: Slice
    granularity: Granularity
    site: Site = ()

    @property
    def group(self) -> _Group:
        return (self.slice.base, self.slice.dims, self.granularity, self.slice.active_counts, self.site)

    def split(self) -> tuple[_Group, tuple[str, ...]]:
        return self.group, self.slice.path


SeriesLoader = Loader[SeriesKey, Series]


async def _series(db: Database, group: _Group, paths: list[tuple[str, ...]]) -> dict[tuple[str, ...], Series]:
    base, dims, granularity, active, _ = group
    if not dims:
        return {(): await facts.time_series(db, base, granularity, active_counts=active)}
    if len(dims) == 1:
        keys = [path[0] for path in paths]
        by_key = await facts.series_by_group(db, base, dims[0], keys, granularity, active_counts=active)
        return {(key,): series for key, series in by_key.items()}
    return await series_by_paths(db, base, dims, paths, granularity, active_counts=active)


def series_loader(db: Database) -> SeriesLoader:
    return Loader(grouped(SeriesKey.split, partial(_series, db)))
