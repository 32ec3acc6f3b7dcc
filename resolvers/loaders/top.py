"""The top groups of slices (a user's models, a model's users): one statement per (filter, pinned
dimensions, inner dimension, first), whatever the number of slices."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from usage_gateway.datasources.db import Database
from usage_gateway.datasources.facts import aggregates as facts
from usage_gateway.datasources.facts.aggregates import Dimension, FactFilter, GroupRow
from usage_gateway.datasources.facts.nested import top_within_paths
from usage_gateway.resolvers.loaders.base import Loader
from usage_gateway.resolvers.loaders.grouped import grouped
from usage_gateway.resolvers.slices import Site, Slice

_Group = tuple[FactFilter, tuple[Dimension, ...], Dimension, int, bool, Site]


@dataclass(frozen=True)
class TopKey:
    slice: Slice  # pins at least one dimension: the first level is a paged breakdown instead
    inner: Dimension
    first: int
    site: Site = ()

    @property
    def group(self) -> _Group:
        return (self.slice.base, self.slice.dims, self.inner, self.first, self.slice.active_counts, self.site)

    def split(self) -> tuple[_Group, tuple[str, ...]]:
        return self.group, self.slice.path


TopLoader = Loader[TopKey, list[GroupRow]]


async def _top(
    db: Database, group: _Group, paths: list[tuple[str, ...]]
) -> dict[tuple[str, ...], list[GroupRow]]:
    base, dims, inner, first, active, _ = group
    if len(dims) == 1:
        keys = [path[0] for path in paths]
        by_key = await facts.top_within(db, base, dims[0], keys, inner, first=first, active_counts=active)
        return {(key,): rows for key, rows in by_key.items()}
    return await top_within_paths(db, base, dims, paths, inner, first=first, active_counts=active)


def top_loader(db: Database) -> TopLoader:
    return Loader(grouped(TopKey.split, partial(_top, db)))
