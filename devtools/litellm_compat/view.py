"""An immutable view of the store for one data version: the rows in LiteLLM's page order with a date
index, and the key/user lookups LiteLLM runs to describe keys and users in a response."""

from __future__ import annotations

import hashlib
from bisect import bisect_left, bisect_right
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from usage_gateway.devtools.litellm_compat.postgres import column_ndistinct

# Every column of LiteLLM_DailyUserSpend in schema order, with the value a missing column gets.
ROW_DEFAULTS: tuple[tuple[str, Any], ...] = (
    ("id", None),
    ("user_id", None),
    ("date", None),
    ("api_key", ""),
    ("model", None),
    ("model_group", None),
    ("custom_llm_provider", None),
    ("mcp_namespaced_tool_name", ""),
    ("endpoint", None),
    ("prompt_tokens", 0),
    ("completion_tokens", 0),
    ("cache_read_input_tokens", 0),
    ("cache_creation_input_tokens", 0),
    ("compression_saved_tokens", 0),
    ("compression_savings_spend", 0.0),
    ("prompt_caching_savings_spend", 0.0),
    ("gateway_injected_caching_savings_spend", 0.0),
    ("autorouter_savings_spend", 0.0),
    ("spend", 0.0),
    ("api_requests", 0),
    ("successful_requests", 0),
    ("failed_requests", 0),
    ("total_response_time_ms", 0),
    ("timed_requests", 0),
    ("created_at", None),
    ("updated_at", None),
)

Row = dict[str, Any]

UNATTRIBUTED = "unattributed"
RAW_PREFIX = "raw:"
UNKNOWN_MODEL = "unknown-model"
_CACHE_SIZE = 64


def hash_token(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def parse_timestamp(value: str) -> datetime:
    """An ISO-8601 timestamp; naive ones are UTC, as LiteLLM's columns are."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def api_key_bucket(api_key: str) -> str:
    """The name a row's key gets in ``api_keys`` and every ``api_key_breakdown``."""
    if not api_key:
        return UNATTRIBUTED
    if api_key == UNATTRIBUTED or api_key.startswith(RAW_PREFIX):
        return RAW_PREFIX + api_key
    return api_key


def api_key_from_bucket(bucket: str) -> str:
    """The inverse of :func:`api_key_bucket`, applied to the ``api_key`` query filter."""
    if bucket == UNATTRIBUTED:
        return ""
    if bucket.startswith(RAW_PREFIX):
        return bucket[len(RAW_PREFIX) :]
    return bucket


class StoreView:
    def __init__(
        self, rows: Sequence[Row], keys: Sequence[Row], users: Sequence[Row], master_key: str
    ) -> None:
        self._stored = rows  # insertion order: the order a sequential scan of LiteLLM's table returns
        ordered = sorted(rows, key=lambda row: row["id"])
        ordered.sort(key=lambda row: row["date"], reverse=True)  # stable: date DESC, id ASC
        self.rows: list[Row] = ordered
        self._storage_positions: dict[str, int] | None = None
        self._ndistinct: dict[str, float] = {}
        self._day_bounds: dict[str, tuple[int, int]] = {}
        for index, row in enumerate(ordered):
            first, _ = self._day_bounds.get(row["date"], (index, index))
            self._day_bounds[row["date"]] = (first, index + 1)
        self._days = sorted(self._day_bounds)

        self.master_token = hash_token(master_key)
        self.active_keys: dict[str, Row] = {key["token"]: key for key in keys if not key.get("deleted")}
        self.deleted_keys: list[Row] = [key for key in keys if key.get("deleted")]
        self._newest_deleted: dict[str, Row] = {}
        for key in sorted(self.deleted_keys, key=lambda key: key.get("deleted_at") or ""):
            self._newest_deleted[key["token"]] = key
        self.users: dict[str, Row] = {user["user_id"]: user for user in users}
        self.key_counts: dict[str, int] = defaultdict(int)
        for key in self.active_keys.values():
            if key.get("user_id"):
                self.key_counts[key["user_id"]] += 1

        self._owners: dict[str, str | None] | None = None
        self._key_metadata: dict[str, dict[str, Any]] = {}
        self._entity_metadata: dict[str, dict[str, Any]] = {}
        self._selections: OrderedDict[tuple[Any, ...], list[Row]] = OrderedDict()
        self.bodies: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()

    # -- row selection ----------------------------------------------------------------------------

    def select(
        self,
        start: str,
        end: str,
        *,
        api_key: str | None = None,
        model: str | None = None,
        user_id: str | None = None,
    ) -> list[Row]:
        """The rows a query matches, in LiteLLM's ``ORDER BY date DESC, id ASC``.

        ``api_key`` is the bucket name a client sends back (``unattributed``, ``raw:…``). An empty
        ``api_key`` or ``model`` means no filter, but ``user_id=""`` selects the owner-less rows (LiteLLM
        passes it on as ``user_id = ANY([''])``; see buckets.json)."""
        cache_key = (start, end, api_key or None, model or None, user_id)
        cached = self._selections.get(cache_key)
        if cached is not None:
            self._selections.move_to_end(cache_key)
            return cached
        days = self._days[bisect_left(self._days, start) : bisect_right(self._days, end)]
        selected = self.rows[self._day_bounds[days[-1]][0] : self._day_bounds[days[0]][1]] if days else []
        if api_key:
            raw_key = api_key_from_bucket(api_key)
            selected = [row for row in selected if row["api_key"] == raw_key]
        if model == UNKNOWN_MODEL:
            selected = [row for row in selected if row["model"] in (None, "", UNKNOWN_MODEL)]
        elif model:
            selected = [row for row in selected if row["model"] == model]
        if user_id is not None:
            selected = [row for row in selected if row["user_id"] == user_id]
        self._selections[cache_key] = selected
        if len(self._selections) > _CACHE_SIZE:
            self._selections.popitem(last=False)
        return selected

    def in_storage_order(self, rows: Sequence[Row]) -> list[Row]:
        """``rows`` in the order they were stored, which is the order PostgreSQL's sequential scan of a
        table that is only ever appended to returns them (rows grown in place keep their place)."""
        if self._storage_positions is None:
            self._storage_positions = {row["id"]: index for index, row in enumerate(self._stored)}
        positions = self._storage_positions
        return sorted(rows, key=lambda row: positions[row["id"]])

    def ndistinct(self, column: str) -> float:
        """The planner's ``n_distinct`` of a column of the whole table, as an ANALYZE that reads every
        row computes it (:func:`usage_gateway.devtools.litellm_compat.postgres.column_ndistinct`)."""
        found = self._ndistinct.get(column)
        if found is None:
            values = [row[column] for row in self.rows]
            found = self._ndistinct[column] = column_ndistinct(values, len(self.rows))
        return found

    def remember_body(self, cache_key: tuple[Any, ...], body: bytes) -> None:
        self.bodies[cache_key] = body
        if len(self.bodies) > _CACHE_SIZE:
            self.bodies.popitem(last=False)

    # -- metadata ---------------------------------------------------------------------------------

    def key_metadata(self, api_key: str) -> dict[str, Any]:
        """``KeyMetadata`` of a raw ``api_key`` value: the key table, else the newest archived copy of a
        deleted key, else nothing; an owner-less key not in the key table gets the owner its daily rows
        agree on; ``user_email`` comes from the user table. The empty key is "Unattributed"."""
        cached = self._key_metadata.get(api_key)
        if cached is not None:
            return cached
        if not api_key:
            metadata: dict[str, Any] = {
                "key_alias": "Unattributed",
                "team_id": None,
                "user_id": None,
                "user_email": None,
                "key_exists": False,
            }
        else:
            key = self.active_keys.get(api_key)
            exists = key is not None
            if key is None:
                key = self._newest_deleted.get(api_key, {})
            user_id = key.get("user_id")
            if not user_id and not exists:
                user_id = self._owners_index().get(api_key)
            user = self.users.get(user_id) if user_id else None
            metadata = {
                "key_alias": key.get("key_alias"),
                "team_id": key.get("team_id"),
                "user_id": user_id,
                "user_email": user.get("user_email") if user else None,
                "key_exists": exists,
            }
        self._key_metadata[api_key] = metadata
        return metadata

    def entity_metadata(self, user_id: str | None) -> dict[str, Any]:
        """``entities[*].metadata`` on the user route: the user's email and alias if the user exists."""
        if not user_id:
            return {}
        cached = self._entity_metadata.get(user_id)
        if cached is None:
            user = self.users.get(user_id)
            cached = (
                {"user_email": user.get("user_email"), "user_alias": user.get("user_alias")} if user else {}
            )
            self._entity_metadata[user_id] = cached
        return cached

    def _owners_index(self) -> dict[str, str | None]:
        if self._owners is None:
            owners: dict[str, set[str]] = defaultdict(set)
            for row in self.rows:
                if row["user_id"]:
                    owners[row["api_key"]].add(row["user_id"])
            self._owners = {key: next(iter(ids)) if len(ids) == 1 else None for key, ids in owners.items()}
        return self._owners
