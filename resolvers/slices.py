"""Slices and nodes: which facts a breakdown node stands for, at any nesting depth.

A *slice* is the request's filter narrowed to fixed values of some dimensions (a user, or a user and a
model). A *node* is one group of a slice, e.g. a model among a user's models; its own slice adds its key.
Nested fields (a node's series, its top groups) are asked per node slice, and the loaders batch every
slice that shares the filter and the pinned dimensions into one statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from usage_gateway.datasources.facts.aggregates import Dimension, FactFilter, GroupRow

Pin = tuple[Dimension, str]
# The GraphQL field (response path without list indices) that produced a node. Loads for nodes of the
# same site share one batch: a page costs one statement per nested field, deterministically, and never
# more however many nodes it has.
Site = tuple[str, ...]
_DIMENSION_ORDER = {dimension: i for i, dimension in enumerate(Dimension)}


@dataclass(frozen=True)
class Slice:
    base: FactFilter
    pins: tuple[Pin, ...] = ()  # at most one per dimension, in Dimension order
    # Whether the request asks for active users/keys/models anywhere: they are the costly aggregates.
    active_counts: bool = True

    def pin(self, dimension: Dimension, key: str) -> Slice:
        pins = dict(self.pins)
        # A group of a slice always agrees with the slice's pins, so this never contradicts one.
        pins[dimension] = key
        ordered = tuple(sorted(pins.items(), key=lambda pin: _DIMENSION_ORDER[pin[0]]))
        return Slice(self.base, ordered, self.active_counts)

    @property
    def dims(self) -> tuple[Dimension, ...]:
        return tuple(dimension for dimension, _ in self.pins)

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(key for _, key in self.pins)


@dataclass(frozen=True)
class Node:
    """A group of ``dimension`` within ``parent``; ``parent_spend`` is the parent slice's total spend."""

    parent: Slice
    dimension: Dimension
    row: GroupRow
    parent_spend: Decimal
    site: Site = ()

    @property
    def key(self) -> str:
        return self.row.key

    @property
    def slice(self) -> Slice:
        return self.parent.pin(self.dimension, self.row.key)

    @property
    def share(self) -> float:
        """The node's fraction of its parent's spend (of the filtered total at the first level)."""
        if not self.parent_spend:
            return 0.0
        return float(self.row.totals.spend / self.parent_spend)
