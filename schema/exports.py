"""Results of the mutations and exports."""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from usage_gateway.datasources.exports.records import ExportRecord
from usage_gateway.schema.enums import ExportFormat, ExportStatus
from usage_gateway.schema.scalars import BigInt


@strawberry.type
class Export:
    id: strawberry.ID
    status: ExportStatus
    format: ExportFormat
    row_count: BigInt | None
    byte_size: BigInt | None
    sha256: str | None
    download_url: str | None = strawberry.field(
        description="Where to download the file once DONE: an absolute URL with a signed token, so it works"
        " as a plain link, without an Authorization header (a bearer token is accepted too). It opens this"
        " export only, for the viewer it was made for, and expires with the export or after"
        " DOWNLOAD_LINK_TTL_SECONDS, whichever comes first; ask `export(id)` again for a fresh one."
    )
    expires_at: datetime | None
    error: str | None

    @classmethod
    def from_record(cls, record: ExportRecord, download_url: str | None) -> Export:
        return cls(
            id=strawberry.ID(record.id),
            status=record.status,
            format=record.format,
            row_count=None if record.row_count is None else BigInt(record.row_count),
            byte_size=None if record.byte_size is None else BigInt(record.byte_size),
            sha256=record.sha256,
            download_url=download_url,
            expires_at=record.expires_at,
            error=record.error,
        )


@strawberry.type
class RefreshResult:
    days: list[date]
    refreshed_at: datetime
    changed: bool


@strawberry.type
class SyncResult:
    users_created: int
    users_updated: int
    api_keys_created: int
    api_keys_updated: int
    api_keys_revoked: int
    teams_created: int = 0
    teams_updated: int = 0
    teams_deleted: int = strawberry.field(
        default=0, description="Teams LiteLLM no longer lists: kept, with their alias, for their past usage."
    )
    budgets_changed: int = strawberry.field(
        default=0,
        description="Budgets (max_budget, budget_duration, budget_reset_at of keys, users and teams) written"
        " or removed: `Usage.budgets` reads them.",
    )
