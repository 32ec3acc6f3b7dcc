"""Looking ahead at what a query selects, to skip the aggregates nobody asked for."""

from __future__ import annotations

from typing import Any

from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode, SelectionSetNode
from graphql.pyutils import Path
from strawberry.types import Info

ACTIVE_COUNTS = frozenset({"activeUsers", "activeApiKeys", "activeModels"})


def selects_any(info: Info[Any, Any], names: frozenset[str]) -> bool:
    """Whether a field named in ``names`` appears anywhere below the field being resolved (fragments
    included).

    Walks graphql-core's document, each fragment once: Strawberry's ``info.selected_fields`` expands every
    spread of every fragment, which a document of fragments spreading each other twice makes exponential.
    """
    raw = info._raw_info
    seen: set[str] = set()

    def walk(selection_set: SelectionSetNode | None) -> bool:
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode) and selection.name.value in names:
                return True
            if isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in seen:
                    continue
                seen.add(name)
                fragment = raw.fragments.get(name)
                if fragment is not None and walk(fragment.selection_set):
                    return True
            elif isinstance(selection, FieldNode | InlineFragmentNode) and walk(selection.selection_set):
                return True
        return False

    return any(walk(node.selection_set) for node in raw.field_nodes)


def site(info: Info[Any, Any]) -> tuple[str, ...]:
    """The field being resolved, as its response path without list indices (``usage.byUser.nodes…``)."""
    keys: list[str] = []
    path: Path | None = info.path
    while path is not None:
        if isinstance(path.key, str):
            keys.append(path.key)
        path = path.prev
    return tuple(reversed(keys))
