"""``/key/list`` and ``/user/list`` bodies (CONTRACT.md §8, golden/directory.json).

Full key objects are LiteLLM's ``UserAPIKeyAuth`` (organization renamed ``org_id``), archived keys its
``LiteLLM_DeletedVerificationToken``; fields absent from a stored key take the defaults seen in the
golden bodies. Timestamps are rendered the way pydantic does (``…T11:08:54.055000Z``).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from usage_gateway.devtools.litellm_compat.params import KeyListQuery, UserListQuery
from usage_gateway.devtools.litellm_compat.view import Row, StoreView, parse_timestamp

_TIMESTAMPS = frozenset(
    {
        "expires",
        "budget_reset_at",
        "created_at",
        "updated_at",
        "settings_updated_at",
        "last_active",
        "last_rotation_at",
        "key_rotation_at",
        "deleted_at",
        "last_breach_check_at",
    }
)
_EMPTY_LIST: list[Any] = []
_EMPTY_DICT: dict[str, Any] = {}

# Columns of LiteLLM_VerificationToken as both key objects start with them: (field, default).
_TOKEN_FIELDS: tuple[tuple[str, Any], ...] = (
    ("token", None),
    ("key_name", None),
    ("key_alias", None),
    ("spend", 0.0),
    ("total_spend", 0.0),
    ("max_budget", None),
    ("expires", None),
    ("models", _EMPTY_LIST),
    ("aliases", _EMPTY_DICT),
    ("config", _EMPTY_DICT),
    ("user_id", None),
    ("team_id", None),
    ("agent_id", None),
    ("project_id", None),
    ("max_parallel_requests", None),
    ("metadata", _EMPTY_DICT),
    ("tpm_limit", None),
    ("rpm_limit", None),
    ("tpd_limit", None),
    ("budget_duration", None),
    ("budget_reset_at", None),
    ("allowed_cache_controls", _EMPTY_LIST),
    ("allowed_routes", _EMPTY_LIST),
    ("key_type", None),
    ("permissions", _EMPTY_DICT),
    ("model_spend", _EMPTY_DICT),
    ("model_max_budget", _EMPTY_DICT),
    ("budget_fallbacks", _EMPTY_DICT),
    ("soft_budget_cooldown", False),
    ("blocked", None),
    ("litellm_budget_table", None),
    ("budget_id", None),
    ("org_id", None),
    ("created_at", None),
    ("created_by", None),
    ("updated_at", None),
    ("updated_by", None),
    ("settings_updated_at", None),
    ("last_active", None),
    ("object_permission_id", None),
    ("object_permission", None),
    ("access_group_ids", _EMPTY_LIST),
    ("rotation_count", 0),
    ("auto_rotate", False),
    ("rotation_interval", None),
    ("last_rotation_at", None),
    ("key_rotation_at", None),
    ("router_settings", _EMPTY_DICT),
    ("budget_limits", None),
)
_ARCHIVE_FIELDS = (
    "id",
    "organization_id",
    "deleted_at",
    "deleted_by",
    "deleted_by_api_key",
    "litellm_changed_by",
)
# Fields UserAPIKeyAuth adds after the token columns; never filled for a listed key.
_AUTH_FIELDS: tuple[tuple[str, Any], ...] = (
    *(
        (name, None)
        for name in [
            "team_spend",
            "team_alias",
            "team_tpm_limit",
            "team_rpm_limit",
            "team_tpd_limit",
            "team_max_budget",
            "team_soft_budget",
            "team_model_max_budget",
        ]
    ),
    ("team_models", _EMPTY_LIST),
    ("team_blocked", False),
    *(
        (name, None)
        for name in [
            "soft_budget",
            "team_model_aliases",
            "team_member",
            "team_metadata",
            "team_object_permission_id",
            "team_member_spend",
            "team_member_tpm_limit",
            "team_member_rpm_limit",
            "end_user_id",
            "end_user_tpm_limit",
            "end_user_rpm_limit",
            "end_user_tpd_limit",
            "end_user_max_budget",
            "end_user_model_max_budget",
            "organization_alias",
            "organization_max_budget",
            "organization_tpm_limit",
            "organization_rpm_limit",
            "organization_metadata",
            "project_alias",
            "project_metadata",
            "last_refreshed_at",
            "api_key",
            "user_role",
            "allowed_model_region",
            "parent_otel_span",
            "rpm_limit_per_model",
            "tpm_limit_per_model",
            "user_tpm_limit",
            "user_rpm_limit",
            "user_email",
            "user_spend",
            "user_max_budget",
            "user_model_max_budget",
            "request_route",
        ]
    ),
    ("is_session_token", False),
    *(
        (name, None)
        for name in [
            "user",
            "created_by_user",
            "end_user_object_permission",
            "team_object_permission",
            "jwt_claims",
        ]
    ),
)
_USER_FIELDS: tuple[tuple[str, Any], ...] = (
    ("user_id", None),
    ("user_alias", None),
    ("team_id", None),
    ("sso_user_id", None),
    ("organization_id", None),
    ("object_permission_id", None),
    ("password_reset_required", None),
    ("last_breach_check_at", None),
    ("teams", _EMPTY_LIST),
    ("user_role", None),
    ("max_budget", None),
    ("spend", 0.0),
    ("user_email", None),
    ("models", _EMPTY_LIST),
    ("metadata", _EMPTY_DICT),
    ("max_parallel_requests", None),
    ("tpm_limit", None),
    ("rpm_limit", None),
    ("budget_duration", None),
    ("budget_reset_at", None),
    ("allowed_cache_controls", _EMPTY_LIST),
    ("policies", _EMPTY_LIST),
    ("model_spend", _EMPTY_DICT),
    ("model_max_budget", _EMPTY_DICT),
    ("created_at", None),
    ("updated_at", None),
    ("organization_memberships", None),
    ("object_permission", None),
)


def render_timestamp(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    rendered = parse_timestamp(value).isoformat()
    return rendered[: -len("+00:00")] + "Z" if rendered.endswith("+00:00") else rendered


def _fields(source: Row, fields: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, default in fields:
        value = source[name] if name in source else copy.copy(default)
        out[name] = render_timestamp(value) if name in _TIMESTAMPS else value
    return out


def key_object(key: Row) -> dict[str, Any]:
    if key.get("deleted"):
        # The archive row keeps ``organization_id`` as its own column; ``org_id`` stays unset.
        obj = _fields({name: value for name, value in key.items() if name != "org_id"}, _TOKEN_FIELDS)
        archive_id = key.get("id") or str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"{key['token']}/{key.get('deleted_at')}")
        )
        obj.update(_fields({**key, "id": archive_id}, [(name, None) for name in _ARCHIVE_FIELDS]))
        return obj
    return _fields({**key, "org_id": key.get("organization_id")}, (*_TOKEN_FIELDS, *_AUTH_FIELDS))


def _key_status(key: Row, now: datetime) -> str:
    if key.get("blocked"):
        return "revoked"
    expires = key.get("expires")
    if expires and parse_timestamp(expires) < now:
        return "expired"
    return "active"


def _newest_first(rows: list[Row], tiebreak: str) -> list[Row]:
    ordered = sorted(rows, key=lambda row: row.get(tiebreak) or "", reverse=True)
    ordered.sort(
        key=lambda row: parse_timestamp(row.get("created_at") or "1970-01-01T00:00:00Z"), reverse=True
    )
    return ordered


def _sorted_by(rows: list[Row], field: str | None, order: str, tiebreak: str) -> list[Row]:
    """Default order ``created_at DESC, <tiebreak> DESC``; an explicit ``sort_by`` sorts on that field
    (NULLs last)."""
    if not field:
        return _newest_first(rows, tiebreak)
    present = sorted((row for row in rows if row.get(field) is not None), key=lambda row: row[field])
    if order.lower() == "desc":
        present.reverse()
    return present + [row for row in rows if row.get(field) is None]


def key_list(
    view: StoreView, query: KeyListQuery, *, scoped_user_id: str | None, now: datetime
) -> dict[str, Any]:
    """``scoped_user_id`` is set for non-admin callers, who only see their own keys."""
    if query.status == "deleted":
        keys = list(view.deleted_keys)
    else:
        keys = [key for key in view.active_keys.values() if query.status in (None, _key_status(key, now))]
    user_id = scoped_user_id if scoped_user_id is not None else query.user_id
    filters = (
        ("user_id", user_id),
        ("team_id", query.team_id),
        ("organization_id", query.organization_id),
        ("token", query.key_hash),
        ("key_alias", query.key_alias),
    )
    keys = [key for key in keys if all(value is None or key.get(name) == value for name, value in filters)]
    keys = _sorted_by(keys, query.sort_by, query.sort_order, "token")
    page = keys[(query.page - 1) * query.size : query.page * query.size]
    return {
        "keys": [key_object(key) for key in page]
        if query.return_full_object
        else [key["token"] for key in page],
        "total_count": len(keys),
        "current_page": query.page,
        "total_pages": -(-len(keys) // query.size),
    }


def _user_matches(user: Row, query: UserListQuery) -> bool:
    if query.user_ids:
        wanted = [part.strip() for part in query.user_ids.split(",") if part.strip()]
        user_id = str(user.get("user_id") or "")
        if len(wanted) == 1 and wanted[0].lower() not in user_id.lower():
            return False
        if len(wanted) > 1 and user_id not in wanted:
            return False
    if query.role and user.get("user_role") != query.role:
        return False
    if query.user_email and query.user_email.lower() not in str(user.get("user_email") or "").lower():
        return False
    return not query.team or query.team in (user.get("teams") or [])


def user_list(view: StoreView, query: UserListQuery) -> dict[str, Any]:
    users = [user for user in view.users.values() if _user_matches(user, query)]
    users = _sorted_by(users, query.sort_by, query.sort_order, "user_id")
    page = users[(query.page - 1) * query.page_size : query.page * query.page_size]
    return {
        "users": [
            {**_fields(user, _USER_FIELDS), "key_count": view.key_counts.get(user["user_id"], 0)}
            for user in page
        ],
        "total": len(users),
        "page": query.page,
        "page_size": query.page_size,
        "total_pages": -(-len(users) // query.page_size),
    }
