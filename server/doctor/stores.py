"""The doctor's checks of the gateway's own stores: Postgres (reached with the configured URL), its
migrations (the applied ones against those this version ships) and Redis."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import psycopg
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from usage_gateway.migrations import available
from usage_gateway.server.config import ENV_PREFIX
from usage_gateway.server.database_check import SETTING as DATABASE_SETTING
from usage_gateway.server.database_check import database_target, describe_failure
from usage_gateway.server.doctor.report import Check, Status

REDIS_SETTING = f"{ENV_PREFIX}REDIS_URL"
_CONNECTING = re.compile(r"^Error -?\d+ connecting to \S+?\.\s+")
MIGRATE = "run `usage-gateway migrate`"


def check_postgres(url: str, timeout_seconds: float) -> tuple[Check, Check]:
    """Connect once (``database_check``'s one line when that fails), then compare the migrations."""
    needs_postgres = Check("migrations", Status.SKIP, "needs Postgres")
    try:
        # libpq counts connect_timeout in whole seconds and takes anything under 2 as 2.
        conn = psycopg.connect(url, connect_timeout=max(2, round(timeout_seconds)), autocommit=True)
    except psycopg.Error as exc:
        # database_check's line ends in "; <hint>": the hint goes where every check's does.
        line, _, hint = describe_failure(url, exc).rpartition("; ")
        failure = Check("postgres", Status.FAIL, line, hint) if line else Check("postgres", Status.FAIL, hint)
        return failure, needs_postgres
    target = database_target(url)
    with conn:
        try:
            conn.execute("SELECT set_config('statement_timeout', %s, false)", (f"{round(timeout_seconds)}s",))
            row = conn.execute("SELECT current_database(), current_user, current_setting('server_version')")
            database, user, version = row.fetchone() or ("?", "?", "?")
        except psycopg.Error as exc:
            failure = Check(
                "postgres",
                Status.FAIL,
                f"connected to {target}, then: {_first_line(exc)}",
                "see Postgres's log",
            )
            return failure, needs_postgres
        version = str(version).split()[0]  # not "(Debian 15.18-0+deb12u1)"
        reached = Check(
            "postgres",
            Status.OK,
            f"connected to {target}, database {database} as {user} (PostgreSQL {version})",
        )
        try:
            migrations = _migrations(conn, database)
        except psycopg.Error as exc:
            migrations = Check(
                "migrations",
                Status.FAIL,
                f"cannot read schema_migrations: {_first_line(exc)}",
                f"check that the user of {DATABASE_SETTING} may read the gateway's tables",
            )
        return reached, migrations


def _migrations(conn: psycopg.Connection[tuple[object, ...]], database: object) -> Check:
    packaged = {migration.version: migration.name for migration in available()}
    latest = packaged[max(packaged)]
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return Check(
            "migrations",
            Status.FAIL,
            f"none of {len(packaged)} applied: database {database} has no schema_migrations",
            f"{MIGRATE} (or does {DATABASE_SETTING} name the wrong database?)",
        )
    applied = {
        int(str(version)): str(name)
        for version, name in conn.execute("SELECT version, name FROM schema_migrations")
    }
    pending = [packaged[version] for version in sorted(packaged) if version not in applied]
    unknown = [applied[version] for version in sorted(applied) if version not in packaged]
    renamed = [packaged[v] for v in sorted(packaged) if v in applied and applied[v] != packaged[v]]
    done = len(packaged) - len(pending)
    if pending:
        return Check(
            "migrations",
            Status.FAIL,
            f"{done} of {len(packaged)} applied; pending: {', '.join(pending)}",
            MIGRATE,
        )
    if unknown:
        return Check(
            "migrations",
            Status.WARN,
            f"all {len(packaged)} applied, and {len(unknown)} this version does not ship:"
            f" {', '.join(unknown)}",
            "a newer usage-gateway migrated this database: run that version",
        )
    if renamed:
        return Check(
            "migrations",
            Status.WARN,
            f"all {len(packaged)} applied, under other names: {', '.join(renamed)}",
            "the database was migrated by a different build of usage-gateway",
        )
    return Check("migrations", Status.OK, f"all {len(packaged)} applied (latest {latest})")


def check_redis(url: str, timeout_seconds: float) -> Check:
    """PING with the configured URL, once: no retries, each step bounded by ``timeout_seconds``."""
    try:
        parts = urlsplit(url)
        target = f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}" if parts.hostname else url
    except ValueError:
        target = "?"
    try:
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout_seconds,
            socket_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 0),
        )
    except ValueError as exc:
        return Check(
            "redis",
            Status.FAIL,
            f"{REDIS_SETTING} is not a Redis URL: {exc}",
            "use redis://[:password@]host:6379/0 (rediss:// for TLS), or unset it to run without Redis",
        )
    try:
        client.ping()
        info = client.info("server")
    except redis.AuthenticationError as exc:
        return Check(
            "redis",
            Status.FAIL,
            f"Redis at {target} ({REDIS_SETTING}) refused the login: {_first_line(exc)}",
            "check the password (and user) in the URL",
        )
    except redis.TimeoutError as exc:
        return Check(
            "redis",
            Status.FAIL,
            f"Redis at {target} ({REDIS_SETTING}) did not answer: {_redis_reason(exc)}",
            "is the host reachable from here, and is it Redis that listens on that port?",
        )
    except redis.RedisError as exc:
        return Check(
            "redis",
            Status.FAIL,
            f"cannot reach Redis at {target} ({REDIS_SETTING}): {_redis_reason(exc)}",
            "is Redis running there? (it is optional: unset the variable to run without it)",
        )
    finally:
        client.close()
    return Check("redis", Status.OK, f"PING answered at {target} (Redis {info.get('redis_version', '?')})")


def _redis_reason(exc: BaseException) -> str:
    """``connection refused``, not ``Error 111 connecting to host:port. Connection refused.``"""
    reason = _CONNECTING.sub("", _first_line(exc)).rstrip(".")
    return reason[:1].lower() + reason[1:]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
