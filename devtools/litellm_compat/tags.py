"""``LiteLLM_DailyTagSpend`` rows and the ``/tag/daily/activity`` routes of LiteLLM 1.109.1.

LiteLLM's ``get_tag_daily_activity`` (``proxy/management_endpoints/tag_management_endpoints.py:729-795``)
calls the same ``get_daily_activity`` as the user route with ``table_name="litellm_dailytagspend"``,
``entity_id_field="tag"`` and no entity metadata, so a page is computed exactly like a user page
(:func:`.activity.paginated_activity`): rows ``date DESC, id ASC``, pages over rows, totals of the page
only, ``entities`` keyed by tag (``Unassigned`` for a NULL or empty tag) with ``metadata: {}``. Its query
differs: ``tags`` is split on ``,`` (no trimming) into ``tag IN (...)``, ``page``/``page_size`` are plain
ints (``page_size`` default 10, no upper bound), there is no ``user_id`` nor ``timezone``, and an internal
user is limited to their own keys (``_get_tag_daily_activity_api_key_filter``, ``:197-213``): an
``api_key`` outside them answers the default empty response.

A request carrying N tags is N rows, one per tag: summing across tags double counts (``:781-788``).
"""

from __future__ import annotations

import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from usage_gateway.devtools.litellm_compat.activity import empty_response, paginated_activity, top_api_keys
from usage_gateway.devtools.litellm_compat.auth import Caller
from usage_gateway.devtools.litellm_compat.errors import detail_error
from usage_gateway.devtools.litellm_compat.params import parse_tag_activity_query, require_dates
from usage_gateway.devtools.litellm_compat.view import (
    ROW_DEFAULTS,
    UNKNOWN_MODEL,
    Row,
    StoreView,
    api_key_bucket,
    api_key_from_bucket,
)

# Every column of LiteLLM_DailyTagSpend in schema order (schema.prisma:1085-1126), with defaults: the
# user table's columns, with `tag` and `request_id` in place of `user_id`.
TAG_ROW_DEFAULTS: tuple[tuple[str, Any], ...] = (
    ("id", None),
    ("tag", None),
    ("request_id", None),
    *(column for column in ROW_DEFAULTS if column[0] not in ("id", "user_id")),
)
TAG_ROW_COLUMNS: tuple[str, ...] = tuple(name for name, _ in TAG_ROW_DEFAULTS)


def normalize_tag_row(row: Mapping[str, Any], stamp: str) -> Row:
    """A copy of a tag row with every column, in schema order; ``stamp`` fills missing timestamps."""
    if not row.get("date"):
        raise ValueError(f"a daily tag row needs a date: {row!r}")
    normalized: Row = {name: row.get(name, default) for name, default in TAG_ROW_DEFAULTS}
    normalized["id"] = normalized["id"] or str(uuid.uuid4())
    normalized["api_key"] = normalized["api_key"] or ""
    normalized["created_at"] = normalized["created_at"] or stamp
    normalized["updated_at"] = normalized["updated_at"] or normalized["created_at"]
    return normalized


class TagView:
    """The tag rows of one data version in LiteLLM's page order, with a date index. Key metadata is
    the user view's (LiteLLM describes keys from its key tables whatever the route)."""

    def __init__(self, rows: Sequence[Row], users_view: StoreView) -> None:
        ordered = sorted(rows, key=lambda row: row["id"])
        ordered.sort(key=lambda row: row["date"], reverse=True)  # stable: date DESC, id ASC
        self.rows = ordered
        self.users_view = users_view
        self._bounds: dict[str, tuple[int, int]] = {}
        for index, row in enumerate(ordered):
            first, _ = self._bounds.get(row["date"], (index, index))
            self._bounds[row["date"]] = (first, index + 1)
        self._days = sorted(self._bounds)

    def select(
        self,
        start: str,
        end: str,
        *,
        tags: list[str] | None,
        model: str | None,
        api_keys: list[str] | None,
    ) -> list[Row]:
        days = self._days[bisect_left(self._days, start) : bisect_right(self._days, end)]
        selected = self.rows[self._bounds[days[-1]][0] : self._bounds[days[0]][1]] if days else []
        if tags is not None:
            wanted = set(tags)
            selected = [row for row in selected if row["tag"] in wanted]
        if model == UNKNOWN_MODEL:
            selected = [row for row in selected if row["model"] in (None, "", UNKNOWN_MODEL)]
        elif model:
            selected = [row for row in selected if row["model"] == model]
        if api_keys is not None:
            raw = {api_key_from_bucket(key) for key in api_keys}
            selected = [row for row in selected if row["api_key"] in raw]
        return selected


@dataclass(frozen=True, slots=True)
class _Scope:
    api_keys: list[str] | None
    nothing: bool


def _key_scope(view: TagView, caller: Caller, requested: str | None) -> _Scope:
    """``_get_tag_daily_activity_api_key_filter``: admins (and the master key) as asked; an internal
    user only their own keys, and nothing at all for a key that is not theirs."""
    if caller.is_admin:
        return _Scope([requested] if requested else None, nothing=False)
    owned = sorted(
        token
        for token, key in view.users_view.active_keys.items()
        if caller.user_id is not None and key.get("user_id") == caller.user_id
    )
    if requested is not None:
        return _Scope([requested], nothing=False) if requested in owned else _Scope(None, nothing=True)
    return _Scope(owned, nothing=False)


def tag_activity(
    view: TagView, caller: Caller, params: Mapping[str, str], *, aggregated: bool
) -> dict[str, Any]:
    query = parse_tag_activity_query(params, aggregated=aggregated)
    scope = _key_scope(view, caller, query.api_key)
    if scope.nothing:
        return empty_response()  # SpendAnalyticsPaginatedResponse(results=[])
    if query.start_date is None or query.end_date is None:
        raise detail_error(400, "Please provide start_date and end_date")
    start, end = require_dates(query)
    if query.page_size < 1 or query.page < 1:
        raise detail_error(400, "page and page_size must be at least 1")
    selection = view.select(start, end, tags=query.tags, model=query.model, api_keys=scope.api_keys)
    if aggregated:
        return aggregated_tag_activity(view, selection, query.api_key_limit)
    return paginated_activity(view.users_view, selection, query.page, query.page_size, entity_field="tag")


def aggregated_tag_activity(view: TagView, selection: Sequence[Row], api_key_limit: int) -> dict[str, Any]:
    """The whole range in one response, every date once with its complete numbers and ``entities``
    filled (the generic aggregated route's ``include_entity_breakdown=True``), per-key lists limited
    to the top ``api_key_limit`` keys by spend.

    Not PostgreSQL's GROUPING SETS plan (as :func:`.activity.aggregated_activity` emulates for users):
    rows are summed in page order and dict keys listed first-seen, so the numbers equal LiteLLM's up to
    the last bits of float sums, and the order of dict keys may differ from a real LiteLLM's."""
    top, distinct = top_api_keys(selection, api_key_limit)
    shown = {api_key_bucket(key) for key in top}
    body = paginated_activity(view.users_view, selection, 1, max(1, len(selection)), entity_field="tag")
    for day in body["results"]:
        for name, group in day["breakdown"].items():
            if name == "api_keys":
                day["breakdown"][name] = {key: entry for key, entry in group.items() if key in shown}
                continue
            for bucket in group.values():
                if "api_key_breakdown" in bucket:
                    bucket["api_key_breakdown"] = {
                        key: entry for key, entry in bucket["api_key_breakdown"].items() if key in shown
                    }
    body["metadata"].update(
        page=1, total_pages=1, has_more=False, api_key_limit=api_key_limit, total_api_keys=distinct
    )
    return body
