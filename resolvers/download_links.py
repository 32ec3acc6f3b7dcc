"""Signed download links: ``<base>/exports/{id}?token=…`` works without an ``Authorization`` header.

A token is ``<expiry>.<scope>.<subject>.<signature>``: the expiry in Unix seconds (never after the export's
own), the scope (``o``: the export's requester; ``a``: an admin reading another user's export), the subject
(the viewer the link was made for, base64url) and an HMAC-SHA256 over the export's id and those three
fields. A token therefore opens one export, for one viewer, until it expires; changing any part of the URL
(another export's id included) breaks the signature. The bearer token itself never enters a URL.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from usage_gateway.datasources.exports.records import ExportRecord, ExportStatus
from usage_gateway.resolvers.viewer import Viewer

DOWNLOAD_PATH = "/exports/{export_id}"
TOKEN_PARAMETER = "token"  # noqa: S105  # the query parameter's name, not a secret

_VERSION = "v1"
_OWNER, _ANY_READER = "o", "a"
_TOKEN = re.compile(r"([0-9]{1,12})\.([oa])\.([A-Za-z0-9_-]{1,400})\.([A-Za-z0-9_-]{43})")


class LinkRefused(Exception):
    """A link that does not open the export: ``code`` is the error's ``extensions.code`` (401)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class LinkClaims:
    """What a verified token says: who the link was made for, and whether for another user's export."""

    export_id: str
    subject: str
    expires: datetime
    any_reader: bool

    def may_open(self, record: ExportRecord) -> bool:
        return self.any_reader or self.subject == record.requested_by


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LinkSigner:
    """Makes and checks download tokens with one key; links live ``ttl`` at most, and never past the
    export's expiry."""

    def __init__(self, key: bytes, ttl: timedelta) -> None:
        if len(key) < 32:
            raise ValueError("a download signing key has at least 32 bytes")
        self._key = key
        self.ttl = ttl

    def _signature(self, export_id: str, expires: int, scope: str, subject: str) -> str:
        # A JSON array cannot be read two ways, whatever characters the subject holds.
        message = orjson.dumps([_VERSION, export_id, expires, scope, subject])
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())

    def token(self, export_id: str, subject: str, expires: datetime, *, any_reader: bool) -> str:
        seconds = int(expires.timestamp())  # rounded down: never later than asked
        scope = _ANY_READER if any_reader else _OWNER
        signature = self._signature(export_id, seconds, scope, subject)
        return f"{seconds}.{scope}.{_b64(subject.encode())}.{signature}"

    def token_for(self, record: ExportRecord, viewer: Viewer, now: datetime) -> str:
        expires = min(record.expires_at, now + self.ttl)
        return self.token(record.id, viewer.id, expires, any_reader=viewer.id != record.requested_by)

    def verify(self, export_id: str, token: str, now: datetime) -> LinkClaims:
        """The claims of ``token`` for ``export_id``; :class:`LinkRefused` if it is not valid for it now."""
        match = _TOKEN.fullmatch(token)
        if match is None:
            raise LinkRefused("UNAUTHENTICATED", "invalid download link")
        seconds, scope, encoded_subject, signature = match.groups()
        try:
            subject = _unb64(encoded_subject).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise LinkRefused("UNAUTHENTICATED", "invalid download link") from None
        expected = self._signature(export_id, int(seconds), scope, subject)
        if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii")):
            raise LinkRefused("UNAUTHENTICATED", "invalid download link")
        if int(seconds) <= now.timestamp():
            raise LinkRefused(
                "LINK_EXPIRED", "this download link has expired; ask Query.export for a fresh downloadUrl"
            )
        expires = datetime.fromtimestamp(int(seconds), now.tzinfo)
        return LinkClaims(export_id, subject, expires, scope == _ANY_READER)


@dataclass(frozen=True)
class DownloadLinks:
    """What a request needs to write its exports' ``downloadUrl``: the signer and the gateway's base URL
    (no trailing slash)."""

    signer: LinkSigner
    base_url: str

    def url(self, record: ExportRecord, viewer: Viewer, now: datetime) -> str | None:
        if record.status is not ExportStatus.DONE:
            return None
        token = self.signer.token_for(record, viewer, now)
        return f"{self.base_url}{DOWNLOAD_PATH.format(export_id=record.id)}?{TOKEN_PARAMETER}={token}"
