"""Structured logs (json or console) that never carry a secret."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import unquote, urlsplit

import structlog

from usage_gateway.server.config import LogFormat, Settings

_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"']+")
_SECRET_FIELDS = {"authorization", "master_key", "password", "jwt_secret", "token"}


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if key.lower() in _SECRET_FIELDS:
            event[key] = "***"
        elif isinstance(value, str):
            event[key] = _BEARER.sub(r"\1***", value)
    return event


def configured_secrets(settings: Settings) -> tuple[str, ...]:
    """The secrets ``settings`` hold: the LiteLLM master key, the JWT secret, the download signing key,
    the metrics token, the database and Redis passwords (from their URLs)."""
    held = (
        settings.litellm_master_key,
        settings.jwt_secret,
        settings.download_signing_key,
        settings.metrics_token,
    )
    found = [secret.get_secret_value() for secret in held if secret is not None]
    for url in (settings.database_url, settings.redis_url):
        password = urlsplit(url).password if url else None
        if password:
            found.extend({password, unquote(password)})
    # Very short values would blank out ordinary words of every line.
    return tuple(secret for secret in found if len(secret) >= 4)


_LINK_TOKEN = re.compile(r"([?&]token=)[^&\s]+")


class HideLinkTokens(logging.Filter):
    """Uvicorn's access lines show a download link's path, not its token (it opens the file until it
    expires)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _LINK_TOKEN.sub(r"\1***", arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def configure_logging(settings: Settings, *, secrets: tuple[str, ...] = ()) -> None:
    known = tuple(s for s in (*secrets, *configured_secrets(settings)) if s)

    def scrub_known(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key, value in list(event.items()):
            if isinstance(value, str) and any(secret in value for secret in known):
                for secret in known:
                    value = value.replace(secret, "***")
                event[key] = value
        return event

    renderer: Any = (
        structlog.processors.JSONRenderer()
        if settings.log_format is LogFormat.JSON
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    level = logging.getLevelNamesMapping()[settings.log_level]
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    # httpx logs each request it sends at INFO: a line per LiteLLM page would drown the gateway's own.
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, HideLinkTokens) for f in access.filters):
        access.addFilter(HideLinkTokens())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            # Tracebacks become text here, so the scrubbers below see them too.
            structlog.processors.format_exc_info,
            _redact,
            scrub_known,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
