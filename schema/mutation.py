"""The root mutation: refreshes, directory sync and exports (work in :mod:`resolvers.mutations`)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry
from strawberry.types import Info

from usage_gateway.datasources.exports.records import ALL_DIMENSIONS
from usage_gateway.resolvers import mutations
from usage_gateway.resolvers.context import Context
from usage_gateway.schema.enums import ExportDimension, ExportFormat
from usage_gateway.schema.exports import Export, RefreshResult, SyncResult
from usage_gateway.schema.fields import mutation
from usage_gateway.schema.inputs import UsageFilter

EVERY_EXPORT_DIMENSION = list(ALL_DIMENSIONS)  # TEAM only when asked for: the default stays as it was


def _refresh_result(refreshed: mutations.Refreshed) -> RefreshResult:
    return RefreshResult(days=refreshed.days, refreshed_at=refreshed.refreshed_at, changed=refreshed.changed)


@strawberry.type
class Mutation:
    @mutation("Fetch the open days (today, and yesterday while still open) again now (admin only).")
    async def refresh_today(self, info: Info[Context, None]) -> RefreshResult:
        return _refresh_result(await mutations.refresh_today(info.context))

    @mutation("Reopen and fetch again every day of a range, for corrections upstream (admin only).")
    async def refresh_range(
        self, info: Info[Context, None], from_: Annotated[date, strawberry.argument(name="from")], to: date
    ) -> RefreshResult:
        return _refresh_result(await mutations.refresh_range(info.context, from_, to))

    @mutation(
        "Export the usage under a filter, grouped by the chosen dimensions. Small exports are DONE on"
        " return; large ones continue in the background: poll Query.export(id)."
    )
    async def export_usage(
        self,
        info: Info[Context, None],
        filter: UsageFilter,
        format: ExportFormat,
        group_by: list[ExportDimension] = EVERY_EXPORT_DIMENSION,
    ) -> Export:
        record = await mutations.export_usage(
            info.context,
            filter.requested(),
            format,
            group_by,
        )
        return Export.from_record(record, mutations.download_url(info.context, record))

    @mutation("Copy users, keys and teams from LiteLLM into the directory; never deletes (admin only).")
    async def sync_directory(self, info: Info[Context, None]) -> SyncResult:
        counts = await mutations.sync_directory(info.context)
        return SyncResult(
            users_created=counts.users_created,
            users_updated=counts.users_updated,
            api_keys_created=counts.api_keys_created,
            api_keys_updated=counts.api_keys_updated,
            api_keys_revoked=counts.api_keys_revoked,
            teams_created=counts.teams_created,
            teams_updated=counts.teams_updated,
            teams_deleted=counts.teams_deleted,
            budgets_changed=counts.budgets_changed,
        )
