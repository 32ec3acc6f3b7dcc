"""Results of the mutations and exports (built by a later issue; the types are part of the contract)."""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from schema.enums import ExportFormat, ExportStatus
from schema.scalars import BigInt


@strawberry.type
class Export:
    id: strawberry.ID
    status: ExportStatus
    format: ExportFormat
    row_count: BigInt | None
    byte_size: BigInt | None
    sha256: str | None
    download_url: str | None
    expires_at: datetime | None
    error: str | None


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
