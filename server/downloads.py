"""``GET /exports/{id}``: an export's file for its requester (or an admin), and the cleanup of old files.

Two ways in: ``Authorization: Bearer <JWT>`` (checked first when present), or the signed link that
``Export.downloadUrl`` gives (``?token=…``, :mod:`resolvers.download_links`): it opens that export for the
viewer it was made for until it expires, with no header, so it works as a plain link.

Answers: 401 without a valid token (``LINK_EXPIRED`` for a link past its time: ask for a fresh one); 404
for an unknown id (or a file missing from EXPORT_DIR); 403 for another user's export; 410 Gone once the
export expired (the id was real, the file is gone for good, so a client can tell "ask for a new export"
from a typo); 409 while it is not DONE (pending, running, failed).
Every answer after authentication is written to the audit log.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from usage_gateway.datasources import audit
from usage_gateway.datasources.db import Database
from usage_gateway.datasources.exports.records import (
    ExportRecord,
    ExportStatus,
    expire_exports,
    fail_abandoned_exports,
    get_export,
)
from usage_gateway.errors import Unauthenticated
from usage_gateway.resolvers.download_links import DOWNLOAD_PATH, TOKEN_PARAMETER, LinkRefused, LinkSigner
from usage_gateway.server.auth import KeySourceUnavailable, Role, Viewer, authenticate, challenge
from usage_gateway.server.config import Settings
from usage_gateway.server.resources import Resources
from usage_gateway.server.responses import error_response

log = structlog.get_logger("usage_gateway.downloads")

_READERS_OF_ALL = frozenset({Role.ADMIN, Role.ADMIN_READONLY})

Clock = Callable[[], datetime]


_EXPORT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def utc_now() -> datetime:
    return datetime.now(UTC)


# Domain separation: the link key is derived from a secret that may also sign JWTs, never equal to it.
_LINK_KEY_LABEL = b"usage-gateway/download-links/v1"


def link_signer(settings: Settings) -> LinkSigner:
    """The signer of download links: its key derived from DOWNLOAD_SIGNING_KEY, else from JWT_SECRET
    (every replica sharing the secret accepts every replica's links), else random for this process only."""
    ttl = timedelta(seconds=settings.download_link_ttl_seconds)
    secret = settings.download_signing_key or settings.jwt_secret
    if secret is None:
        log.warning(
            "downloads.ephemeral_link_key",
            effect="download links work only on this process until it restarts;"
            " set USAGE_GATEWAY_DOWNLOAD_SIGNING_KEY (the same on every replica)",
        )
        return LinkSigner(secrets.token_bytes(32), ttl)
    key = hmac.new(secret.get_secret_value().encode(), _LINK_KEY_LABEL, hashlib.sha256).digest()
    return LinkSigner(key, ttl)


def download_url(export_id: str) -> str:
    """The path a client downloads an export from (relative to the gateway's base URL)."""
    return DOWNLOAD_PATH.format(export_id=export_id)


def download_filename(record: ExportRecord) -> str:
    f = record.filter
    return f"usage_{f.date_from.isoformat()}_{f.date_to.isoformat()}.{record.format.extension}"


def may_download(viewer: Viewer, record: ExportRecord) -> bool:
    return viewer.id == record.requested_by or bool(viewer.roles & _READERS_OF_ALL)


async def _answer(
    record: ExportRecord | None, may_open: Callable[[ExportRecord], bool], export_dir: Path, now: datetime
) -> tuple[str, Response]:
    """(audit outcome, response) for a viewer asking for an export."""
    if record is None:
        return "not_found", error_response(404, "NOT_FOUND", "no such export")
    if not may_open(record):
        return "forbidden", error_response(403, "FORBIDDEN", "this export belongs to another user")
    if record.status is ExportStatus.EXPIRED or record.expires_at <= now:
        return "expired", error_response(410, "EXPIRED", "this export has expired; request a new one")
    if record.status is not ExportStatus.DONE or record.path is None:
        message = f"this export is {record.status.value}" + (f": {record.error}" if record.error else "")
        return "not_ready", error_response(409, "NOT_READY", message)
    path = export_dir / record.path
    try:
        stat = await asyncio.to_thread(os.stat, path)
    except FileNotFoundError:
        log.warning("download.file_missing", export_id=record.id, path=str(path))
        return "file_missing", error_response(404, "NOT_FOUND", "the export file is not on this gateway")
    headers = {
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    if record.sha256:
        headers["ETag"] = f'"{record.sha256}"'
    response = FileResponse(
        path,
        stat_result=stat,
        media_type=record.format.media_type,
        filename=download_filename(record),
        headers=headers,
    )
    return "ok", response


def download_route(
    settings: Settings,
    resources: Callable[[], Resources],
    *,
    clock: Clock = utc_now,
    links: LinkSigner | None = None,
) -> Route:
    """The Starlette route for ``GET /exports/{export_id}`` (HEAD too); ``links`` checks the signed links
    (by default :func:`link_signer` of ``settings``: pass the one that signs them when the key is random)."""
    signer = links or link_signer(settings)

    async def download(request: Request) -> Response:
        export_id = request.path_params["export_id"]
        token = request.query_params.get(TOKEN_PARAMETER)
        arguments: dict[str, object] = {"id": export_id[:64].replace("\x00", "")}  # jsonb refuses NUL
        may_open: Callable[[ExportRecord], bool]
        if token is not None and "authorization" not in request.headers:
            try:
                claims = signer.verify(export_id, token, clock())
            except LinkRefused as exc:
                return error_response(401, exc.code, exc.message, {"WWW-Authenticate": "Bearer"})
            actor, may_open, arguments["link"] = claims.subject, claims.may_open, True
        else:
            try:
                viewer = await authenticate(request, settings)
            except KeySourceUnavailable as exc:
                return error_response(503, "UPSTREAM_UNAVAILABLE", exc.message)
            except Unauthenticated as exc:
                return error_response(401, "UNAUTHENTICATED", exc.message, challenge(exc))
            actor, may_open = viewer.id, functools.partial(may_download, viewer)

        db = resources().db
        # Export ids are UUIDs: anything else cannot exist, and must not reach Postgres (a NUL would fail).
        record = await get_export(db, export_id) if _EXPORT_ID.fullmatch(export_id) else None
        outcome, response = await _answer(record, may_open, settings.export_dir, clock())
        await audit.record(
            db,
            actor=actor,
            action="downloadExport",
            arguments=arguments,
            outcome=outcome,
            detail={"bytes": record.byte_size, "sha256": record.sha256}
            if outcome == "ok" and record
            else None,
        )
        return response

    return Route(DOWNLOAD_PATH, download, methods=["GET"], name="download_export")


async def expire_exports_periodically(
    db: Database, export_dir: Path, interval: float, *, clock: Clock = utc_now
) -> None:
    """Expire old exports and delete their files every ``interval`` seconds, until cancelled; and fail the
    exports a replica that died left behind (:func:`fail_abandoned_exports`), so that they do not wait for
    the next start of a gateway.

    Meant as a task of the app's lifespan: every replica may run it, each expiry is claimed by exactly
    one (``UPDATE … RETURNING``). A failed round is logged and retried at the next interval.
    """
    while True:
        try:
            await fail_abandoned_exports(db)
            await expire_exports(db, export_dir, clock())
        except Exception:
            log.exception("exports.cleanup_failed")
        await asyncio.sleep(interval)
