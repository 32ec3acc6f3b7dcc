"""Validating a client's filter and turning it into the facts' :class:`FactFilter`."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from usage_gateway.datasources.directory import lookups as directory
from usage_gateway.datasources.directory.lookups import NO_TEAM
from usage_gateway.datasources.facts.aggregates import Dimension, FactFilter, InvalidCursor, Order
from usage_gateway.datasources.facts.known import seen_values
from usage_gateway.datasources.facts.vocabulary import decode_cursor
from usage_gateway.errors import BadUserInput, Forbidden, RangeTooLarge
from usage_gateway.resolvers.context import UNKNOWN_VIEWER, AnswerWarning, Context
from usage_gateway.resolvers.limits import Limits
from usage_gateway.resolvers.permissions import reads_everyone
from usage_gateway.resolvers.scope import check_user_ids, scoped_filter

_TOKEN_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class RequestedFilter:
    """A ``UsageFilter`` as the client sent it: ``None`` means any, an empty list means none."""

    date_from: date
    date_to: date
    user_ids: Sequence[str] | None = None
    api_key_ids: Sequence[str] | None = None
    models: Sequence[str] | None = None
    providers: Sequence[str] | None = None
    team_ids: Sequence[str] | None = None
    tag: str | None = None


def check_tag(tag: str | None) -> None:
    """One tag, as LiteLLM names it: several would count a request once per tag it carries."""
    if tag is None:
        return
    if not tag:
        raise BadUserInput("`tag` is empty: name one LiteLLM tag, e.g. `User-Agent:claude-code`")
    if "," in tag:
        raise BadUserInput(
            "`tag` names one tag: LiteLLM records a request once per tag it carries, so usage of any of"
            " several tags cannot be told without counting some requests twice (LiteLLM also reads a"
            " comma as a list of tags); ask for each tag on its own"
        )


def check_range(start: date, end: date, limits: Limits) -> None:
    if end < start:
        raise BadUserInput(f"`to` ({end.isoformat()}) is before `from` ({start.isoformat()})")
    days = (end - start).days + 1
    if days > limits.max_range_days:
        raise RangeTooLarge(f"the range covers {days} days; at most {limits.max_range_days} are allowed")


def check_first(first: int, limits: Limits) -> None:
    if not 0 <= first <= limits.max_first:
        raise BadUserInput(f"`first` must be between 0 and {limits.max_first}, got {first}")


def check_after(after: str | None, dimension: Dimension, order: Order) -> None:
    if after is None:
        return
    try:
        decode_cursor(after, dimension, order)
    except InvalidCursor as exc:
        raise BadUserInput(f"`after` is not a cursor of this breakdown: {exc}") from None


def is_key_bucket(value: str) -> bool:
    """A LiteLLM key bucket named directly: a token hash, ``unattributed`` or ``raw:…``."""
    return bool(_TOKEN_HASH.fullmatch(value)) or value == "unattributed" or value.startswith("raw:")


def _values(values: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(sorted(set(values)))


def _unknown(kind: str, ids: Sequence[str]) -> BadUserInput:
    shown = ", ".join(sorted(ids)[:10]) + (" …" if len(ids) > 10 else "")
    return BadUserInput(f"unknown {kind}: {shown}")


async def _user_ids(ctx: Context, ids: tuple[str, ...] | None) -> None:
    if not ids:
        return
    real = [user_id for user_id in ids if not directory.is_pseudo_user(user_id)]
    unknown = set(real) - await directory.users_exist(ctx.db, real)
    if unknown:
        raise _unknown("userIds", sorted(unknown))


async def _team_ids(ctx: Context, ids: tuple[str, ...] | None) -> None:
    """BadUserInput for a team neither synced nor ``no-team``; FORBIDDEN for a plain user naming a team
    none of their keys was ever in (as for ``userIds`` and ``apiKeyIds``: refused, not intersected)."""
    if not ids:
        return
    named = [team_id for team_id in ids if team_id != NO_TEAM]
    if reads_everyone(ctx.viewer):
        unknown = set(named) - await directory.teams_exist(ctx.db, named)
        if unknown:
            raise _unknown("teamIds", sorted(unknown))
        return
    theirs = await directory.teams_of_user(ctx.db, ctx.viewer.id)
    if any(team_id not in theirs for team_id in named):
        raise Forbidden("`teamIds` may name only the teams of your own keys (or `no-team`)")


async def _warn_if_not_in_directory(ctx: Context) -> None:
    """A ``user`` whose token names no directory user sees nothing: say why instead of plain zeros."""
    viewer_id = ctx.viewer.id
    if any(w.code == UNKNOWN_VIEWER for w in ctx.warnings):
        return
    if await directory.users_exist(ctx.db, [viewer_id]):
        return
    ctx.warnings.append(
        AnswerWarning(
            UNKNOWN_VIEWER,
            f"the token's subject {viewer_id!r} is no user in the gateway's directory, so no usage is"
            " theirs: a token's `sub` must be the LiteLLM user id, and new users appear after syncDirectory",
            (),
        )
    )


async def _key_buckets(
    ctx: Context, ids: tuple[str, ...] | None
) -> tuple[tuple[str, ...] | None, dict[str, str | None]]:
    """apiKeyIds as key buckets (a directory key's token hash, else the id if it names a bucket), with the
    directory owner of each bucket the viewer's scope needs to know."""
    if not ids:
        return ids, {}
    keys = await directory.api_keys_by_ids(ctx.db, ids)
    owners: dict[str, str | None] = {key.token_hash: key.user_id for key in keys.values()}
    named = [key_id for key_id in ids if key_id not in keys]
    if reads_everyone(ctx.viewer):
        unknown = [key_id for key_id in named if not is_key_bucket(key_id)]
        if unknown:
            raise _unknown("apiKeyIds", unknown)
    elif named:
        # A plain user's ids that are not directory ids: theirs only if they are the hash of their key.
        by_hash = await directory.api_keys_by_token_hashes(ctx.db, [n for n in named if is_key_bucket(n)])
        owners.update({bucket: key.user_id for bucket, key in by_hash.items()})
    return tuple(sorted({keys[key_id].token_hash if key_id in keys else key_id for key_id in ids})), owners


async def resolve_filter(ctx: Context, requested: RequestedFilter) -> FactFilter:
    """The validated filter, clipped to the viewer's scope; BadUserInput names what is wrong, Forbidden
    what is not the viewer's to see.

    Checked once per request: the operation's arguments are checked before it runs
    (:mod:`schema.argument_checks`), and the resolvers find the result here.
    """
    key = (
        requested.date_from,
        requested.date_to,
        *map(_values, (requested.user_ids, requested.api_key_ids, requested.models, requested.providers)),
        _values(requested.team_ids),
        requested.tag,
    )
    found = ctx.checked_filters.get(key)
    if found is None:
        found = ctx.checked_filters[key] = await _resolve_filter(ctx, requested)
    return found


async def check_seen(ctx: Context, f: FactFilter) -> None:
    """BadUserInput for a model or provider never seen on any stored day. Run once the filter's days are
    present, so that one first used in them counts; one seen before but not in the range is simply zero."""
    if f.models:
        unknown = set(f.models) - await seen_values(ctx.db, Dimension.MODEL, f.models)
        if unknown:
            raise _unknown("models", sorted(unknown))
    if f.providers:
        unknown = set(f.providers) - await seen_values(ctx.db, Dimension.PROVIDER, f.providers)
        if unknown:
            raise _unknown("providers", sorted(unknown))


async def _resolve_filter(ctx: Context, requested: RequestedFilter) -> FactFilter:
    check_range(requested.date_from, requested.date_to, ctx.limits)
    check_tag(requested.tag)
    user_ids = _values(requested.user_ids)
    check_user_ids(ctx.viewer, user_ids)
    team_ids = _values(requested.team_ids)
    _, (api_keys, key_owners), _ = await asyncio.gather(
        _user_ids(ctx, user_ids) if reads_everyone(ctx.viewer) else _warn_if_not_in_directory(ctx),
        _key_buckets(ctx, _values(requested.api_key_ids)),
        _team_ids(ctx, team_ids),
    )
    f = FactFilter(
        requested.date_from,
        requested.date_to,
        user_ids=user_ids,
        api_keys=api_keys,
        models=_values(requested.models),
        providers=_values(requested.providers),
        team_ids=team_ids,
        tags=None if requested.tag is None else (requested.tag,),
    )
    return scoped_filter(ctx.viewer, f, key_owners)
