"""The batch skeleton the grouped loaders share: split each key into the part it shares with others (its
group: a site, a filter with its pinned dimensions…) and its own part (a user id, a slice's path), run one
query per group, all groups at once, and answer each key from its group's answer, in the order asked.

Each loader keeps its own file and its own query; this is only the grouping around it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import TypeVar

from usage_gateway.resolvers.loaders.base import BatchFn

K = TypeVar("K", bound=Hashable)
G = TypeVar("G", bound=Hashable)
P = TypeVar("P", bound=Hashable)
V = TypeVar("V")


def grouped(
    split: Callable[[K], tuple[G, P]], query: Callable[[G, list[P]], Awaitable[Mapping[P, V]]]
) -> BatchFn[K, V]:
    """A batch function for keys that ``split`` into (group, own part): one ``query`` per group, given the
    group's parts in the order asked, and answering each of them (a part missing from its answer is a
    KeyError: the query says what an unknown part is worth, e.g. None)."""

    async def load(keys: list[K]) -> list[V]:
        parts = [split(key) for key in keys]
        groups: dict[G, list[P]] = defaultdict(list)
        for group, part in parts:
            groups[group].append(part)
        answers = await asyncio.gather(*(query(group, members) for group, members in groups.items()))
        by_group = dict(zip(groups, answers, strict=True))
        return [by_group[group][part] for group, part in parts]

    return load
