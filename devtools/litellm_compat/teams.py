"""``/team/list``: every team as a ``TeamListResponseObject``, the way LiteLLM 1.109.1 answers it.

Shape, from LiteLLM's source (``litellm/proxy/management_endpoints/team_endpoints.py``, ``list_team``;
``litellm/proxy/_types.py``, ``TeamBase`` / ``LiteLLM_TeamTable`` / ``TeamListResponseObject``): a JSON
array, not paged, of the team table's columns in pydantic field order, plus ``team_memberships`` and
``keys`` (the team's keys, as rows of the token table), sorted by ``team_alias`` (a null alias as ""),
stably. ``user_id`` keeps the teams whose ``members_with_roles`` name that user; ``organization_id`` keeps
one organization's teams (``default_organization``: the teams of none). Only a proxy admin may list all
teams; anyone may list their own (``user_id`` = themselves), as ``allowed_route_check_inside_route``.
A deleted team is simply absent (LiteLLM deletes its row).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from usage_gateway.devtools.litellm_compat.auth import Caller
from usage_gateway.devtools.litellm_compat.directory import key_object, render_timestamp
from usage_gateway.devtools.litellm_compat.errors import detail_error
from usage_gateway.devtools.litellm_compat.view import Row, StoreView

DEFAULT_ORGANIZATION = "default_organization"
_TIMESTAMPS = frozenset({"budget_reset_at", "updated_at", "created_at"})

# TeamBase's fields, then LiteLLM_TeamTable's new ones, with their defaults (pydantic's dump order).
TEAM_FIELDS: tuple[tuple[str, Any], ...] = (
    ("team_alias", None),
    ("team_id", None),
    ("organization_id", None),
    ("admins", []),
    ("members", []),
    ("members_with_roles", []),
    ("team_member_permissions", None),
    ("metadata", None),
    ("tpm_limit", None),
    ("rpm_limit", None),
    ("tpd_limit", None),
    ("max_budget", None),
    ("soft_budget", None),
    ("budget_duration", None),
    ("budget_limits", None),
    ("models", []),
    ("blocked", False),
    ("router_settings", None),
    ("access_group_ids", None),
    ("default_team_member_models", None),
    ("spend", None),
    ("max_parallel_requests", None),
    ("budget_reset_at", None),
    ("model_id", None),
    ("model_spend", {}),
    ("model_max_budget", {}),
    ("policies", None),
    ("allow_team_guardrail_config", False),
    ("litellm_model_table", None),
    ("object_permission", None),
    ("object_permission_id", None),
    ("updated_at", None),
    ("created_at", None),
)


def team_object(team: Row, keys: Sequence[Row]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name, default in TEAM_FIELDS:
        value = team[name] if name in team else (list(default) if isinstance(default, list) else default)
        if isinstance(default, dict) and name not in team:
            value = dict(default)
        body[name] = render_timestamp(value) if name in _TIMESTAMPS else value
    body["team_memberships"] = list(team.get("team_memberships") or [])
    body["keys"] = [key_object(key) for key in keys if key.get("team_id") == team["team_id"]]
    return body


def _member(team: Row, user_id: str) -> bool:
    return any(member.get("user_id") == user_id for member in team.get("members_with_roles") or [])


def team_list(
    view: StoreView, teams: Sequence[Row], caller: Caller, params: dict[str, str]
) -> list[dict[str, Any]]:
    user_id = params.get("user_id") or None
    if not caller.is_admin and (user_id is None or user_id != caller.user_id):
        raise detail_error(
            401, "Only admin users can query all teams/other teams. Your user role=internal_user"
        )
    chosen = [team for team in teams if user_id is None or _member(team, user_id)]
    keys = list(view.active_keys.values())
    bodies = [team_object(team, keys) for team in chosen]
    bodies.sort(key=lambda body: body.get("team_alias") or "")
    organization_id = params.get("organization_id")
    if organization_id == DEFAULT_ORGANIZATION:
        bodies = [body for body in bodies if body["organization_id"] is None]
    elif organization_id is not None:
        bodies = [body for body in bodies if body["organization_id"] == organization_id]
    return bodies
