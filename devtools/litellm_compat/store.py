"""The data a LiteLLM proxy would hold: virtual keys, users and ``LiteLLM_DailyUserSpend`` rows.

The store is shared between the test thread (which replaces data) and the server thread (which reads it
on every request), so every mutation happens under one lock and bumps a version; readers work on an
immutable :class:`StoreView` rebuilt lazily after a structural change.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from usage_gateway.devtools.litellm_compat.tags import TagView, normalize_tag_row
from usage_gateway.devtools.litellm_compat.view import ROW_DEFAULTS, Row, StoreView, hash_token

MASTER_KEY = "sk-master-1234"

ROW_COLUMNS: tuple[str, ...] = tuple(name for name, _ in ROW_DEFAULTS)
_ROW_COLUMN_SET = frozenset(ROW_COLUMNS)


def utc_timestamp(moment: datetime | None = None) -> str:
    """A timestamp as the golden files spell them: ``2026-11-05T11:23:27.491Z``."""
    moment = moment or datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def normalize_row(row: Mapping[str, Any]) -> Row:
    """A copy of ``row`` with every column present, in schema order (extra keys kept at the end)."""
    complete = tuple(row) == ROW_COLUMNS and row["api_key"] is not None
    if complete and row["id"] and row["date"] and row["created_at"] and row["updated_at"]:
        return dict(row)  # the common case, kept cheap for large data sets
    if not row.get("date"):
        raise ValueError(f"a daily row needs a date: {row!r}")
    normalized: Row = {name: row.get(name, default) for name, default in ROW_DEFAULTS}
    if not normalized["id"]:
        normalized["id"] = str(uuid.uuid4())
    if normalized["api_key"] is None:
        normalized["api_key"] = ""
    if normalized["created_at"] is None:
        normalized["created_at"] = utc_timestamp()
    if normalized["updated_at"] is None:
        normalized["updated_at"] = normalized["created_at"]
    normalized.update((name, value) for name, value in row.items() if name not in _ROW_COLUMN_SET)
    return normalized


def _normalize_key(key: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a key row; ``token`` (the stored hash) is derived from ``raw_key`` when missing."""
    copied = dict(key)
    if not copied.get("token"):
        copied["token"] = hash_token(copied["raw_key"])
    return copied


@dataclass(frozen=True, slots=True)
class RequestRecord:
    path: str
    params: dict[str, str]
    status: int


class LiteLLMStore:
    """Keys, users and daily rows; thread-safe. Row dicts are the store's own copies."""

    def __init__(
        self,
        keys: list[dict[str, Any]],
        users: list[dict[str, Any]],
        rows: list[dict[str, Any]],
        master_key: str = MASTER_KEY,
        tag_rows: list[dict[str, Any]] | None = None,
    ) -> None:
        self.master_key = master_key
        self._lock = threading.RLock()
        self._keys = [_normalize_key(key) for key in keys]
        self._users = [dict(user) for user in users]
        self._teams: list[Row] = []
        self._rows: list[Row] = []
        self._by_id: dict[str, Row] = {}
        self._view: StoreView | None = None
        self._tag_rows: list[Row] = []
        self._tag_view: TagView | None = None
        self._values_version = 0
        self.request_log: list[RequestRecord] = []
        self.set_rows(rows)
        self.set_tag_rows(tag_rows or [])

    @classmethod
    def from_golden(cls, path: Path) -> LiteLLMStore:
        data = orjson.loads(path.read_bytes())
        return cls(keys=data["keys"], users=data["users"], rows=data["rows"], tag_rows=data.get("tag_rows"))

    # -- data -------------------------------------------------------------------------------------

    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        normalized = [normalize_row(row) for row in rows]
        by_id = self._index(normalized, {})
        with self._lock:
            self._rows, self._by_id = normalized, by_id
            self._changed()

    def add_rows(self, rows: list[dict[str, Any]]) -> None:
        """Append rows (the caller keeps the unique constraint; ids must be new)."""
        normalized = [normalize_row(row) for row in rows]
        with self._lock:
            self._by_id = self._index(normalized, dict(self._by_id))
            self._rows = [*self._rows, *normalized]
            self._changed()

    def set_tag_rows(self, rows: list[dict[str, Any]]) -> None:
        """Replace the ``LiteLLM_DailyTagSpend`` rows (one per tag of a request's cell)."""
        stamp = utc_timestamp()
        normalized = [normalize_tag_row(row, stamp) for row in rows]
        if len({row["id"] for row in normalized}) != len(normalized):
            raise ValueError("duplicate daily tag row id")
        with self._lock:
            self._tag_rows = normalized
            self._changed()

    def tag_rows(self) -> list[Row]:
        with self._lock:
            return [dict(row) for row in self._tag_rows]

    def set_keys(self, keys: list[dict[str, Any]]) -> None:
        with self._lock:
            self._keys = [_normalize_key(key) for key in keys]
            self._changed()

    def set_users(self, users: list[dict[str, Any]]) -> None:
        with self._lock:
            self._users = [dict(user) for user in users]
            self._changed()

    def set_teams(self, teams: list[dict[str, Any]]) -> None:
        """Replace the ``LiteLLM_TeamTable`` rows (``/team/list``); a deleted team is one left out."""
        with self._lock:
            self._teams = [dict(team) for team in teams]
            self._changed()

    def teams(self) -> list[Row]:
        with self._lock:
            return [dict(team) for team in self._teams]

    def rows(self) -> list[Row]:
        """Copies of every row, in insertion order."""
        with self._lock:
            return [dict(row) for row in self._rows]

    def rows_on(self, day: str) -> list[Row]:
        with self._lock:
            return [dict(row) for row in self._rows if row["date"] == day]

    def increment_row(self, row_id: str, deltas: Mapping[str, int | float]) -> None:
        """Add to a row's counters in place, the way LiteLLM's upsert grows today's rows."""
        with self._lock:
            row = self._by_id[row_id]
            for column, delta in deltas.items():
                row[column] = (row[column] or 0) + delta
            row["updated_at"] = utc_timestamp()
            self._values_version += 1

    @property
    def values_version(self) -> int:
        """Changes whenever any number the API reports may have changed."""
        with self._lock:
            return self._values_version

    def view(self) -> StoreView:
        with self._lock:
            if self._view is None:
                self._view = StoreView(self._rows, self._keys, self._users, self.master_key)
            return self._view

    def tag_view(self) -> TagView:
        with self._lock:
            if self._tag_view is None:
                self._tag_view = TagView(self._tag_rows, self.view())
            return self._tag_view

    def _changed(self) -> None:
        self._view = None
        self._tag_view = None
        self._values_version += 1

    @staticmethod
    def _index(rows: Iterable[Row], by_id: dict[str, Row]) -> dict[str, Row]:
        for row in rows:
            if row["id"] in by_id:
                raise ValueError(f"duplicate daily row id {row['id']!r}")
            by_id[row["id"]] = row
        return by_id

    # -- request log ------------------------------------------------------------------------------

    def log_request(self, record: RequestRecord) -> None:
        with self._lock:
            self.request_log.append(record)

    def requests_for(self, path: str) -> list[RequestRecord]:
        with self._lock:
            return [record for record in self.request_log if record.path == path]

    def clear_log(self) -> None:
        with self._lock:
            self.request_log.clear()
