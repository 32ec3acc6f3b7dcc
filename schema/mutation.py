"""The root mutation. The work itself belongs to a later issue; see :mod:`resolvers.mutations`."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry
from strawberry.types import Info

from resolvers import mutations
from resolvers.context import Context
from schema.enums import ExportDimension, ExportFormat
from schema.exports import Export, RefreshResult, SyncResult
from schema.fields import mutation
from schema.inputs import UsageFilter

EVERY_EXPORT_DIMENSION = list(ExportDimension)


@strawberry.type
class Mutation:
    @mutation("Fetch the open days again now (admin only).")
    async def refresh_today(self, info: Info[Context, None]) -> RefreshResult:
        await mutations.refresh_today(info.context)

    @mutation("Reopen and fetch again every day of a range (admin only).")
    async def refresh_range(
        self, info: Info[Context, None], from_: Annotated[date, strawberry.argument(name="from")], to: date
    ) -> RefreshResult:
        await mutations.refresh_range(info.context)

    @mutation("Start an export of the usage under a filter.")
    async def export_usage(
        self,
        info: Info[Context, None],
        filter: UsageFilter,
        format: ExportFormat,
        group_by: list[ExportDimension] = EVERY_EXPORT_DIMENSION,
    ) -> Export:
        await mutations.export_usage(info.context)

    @mutation("Copy users and keys from LiteLLM into the directory (admin only).")
    async def sync_directory(self, info: Info[Context, None]) -> SyncResult:
        await mutations.sync_directory(info.context)
