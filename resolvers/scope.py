"""What a viewer may see: the one place a request's filter is clipped to the viewer's scope."""

from __future__ import annotations

from dataclasses import replace

from datasources.facts import FactFilter
from resolvers.viewer import Role, Viewer


def scoped_filter(viewer: Viewer, f: FactFilter) -> FactFilter:
    """The filter narrowed to what ``viewer`` may see: a plain user sees only their own usage."""
    if viewer.roles == {Role.USER}:
        return replace(f, user_ids=(viewer.id,))
    return f
