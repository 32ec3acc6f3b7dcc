"""``user_api_key_auth`` reduced to what the served routes need (CONTRACT.md §1, §2.1)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from usage_gateway.devtools.litellm_compat.errors import auth_error, detail_error
from usage_gateway.devtools.litellm_compat.view import StoreView, hash_token, parse_timestamp

PROXY_ADMIN_ID = "default_user_id"
_ADMIN_VIEW_ROLES = frozenset({"proxy_admin", "proxy_admin_viewer"})
NON_ADMIN_OTHER_USER = "Non-admin users can only view their own spend data."
SERVICE_ACCOUNT = (
    "Service-account keys cannot query user analytics. Use a user-bound key, or call as a proxy admin."
)


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: str | None
    is_admin: bool


def _presented_key(headers: Mapping[str, str]) -> str:
    # x-litellm-api-key supersedes Authorization; API-Key is accepted too.
    for header in ("x-litellm-api-key", "authorization", "api-key"):
        value = headers.get(header)
        if value:
            return value.removeprefix("Bearer ").strip()
    return ""


def authenticate(headers: Mapping[str, str], view: StoreView, master_key: str, now: datetime) -> Caller:
    """The master key is a proxy admin; a virtual key (raw ``sk-…``, or its hash) acts as its owner,
    with admin view when the owner's role is ``proxy_admin`` or ``proxy_admin_viewer``."""
    presented = _presented_key(headers)
    if not presented:
        raise auth_error("Authentication Error, No api key passed in.")
    if presented == master_key:
        return Caller(user_id=PROXY_ADMIN_ID, is_admin=True)
    token = hash_token(presented) if presented.startswith("sk-") else presented
    key = view.active_keys.get(token)
    if key is None:
        raise auth_error(
            "Authentication Error, Invalid API key provided.", error_type="token_not_found_in_db", param="key"
        )
    if key.get("blocked"):
        raise auth_error("Authentication Error, Key is blocked. Update via `/key/unblock` if you're admin.")
    expires = key.get("expires")
    if expires and parse_timestamp(expires) < now:
        raise auth_error(
            f"Authentication Error - Expired Key. Key Expiry time {expires} and current time {now}"
        )
    owner = view.users.get(key["user_id"]) if key.get("user_id") else None
    return Caller(
        user_id=key.get("user_id"), is_admin=bool(owner and owner.get("user_role") in _ADMIN_VIEW_ROLES)
    )


def activity_user_scope(caller: Caller, requested: str | None) -> str | None:
    """The ``user_id`` filter a caller may use on ``/user/daily/activity``: admins any (or none), others
    only their own, which is also the default."""
    if caller.is_admin:
        return requested
    if caller.user_id is None:
        raise detail_error(403, SERVICE_ACCOUNT)
    if requested is not None and requested != caller.user_id:
        raise detail_error(403, NON_ADMIN_OTHER_USER)
    return caller.user_id


def require_admin(caller: Caller, route: str) -> None:
    if not caller.is_admin:
        raise auth_error(
            f"Authentication Error, Only proxy admin can be used to call this route. Route={route}"
        )
