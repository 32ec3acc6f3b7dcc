"""Looking ahead at what a query selects, to skip the aggregates nobody asked for."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from graphql.pyutils import Path
from strawberry.types import Info
from strawberry.types.nodes import Selection

ACTIVE_COUNTS = frozenset({"activeUsers", "activeApiKeys", "activeModels"})


def selects_any(selections: Iterable[Selection], names: frozenset[str]) -> bool:
    """Whether a field named in ``names`` appears anywhere below ``selections`` (fragments included)."""
    for selection in selections:
        if getattr(selection, "name", None) in names or selects_any(selection.selections, names):
            return True
    return False


def site(info: Info[Any, Any]) -> tuple[str, ...]:
    """The field being resolved, as its response path without list indices (``usage.byUser.nodes…``)."""
    keys: list[str] = []
    path: Path | None = info.path
    while path is not None:
        if isinstance(path.key, str):
            keys.append(path.key)
        path = path.prev
    return tuple(reversed(keys))
