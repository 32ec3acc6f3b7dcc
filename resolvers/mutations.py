"""Mutations (refresh, sync, export) and ``Query.export``: each checked, audited, then delegated."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

from usage_gateway.datasources.daycache.days import RangeReport, days_between
from usage_gateway.datasources.directory.sync import SyncCounts
from usage_gateway.datasources.directory.sync import sync_directory as sync_from_litellm
from usage_gateway.datasources.exports import records as exports
from usage_gateway.datasources.exports.records import ExportDimension, ExportFormat, ExportRecord
from usage_gateway.errors import UpstreamUnavailable
from usage_gateway.resolvers.audited import audited
from usage_gateway.resolvers.context import Context
from usage_gateway.resolvers.download_links import DOWNLOAD_PATH
from usage_gateway.resolvers.filters import RequestedFilter, check_range, check_seen, resolve_filter
from usage_gateway.resolvers.permissions import reads_everyone, require_admin
from usage_gateway.resolvers.side_exports import check_side_export
from usage_gateway.resolvers.usage import ensure_days


@dataclass(frozen=True)
class Refreshed:
    days: list[date]
    refreshed_at: datetime
    changed: bool


def _refreshed(ctx: Context, report: RangeReport, started: datetime) -> Refreshed:
    """Every day failed: an error. Some failed: the result, with the failures told beside it."""
    if report.failures and len(report.failures) == len(report.days):
        raise UpstreamUnavailable("; ".join(sorted(set(report.failures.values()))))
    ctx.note(report)
    return Refreshed(report.days, started, report.changed)


async def refresh_today(ctx: Context) -> Refreshed:
    require_admin(ctx.viewer, "refreshToday")
    async with audited(ctx, "refreshToday", {}) as entry:
        started = datetime.now(UTC)
        report = await ctx.days.refresh(ctx.days.open_days())
        entry.detail = {
            "days": [d.isoformat() for d in report.days],
            "changed": report.changed,
            "failed": sorted(d.isoformat() for d in report.failures),
            "unverified": [d.isoformat() for d in report.unverified],
        }
        return _refreshed(ctx, report, started)


async def refresh_range(ctx: Context, start: date, end: date) -> Refreshed:
    """Reopen closed days (for corrections upstream) and fetch them again; future days are skipped."""
    require_admin(ctx.viewer, "refreshRange")
    async with audited(ctx, "refreshRange", {"from": start.isoformat(), "to": end.isoformat()}) as entry:
        check_range(start, end, ctx.limits)
        started = datetime.now(UTC)
        days = days_between(start, min(end, ctx.days.today()))
        report = await ctx.days.refresh(days, reopen=True)
        entry.detail = {
            "days": len(report.days),
            "changed": report.changed,
            "failed": sorted(d.isoformat() for d in report.failures),
            "unverified": [d.isoformat() for d in report.unverified],
        }
        return _refreshed(ctx, report, started)


async def sync_directory(ctx: Context) -> SyncCounts:
    require_admin(ctx.viewer, "syncDirectory")
    async with audited(ctx, "syncDirectory", {}) as entry:
        if ctx.operations.litellm is None:
            raise UpstreamUnavailable("LiteLLM is not configured (USAGE_GATEWAY_LITELLM_URL)")
        counts = await sync_from_litellm(ctx.db, ctx.operations.litellm, redis=ctx.operations.redis)
        entry.detail = {
            "usersCreated": counts.users_created,
            "usersUpdated": counts.users_updated,
            "apiKeysCreated": counts.api_keys_created,
            "apiKeysUpdated": counts.api_keys_updated,
            "apiKeysRevoked": counts.api_keys_revoked,
        }
        return counts


async def export_usage(
    ctx: Context, requested: RequestedFilter, fmt: ExportFormat, group_by: Sequence[ExportDimension]
) -> ExportRecord:
    """Small exports finish inside the request; large ones continue in the background (``Query.export``)."""
    arguments = {
        "from": requested.date_from.isoformat(),
        "to": requested.date_to.isoformat(),
        "format": fmt.value,
        "groupBy": [d.value for d in group_by],
    }
    async with audited(ctx, "exportUsage", arguments) as entry:
        f = await resolve_filter(ctx, requested)
        if exports.reads_tags(f, group_by):
            await ensure_days(ctx, f if f.tags is not None else replace(f, tags=()), f.date_from, f.date_to)
        else:
            ctx.note(await ctx.days.ensure(f.date_from, f.date_to))
        await check_seen(ctx, f)
        await check_side_export(ctx.db, f, group_by)
        record = await exports.create_export(
            ctx.db,
            requested_by=ctx.viewer.id,
            filter=f,
            fmt=fmt,
            group_by=group_by,
            ttl_hours=ctx.operations.export_ttl_hours,
        )
        if await exports.estimate_rows(ctx.db, f, record.group_by) <= exports.INLINE_EXPORT_MAX_FACTS:
            record = await exports.run_export(ctx.db, record.id, ctx.operations.export_dir)
        else:
            exports.start_in_background(ctx.db, record.id, ctx.operations.export_dir)
        entry.detail = {"exportId": record.id, "status": record.status.value}
        return record


async def export(ctx: Context, export_id: str) -> ExportRecord | None:
    """An export its requester (or an admin) may see; anyone else learns nothing, not even that it exists."""
    record = await exports.get_export(ctx.db, export_id)
    if record is None or (record.requested_by != ctx.viewer.id and not reads_everyone(ctx.viewer)):
        return None
    return record


def download_url(ctx: Context, record: ExportRecord) -> str | None:
    """The signed, absolute link of a DONE export for this viewer (see :mod:`resolvers.download_links`)."""
    if ctx.operations.links is not None:
        return ctx.operations.links.url(record, ctx.viewer, datetime.now(UTC))
    return DOWNLOAD_PATH.format(export_id=record.id) if record.status is exports.ExportStatus.DONE else None
