"""``usage-gateway doctor``: checks a deployment's settings and everything they point at, one line each.

The settings come first, loaded as every command loads them; then Postgres with its migrations, Redis
and LiteLLM are checked side by side, each in a thread of its own, so that a black-holed host costs one
timeout, not one per check, and the whole run ends within ``deadline_seconds`` whatever hangs.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from usage_gateway.server.config import ENV_PREFIX, ConfigError, Settings, load_settings
from usage_gateway.server.doctor.litellm import NAMES as LITELLM_NAMES
from usage_gateway.server.doctor.litellm import check_litellm, shown_url
from usage_gateway.server.doctor.report import Check, Status, failed, render_json, render_text
from usage_gateway.server.doctor.stores import REDIS_SETTING, check_postgres, check_redis
from usage_gateway.server.logs import configured_secrets

__all__ = ["Check", "Status", "failed", "render_json", "render_text", "run_checks", "run_side_by_side"]

STEP_TIMEOUT_SECONDS = 3.0  # one connection, one request
DEADLINE_SECONDS = 10.0  # the whole run, whatever a server does with our requests
_LATER = ("tokens", "postgres", "migrations", "redis", *LITELLM_NAMES)

_ASSIGNED = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=", re.MULTILINE)  # in .env

_Group = tuple[Sequence[str], Callable[[], list[Check]]]


def run_checks(
    *, step_timeout_seconds: float = STEP_TIMEOUT_SECONDS, deadline_seconds: float = DEADLINE_SECONDS
) -> list[Check]:
    try:
        settings = load_settings()
    except ConfigError as exc:
        bad = Check("settings", Status.FAIL, str(exc), "fix that variable in the environment or in .env")
        return [bad, *(Check(name, Status.SKIP, "needs valid settings") for name in _LATER)]
    checks = [_settings_read(), _tokens(settings)]
    key = settings.litellm_master_key.get_secret_value() if settings.litellm_master_key else None
    redis_url = settings.redis_url
    groups: list[_Group] = [
        (
            ("postgres", "migrations"),
            lambda: list(check_postgres(settings.database_url, step_timeout_seconds)),
        ),
        (
            ("redis",),
            lambda: [
                check_redis(redis_url, step_timeout_seconds)
                if redis_url
                else Check("redis", Status.SKIP, f"{REDIS_SETTING} is not set (optional)")
            ],
        ),
        (LITELLM_NAMES, lambda: check_litellm(settings.litellm_url, key, step_timeout_seconds)),
    ]
    checks += run_side_by_side(groups, deadline_seconds)
    secrets = (*configured_secrets(settings), *_url_passwords(settings.litellm_url, settings.jwt_jwks_url))
    return [check.redacted(secrets) for check in checks]


def _settings_read() -> Check:
    """Where the settings came from, and any ``USAGE_GATEWAY_*`` name that is no setting: the settings
    ignore unknown names, so a misspelt one leaves its setting at the default without a word."""
    env_file = Path(".env")
    source = "the environment and .env" if env_file.is_file() else "the environment (no .env here)"
    names = set(os.environ)
    if env_file.is_file():
        with contextlib.suppress(OSError):  # unreadable: the settings could not read it either
            names.update(_ASSIGNED.findall(env_file.read_text(encoding="utf-8", errors="replace")))
    known = {f"{ENV_PREFIX}{field.upper()}" for field in Settings.model_fields}
    unknown = sorted(
        name for name in names if name.upper().startswith(ENV_PREFIX) and name.upper() not in known
    )
    if not unknown:
        return Check("settings", Status.OK, f"read from {source}")
    guesses = []
    for name in unknown:
        close = difflib.get_close_matches(name.upper(), known, n=1)
        guesses.append(f"{name} ({close[0]}?)" if close else name)
    return Check(
        "settings",
        Status.WARN,
        f"read from {source}; not settings, so ignored: {', '.join(guesses)}",
        'fix or remove those names (the README\'s "Settings" lists every setting)',
    )


def _url_passwords(*urls: str | None) -> list[str]:
    """Passwords in URLs that ``configured_secrets`` does not look into (a proxy's basic auth)."""
    found = []
    for url in urls:
        try:
            password = urlsplit(url).password if url else None
        except ValueError:
            continue
        if password and len(password) >= 4:
            found += [password, unquote(password)]
    return found


def _tokens(settings: Settings) -> Check:
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else ""
    jwks = settings.jwt_jwks_url
    if not secret and not jwks:
        return Check(
            "tokens",
            Status.FAIL,
            f"neither {ENV_PREFIX}JWT_SECRET nor {ENV_PREFIX}JWT_JWKS_URL is set:"
            " every request is answered 401",
            "set JWT_SECRET (`openssl rand -hex 32`) or JWT_JWKS_URL (your identity provider's JWKS)",
        )
    if secret and len(secret.encode()) < 32:
        return Check(
            "tokens",
            Status.WARN,
            f"{ENV_PREFIX}JWT_SECRET is shorter than 32 bytes",
            "use `openssl rand -hex 32`; changing it revokes every token",
        )
    ways = [f"the JWKS at {shown_url(jwks)}"] if jwks else []
    ways += [f"{ENV_PREFIX}JWT_SECRET (HS256)"] if secret else []
    return Check("tokens", Status.OK, f"checked with {' and '.join(ways)}")


def run_side_by_side(groups: Sequence[_Group], deadline_seconds: float) -> list[Check]:
    """Each group's checks, run in a daemon thread (one that hangs cannot keep the process alive);
    a group unfinished at the deadline fails its first check and skips the others."""
    results: dict[int, list[Check]] = {}

    def run(index: int, names: Sequence[str], work: Callable[[], list[Check]]) -> None:
        try:
            results[index] = work()
        except Exception as exc:  # a bug or an error nobody foresaw: a line, never a traceback
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            results[index] = [
                Check(names[0], Status.FAIL, f"the check itself failed ({reason})"),
                *_skip(names),
            ]

    threads = [
        threading.Thread(target=run, args=(index, names, work), name=f"doctor-{names[0]}", daemon=True)
        for index, (names, work) in enumerate(groups)
    ]
    for thread in threads:
        thread.start()
    end = time.monotonic() + deadline_seconds
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    checks: list[Check] = []
    for index, (names, _) in enumerate(groups):
        if index in results:
            checks += results[index]
        else:
            late = Check(
                names[0],
                Status.FAIL,
                f"no answer within {deadline_seconds:g} s",
                "is the host reachable from here (firewall, network)?",
            )
            checks += [late, *_skip(names)]
    return checks


def _skip(names: Sequence[str]) -> list[Check]:
    return [Check(name, Status.SKIP, f"needs {names[0]}") for name in names[1:]]
