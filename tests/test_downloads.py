"""``GET /exports/{id}`` on a Starlette app holding only the download route, over real Postgres."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from tests.facts_data import BASE, make_fact, replace_facts
from usage_gateway.datasources.db import Database
from usage_gateway.datasources.exports.records import (
    ExportFormat,
    ExportRecord,
    create_export,
    get_export,
    run_export,
)
from usage_gateway.datasources.facts.aggregates import FactFilter
from usage_gateway.resolvers.viewer import Role
from usage_gateway.server.config import Settings
from usage_gateway.server.downloads import download_url, expire_exports_periodically
from usage_gateway.server.resources import Resources
from usage_gateway.server.tokens import issue_token

SECRET = "download-secret-" + "0123456789abcdef" * 3


@dataclass
class Downloads:
    client: httpx.AsyncClient
    db: Database
    export_dir: Path
    now: list[datetime]

    async def get(self, export_id: str, sub: str | None, *roles: Role) -> httpx.Response:
        headers = {"Authorization": f"Bearer {issue_token(SECRET, sub, roles)}"} if sub else {}
        return await self.client.get(download_url(export_id), headers=headers)

    async def export(self, requested_by: str, fmt: ExportFormat = ExportFormat.CSV) -> ExportRecord:
        f = FactFilter(BASE, BASE + timedelta(days=6))
        record = await create_export(self.db, requested_by=requested_by, filter=f, fmt=fmt, ttl_hours=1)
        return await run_export(self.db, record.id, self.export_dir)

    async def audit(self) -> list[tuple[str, str, str]]:
        rows = await self.db.fetch_all(
            "SELECT actor, action, outcome FROM audit_log WHERE action = 'downloadExport' ORDER BY id"
        )
        return [(row[0], row[1], row[2]) for row in rows]


@pytest.fixture
async def downloads(database_url: str, tmp_path: Path) -> AsyncIterator[Downloads]:
    from usage_gateway.server.downloads import download_route

    settings = Settings(
        database_url=database_url, redis_url=None, litellm_url=None, jwt_secret=SECRET, export_dir=tmp_path
    )
    resources = await Resources.open(settings)
    db = resources.db
    now = [datetime.now(UTC)]
    app = Starlette(routes=[download_route(settings, lambda: resources, clock=lambda: now[0])])
    await replace_facts(db, [make_fact(BASE), make_fact(BASE, user_id="bob", spend="2")])
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield Downloads(client, db, tmp_path, now)
    finally:
        await resources.close()


async def test_the_requester_and_admins_get_the_file(downloads: Downloads) -> None:
    record = await downloads.export("alice", ExportFormat.XLSX)
    assert record.path is not None
    content = (downloads.export_dir / record.path).read_bytes()
    for sub, roles in (("alice", (Role.USER,)), ("root", (Role.ADMIN,)), ("auditor", (Role.ADMIN_READONLY,))):
        response = await downloads.get(record.id, sub, *roles)
        assert response.status_code == 200, response.text
        assert response.content == content
        assert hashlib.sha256(response.content).hexdigest() == record.sha256
        assert response.headers["content-type"] == (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        assert (
            response.headers["content-disposition"]
            == 'attachment; filename="usage_2024-01-22_2024-01-28.xlsx"'
        )
    assert await downloads.audit() == [
        ("alice", "downloadExport", "ok"),
        ("root", "downloadExport", "ok"),
        ("auditor", "downloadExport", "ok"),
    ]


@pytest.mark.parametrize(
    ("fmt", "media_type"),
    [
        (ExportFormat.CSV, "text/csv; charset=utf-8"),
        (ExportFormat.JSON, "application/json"),
        (ExportFormat.NDJSON, "application/x-ndjson"),
        (ExportFormat.PARQUET, "application/vnd.apache.parquet"),
    ],
)
async def test_content_types(downloads: Downloads, fmt: ExportFormat, media_type: str) -> None:
    record = await downloads.export("alice", fmt)
    response = await downloads.get(record.id, "alice", Role.USER)
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert response.headers["content-disposition"].endswith(f'.{fmt.extension}"')


async def test_another_user_is_refused_and_an_unknown_id_is_not_found(downloads: Downloads) -> None:
    record = await downloads.export("alice")
    assert (await downloads.get(record.id, "bob", Role.USER)).status_code == 403
    missing = await downloads.get("00000000-0000-0000-0000-000000000000", "alice", Role.USER)
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert (await downloads.get(record.id, None)).status_code == 401
    pending = await create_export(
        downloads.db, requested_by="alice", filter=record.filter, fmt=ExportFormat.CSV, ttl_hours=1
    )
    assert (await downloads.get(pending.id, "alice", Role.USER)).status_code == 409
    assert await downloads.audit() == [
        ("bob", "downloadExport", "forbidden"),
        ("alice", "downloadExport", "not_found"),
        ("alice", "downloadExport", "not_ready"),
    ]


async def test_an_expired_export_is_gone_and_its_file_removed(downloads: Downloads) -> None:
    record = await downloads.export("alice")
    assert record.path is not None
    downloads.now[0] = record.expires_at + timedelta(seconds=1)
    assert (await downloads.get(record.id, "alice", Role.USER)).status_code == 410

    cleanup = asyncio.create_task(
        expire_exports_periodically(downloads.db, downloads.export_dir, 0.05, clock=lambda: downloads.now[0])
    )
    try:
        for _ in range(100):
            if not (downloads.export_dir / record.path).exists():
                break
            await asyncio.sleep(0.02)
    finally:
        cleanup.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cleanup
    assert not (downloads.export_dir / record.path).exists()
    expired = await get_export(downloads.db, record.id)
    assert expired is not None
    assert expired.status.value == "EXPIRED"
    assert (await downloads.get(record.id, "root", Role.ADMIN)).status_code == 410
