"""``GET /exports/{id}`` on a Starlette app holding only the download route, over real Postgres."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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
from usage_gateway.resolvers.download_links import LinkSigner
from usage_gateway.resolvers.viewer import Role, Viewer
from usage_gateway.server.config import ConfigError, Settings, load_settings
from usage_gateway.server.downloads import download_url, expire_exports_periodically, link_signer
from usage_gateway.server.logs import HideLinkTokens
from usage_gateway.server.resources import Resources
from usage_gateway.server.tokens import issue_token

SECRET = "download-secret-" + "0123456789abcdef" * 3


@dataclass
class Downloads:
    client: httpx.AsyncClient
    db: Database
    export_dir: Path
    now: list[datetime]
    signer: LinkSigner

    async def get(self, export_id: str, sub: str | None, *roles: Role) -> httpx.Response:
        headers = {"Authorization": f"Bearer {issue_token(SECRET, sub, roles)}"} if sub else {}
        return await self.client.get(download_url(export_id), headers=headers)

    async def export(self, requested_by: str, fmt: ExportFormat = ExportFormat.CSV) -> ExportRecord:
        f = FactFilter(BASE, BASE + timedelta(days=6))
        record = await create_export(self.db, requested_by=requested_by, filter=f, fmt=fmt, ttl_hours=1)
        return await run_export(self.db, record.id, self.export_dir)

    def link(self, record: ExportRecord, sub: str, *, any_reader: bool = False) -> str:
        """A signed link (path and query) as ``Export.downloadUrl`` would give ``sub``, expiring with it."""
        token = self.signer.token(record.id, sub, record.expires_at, any_reader=any_reader)
        return f"{download_url(record.id)}?token={token}"

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
            yield Downloads(client, db, tmp_path, now, link_signer(settings))
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


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["errors"][0]["extensions"]["code"]
    return code


async def test_a_signed_link_downloads_without_any_header(downloads: Downloads) -> None:
    record = await downloads.export("alice")
    assert record.path is not None
    response = await downloads.client.get(downloads.link(record, "alice"))
    assert response.status_code == 200, response.text
    assert response.content == (downloads.export_dir / record.path).read_bytes()
    assert response.headers["cache-control"] == "private, no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    # An admin's link to another user's export opens it too (it was made for a reader of every export).
    assert (await downloads.client.get(downloads.link(record, "root", any_reader=True))).status_code == 200
    rows = await downloads.db.fetch_all(
        "SELECT actor, arguments, outcome FROM audit_log WHERE action = 'downloadExport' ORDER BY id"
    )
    assert [tuple(row) for row in rows] == [
        ("alice", {"id": record.id, "link": True}, "ok"),
        ("root", {"id": record.id, "link": True}, "ok"),
    ]


async def test_a_tampered_or_foreign_link_is_refused(downloads: Downloads) -> None:
    alices, bobs = await downloads.export("alice"), await downloads.export("bob")
    link = downloads.link(alices, "alice")
    path, token = link.split("?token=")
    seconds, scope, subject, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    later = str(int(seconds) + 3600)
    bob = base64.urlsafe_b64encode(b"bob").rstrip(b"=").decode()
    refused = {
        "tampered signature": f"{path}?token={seconds}.{scope}.{subject}.{flipped}",
        "later expiry": f"{path}?token={later}.{scope}.{subject}.{signature}",
        "admin scope": f"{path}?token={seconds}.a.{subject}.{signature}",
        "another subject": f"{path}?token={seconds}.{scope}.{bob}.{signature}",
        "another export": f"{download_url(bobs.id)}?token={token}",
        "garbage": f"{path}?token=not-a-token",
        "empty": f"{path}?token=",
        "unknown export": f"{download_url('00000000-0000-0000-0000-000000000000')}?token={token}",
    }
    for what, url in refused.items():
        response = await downloads.client.get(url)
        assert response.status_code == 401, what
        assert error_code(response) == "UNAUTHENTICATED", what
        assert response.headers["www-authenticate"] == "Bearer", what
    # Signed with another key (another gateway's secret): refused as well.
    other = LinkSigner(b"k" * 32, timedelta(hours=1))
    forged = other.token(alices.id, "alice", alices.expires_at, any_reader=False)
    response = await downloads.client.get(f"{path}?token={forged}")
    assert (response.status_code, error_code(response)) == (401, "UNAUTHENTICATED")
    assert await downloads.audit() == []  # nobody was authenticated


async def test_a_link_made_for_another_user_does_not_open_the_export(downloads: Downloads) -> None:
    record = await downloads.export("alice")
    response = await downloads.client.get(downloads.link(record, "bob"))
    assert (response.status_code, error_code(response)) == (403, "FORBIDDEN")
    assert await downloads.audit() == [("bob", "downloadExport", "forbidden")]


async def test_a_link_expires(downloads: Downloads) -> None:
    record = await downloads.export("alice")
    short = downloads.signer.token(
        record.id, "alice", downloads.now[0] + timedelta(minutes=5), any_reader=False
    )
    url = f"{download_url(record.id)}?token={short}"
    assert (await downloads.client.get(url)).status_code == 200
    downloads.now[0] += timedelta(minutes=5, seconds=1)
    expired = await downloads.client.get(url)
    assert (expired.status_code, error_code(expired)) == (401, "LINK_EXPIRED")
    # The export itself is still there: a fresh link, or the header, still open it.
    assert (await downloads.get(record.id, "alice", Role.USER)).status_code == 200


async def test_signed_links_never_outlive_their_export(downloads: Downloads) -> None:
    record = await downloads.export("alice")
    signer = LinkSigner(b"s" * 32, timedelta(days=30))
    token = signer.token_for(record, Viewer("alice", frozenset({Role.USER})), downloads.now[0])
    assert int(token.split(".")[0]) <= record.expires_at.timestamp()
    downloads.now[0] = record.expires_at
    expired = await downloads.client.get(downloads.link(record, "alice"))
    assert (expired.status_code, error_code(expired)) == (401, "LINK_EXPIRED")


async def test_a_link_to_an_export_revoked_early_is_gone(downloads: Downloads) -> None:
    record = await downloads.export("alice")
    link = downloads.link(record, "alice")
    await downloads.db.execute("UPDATE exports SET status = 'EXPIRED' WHERE id = %s", (record.id,))
    response = await downloads.client.get(link)
    assert (response.status_code, error_code(response)) == (410, "EXPIRED")


async def test_the_header_wins_over_a_link(downloads: Downloads) -> None:
    record = await downloads.export("alice")
    link = downloads.link(record, "alice")
    bob = {"Authorization": f"Bearer {issue_token(SECRET, 'bob', [Role.USER])}"}
    assert (await downloads.client.get(link, headers=bob)).status_code == 403
    alice = {"Authorization": f"Bearer {issue_token(SECRET, 'alice', [Role.USER])}"}
    assert (await downloads.client.get(link, headers=alice)).status_code == 200
    broken = await downloads.client.get(link, headers={"Authorization": "Bearer nope"})
    assert (broken.status_code, error_code(broken)) == (401, "UNAUTHENTICATED")


def test_the_link_key_comes_from_the_signing_key_or_the_jwt_secret(tmp_path: Path) -> None:
    record_id, expires = "00000000-0000-0000-0000-000000000001", datetime.now(UTC) + timedelta(hours=1)

    def token(**settings: Any) -> str:
        signer = link_signer(Settings(export_dir=tmp_path, **settings))
        return signer.token(record_id, "alice", expires, any_reader=False)

    from_secret = token(jwt_secret=SECRET)
    assert from_secret == token(jwt_secret=SECRET)  # every replica with the secret accepts the link
    signature = from_secret.rsplit(".", 1)[1]
    # Derived, never the JWT secret itself: a link's signature is not an HMAC keyed by JWT_SECRET.
    assert signature not in {
        base64.urlsafe_b64encode(hmac.new(SECRET.encode(), m, hashlib.sha256).digest()).rstrip(b"=").decode()
        for m in (from_secret.rsplit(".", 1)[0].encode(), record_id.encode())
    }
    key = "download-key-" + "f" * 32
    assert token(jwt_secret=SECRET, download_signing_key=key) == token(download_signing_key=key)
    assert token(download_signing_key=key) != from_secret
    # Neither: a random key, for this process only.
    unset = {"jwt_secret": None, "download_signing_key": None}
    assert token(**unset) != token(**unset)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://usage.example.com", "https://usage.example.com"),
        ("https://usage.example.com/", "https://usage.example.com"),
        ("http://10.0.0.5:8000/analytics/", "http://10.0.0.5:8000/analytics"),
        ("", None),
    ],
)
def test_public_url_is_a_base_url(value: str, expected: str | None) -> None:
    assert load_settings(public_url=value).public_url == expected


@pytest.mark.parametrize("value", ["usage.example.com", "ftp://x", "https://x/?a=1", "https://x/#f"])
def test_public_url_refuses_what_is_not_a_base_url(value: str) -> None:
    with pytest.raises(ConfigError, match="USAGE_GATEWAY_PUBLIC_URL"):
        load_settings(public_url=value)


def test_a_short_download_signing_key_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"USAGE_GATEWAY_DOWNLOAD_SIGNING_KEY: .*32 bytes"):
        load_settings(download_signing_key="short")


def test_access_log_lines_hide_link_tokens() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/exports/e?token=1.o.YQ.sig&x=1", "1.1", 200),
        None,
    )
    assert HideLinkTokens().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "GET /exports/e?token=***&x=1 HTTP/1.1" 200'
