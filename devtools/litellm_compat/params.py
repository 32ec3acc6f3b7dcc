"""Query-string parsing with FastAPI's semantics: the last value of a repeated parameter wins, every
parameter is validated in signature order by pydantic, and all failures are reported in one 422."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from usage_gateway.devtools.litellm_compat.errors import detail_error, validation_error


@cache
def _int_adapter(ge: int | None, le: int | None) -> TypeAdapter[int]:
    return TypeAdapter(Annotated[int, Field(ge=ge, le=le)])


_BOOL: TypeAdapter[bool] = TypeAdapter(bool)


class _Reader:
    def __init__(self, params: Mapping[str, str]) -> None:
        self._params = params
        self.errors: list[dict[str, Any]] = []

    def text(self, name: str) -> str | None:
        return self._params.get(name)

    def _validate(self, name: str, adapter: TypeAdapter[Any]) -> Any:
        try:
            return adapter.validate_python(self._params[name])
        except ValidationError as exc:
            self.errors.extend(
                {"type": err["type"], "loc": ["query", name], "msg": err["msg"]}
                for err in exc.errors(include_url=False)
            )
            return None

    def integer(self, name: str, default: int, *, ge: int | None = None, le: int | None = None) -> int:
        if name not in self._params:
            return default
        value = self._validate(name, _int_adapter(ge, le))
        return default if value is None else int(value)

    def optional_integer(self, name: str) -> int | None:
        if name not in self._params:
            return None
        value = self._validate(name, _int_adapter(None, None))
        return None if value is None else int(value)

    def boolean(self, name: str, default: bool) -> bool:
        if name not in self._params:
            return default
        value = self._validate(name, _BOOL)
        return default if value is None else bool(value)

    def finish(self) -> None:
        if self.errors:
            raise validation_error(self.errors)


@dataclass(frozen=True, slots=True)
class ActivityQuery:
    start_date: str | None
    end_date: str | None
    model: str | None
    api_key: str | None
    user_id: str | None
    page: int
    page_size: int
    timezone: int | None
    include_current_utc_day: bool
    api_key_limit: int


def parse_activity_query(params: Mapping[str, str], *, aggregated: bool) -> ActivityQuery:
    reader = _Reader(params)
    query = ActivityQuery(
        start_date=reader.text("start_date"),
        end_date=reader.text("end_date"),
        model=reader.text("model"),
        api_key=reader.text("api_key"),
        user_id=reader.text("user_id"),
        page=1 if aggregated else reader.integer("page", 1, ge=1),
        page_size=1000 if aggregated else reader.integer("page_size", 50, ge=1, le=1000),
        timezone=reader.optional_integer("timezone"),
        include_current_utc_day=reader.boolean("include_current_utc_day", False),
        api_key_limit=reader.integer("api_key_limit", 100, ge=1, le=1000) if aggregated else 100,
    )
    reader.finish()
    return query


def _canonical_date(value: str) -> date | None:
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.isoformat() == value else None


def require_dates(query: ActivityQuery | TagActivityQuery) -> tuple[str, str]:
    """The 400 checks of ``get_daily_activity`` (``common_daily_activity.py:87-107``)."""
    if query.start_date is None or query.end_date is None:
        raise detail_error(400, "Please provide start_date and end_date")
    start = _canonical_date(query.start_date)
    end = _canonical_date(query.end_date)
    if start is None or end is None:
        raise detail_error(400, "start_date and end_date must be valid YYYY-MM-DD dates")
    if end < start:
        raise detail_error(400, "end_date must be on or after start_date")
    return query.start_date, query.end_date


def adjust_end_for_timezone(query: ActivityQuery, end_date: str, utc_now: datetime) -> str:
    """``include_current_utc_day`` widens the range to today's UTC date when the caller's local
    today is inside it (``daily_activity_sql.py adjust_dates_for_timezone``); otherwise a no-op."""
    if not query.include_current_utc_day or query.timezone is None:
        return end_date
    caller_local_today = (utc_now - timedelta(minutes=query.timezone)).date().isoformat()
    if end_date < caller_local_today:
        return end_date
    return max(end_date, utc_now.date().isoformat())


@dataclass(frozen=True, slots=True)
class KeyListQuery:
    page: int
    size: int
    user_id: str | None
    team_id: str | None
    organization_id: str | None
    key_hash: str | None
    key_alias: str | None
    return_full_object: bool
    status: str | None
    sort_by: str | None
    sort_order: str


KEY_STATUSES = ("active", "expired", "revoked", "deleted")


def parse_key_list_query(params: Mapping[str, str]) -> KeyListQuery:
    reader = _Reader(params)
    query = KeyListQuery(
        page=reader.integer("page", 1, ge=1),
        size=reader.integer("size", 10, ge=1, le=100),
        user_id=reader.text("user_id"),
        team_id=reader.text("team_id"),
        organization_id=reader.text("organization_id"),
        key_hash=reader.text("key_hash"),
        key_alias=reader.text("key_alias"),
        return_full_object=reader.boolean("return_full_object", False),
        status=reader.text("status"),
        sort_by=reader.text("sort_by"),
        sort_order=reader.text("sort_order") or "desc",
    )
    reader.finish()
    if query.status is not None and query.status not in KEY_STATUSES:
        raise detail_error(400, f"Invalid status value. Must be one of: {', '.join(KEY_STATUSES)}")
    return query


@dataclass(frozen=True, slots=True)
class UserListQuery:
    page: int
    page_size: int
    role: str | None
    user_ids: str | None
    user_email: str | None
    team: str | None
    sort_by: str | None
    sort_order: str


def parse_user_list_query(params: Mapping[str, str]) -> UserListQuery:
    reader = _Reader(params)
    query = UserListQuery(
        page=reader.integer("page", 1, ge=1),
        page_size=reader.integer("page_size", 25, ge=1, le=100),
        role=reader.text("role"),
        user_ids=reader.text("user_ids"),
        user_email=reader.text("user_email"),
        team=reader.text("team"),
        sort_by=reader.text("sort_by"),
        sort_order=reader.text("sort_order") or "asc",
    )
    reader.finish()
    return query


@dataclass(frozen=True, slots=True)
class TagActivityQuery:
    """``get_tag_daily_activity``'s parameters (plain ``int`` page and page size: no bounds at the
    FastAPI level), or the generic aggregated route's for tags (``api_key_limit`` 1..1000)."""

    start_date: str | None
    end_date: str | None
    tags: list[str] | None
    model: str | None
    api_key: str | None
    page: int
    page_size: int
    api_key_limit: int


def parse_tag_activity_query(params: Mapping[str, str], *, aggregated: bool) -> TagActivityQuery:
    reader = _Reader(params)
    tags = reader.text("tags")
    query = TagActivityQuery(
        start_date=reader.text("start_date"),
        end_date=reader.text("end_date"),
        tags=tags.split(",") if tags else None,  # tags.split(",") if tags else None, no trimming
        model=reader.text("model"),
        api_key=reader.text("api_key"),
        page=1 if aggregated else reader.integer("page", 1),
        page_size=1 if aggregated else reader.integer("page_size", 10),
        api_key_limit=reader.integer("api_key_limit", 100, ge=1, le=1000) if aggregated else 100,
    )
    reader.finish()
    return query
