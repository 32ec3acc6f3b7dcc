"""Whether Postgres can be reached, said in one line: what the CLI prints instead of a driver traceback.

The line names the setting (``USAGE_GATEWAY_DATABASE_URL``), the host and port it points at, the
driver's reason and a hint, and never the password.
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from usage_gateway.server.config import ENV_PREFIX

SETTING = f"{ENV_PREFIX}DATABASE_URL"
CONNECT_TIMEOUT_SECONDS = 5


class DatabaseUnreachable(Exception):
    """Postgres could not be reached; the message is one line naming the setting and the host."""


def _redacted(text: str, url: str) -> str:
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    for secret in (password, unquote(password) if password else None):
        if secret:
            text = text.replace(secret, "***")
    return text


def database_target(url: str) -> str:
    """``host:port`` of ``url`` as libpq resolves it (``PGHOST``/``PGPORT`` fill what the URL leaves out)."""
    params = conninfo_to_dict(url)
    hosts = str(params.get("host") or os.environ.get("PGHOST") or "/var/run/postgresql").split(",")
    ports = str(params.get("port") or os.environ.get("PGPORT") or "5432").split(",")
    ports += [ports[-1]] * (len(hosts) - len(ports))
    return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in zip(hosts, ports, strict=False))


def _reason(exc: BaseException) -> str:
    """The driver's reason without its framing: ``connection refused``, not three lines about a server."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("Is the server running")] or ["unknown error"]
    reason = lines[-1].rsplit(" failed: ", 1)[-1]
    for prefix in ("connection failed: ", "connection is bad: "):
        reason = reason.removeprefix(prefix)
    return reason[:1].lower() + reason[1:]


def _hint(reason: str) -> str:
    lowered = reason.lower()
    if "refused" in lowered or "no such file" in lowered:
        return "is Postgres running there?"
    if "resolve" in lowered or "name or service" in lowered:
        return "check the host name"
    if "timeout" in lowered or "timed out" in lowered:
        return "is the host reachable from here (firewall, network)?"
    if "password" in lowered or "authentication" in lowered or "role" in lowered:
        return "check the user and password in the URL"
    if "database" in lowered and "does not exist" in lowered:
        return "create the database, then run `usage-gateway migrate`"
    return "check the URL and that Postgres accepts connections from here"


def describe_failure(url: str, exc: BaseException) -> str:
    """One line for a failure to connect to ``url``."""
    try:
        target = database_target(url)
    except psycopg.Error:
        return f"{SETTING} is not a valid postgresql:// URL (check its percent-encoding)"
    reason = _redacted(_reason(exc), url)
    return f"cannot connect to Postgres at {target} ({SETTING}): {reason}; {_hint(reason)}"


def check_database(url: str, *, timeout_seconds: int = CONNECT_TIMEOUT_SECONDS) -> None:
    """Connect once and disconnect; :class:`DatabaseUnreachable` (one line) if that fails."""
    try:
        with psycopg.connect(url, connect_timeout=timeout_seconds):
            pass
    except psycopg.Error as exc:
        raise DatabaseUnreachable(describe_failure(url, exc)) from None
