"""The command line a new user meets first: ``--version``, the help, ``token``, ``serve``'s options, and
one clear line (not a traceback) when Postgres cannot be reached."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import time
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path

import httpx
import jwt
import pytest

from tests.api_client import open_gateway
from usage_gateway.devtools.litellm_compat import LiteLLMStore, running_litellm
from usage_gateway.devtools.local_services import free_port
from usage_gateway.server.cli import main

CLI = str(Path(sys.executable).with_name("usage-gateway"))
SECRET = "cli-token-secret-" + "0123456789abcdef" * 2
DB_PASSWORD_IN_URL = "pw-n0t-4-logs"  # noqa: S105  # a test value, never a real password


def cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command as a process, with only the ``USAGE_GATEWAY_`` settings given (none inherited) and
    ``cwd`` as its working directory (so no stray ``.env`` is read)."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("USAGE_GATEWAY_")}
    return subprocess.run(
        [CLI, *args],
        env={**inherited, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _words(text: str) -> str:
    return " ".join(text.split())


def _start_seconds(tmp_path: Path) -> float:
    """How long the CLI takes to start and stop doing nothing: on a loaded machine, seconds of imports."""
    started = time.monotonic()
    cli("--version", env={}, cwd=tmp_path)
    return time.monotonic() - started


# --- token ----------------------------------------------------------------------------------------------


async def test_token_signs_a_token_the_gateway_accepts(database_url: str, tmp_path: Path) -> None:
    env = {"USAGE_GATEWAY_JWT_SECRET": SECRET, "USAGE_GATEWAY_JWT_AUDIENCE": "usage-gateway"}
    result = cli("token", "--sub", "alice", "--role", "adminReadonly", "--ttl", "90m", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout == token + "\n"  # alone on stdout, for `TOKEN=$(usage-gateway token …)`
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="usage-gateway")
    assert (claims["sub"], claims["roles"], claims["aud"]) == ("alice", ["adminReadonly"], "usage-gateway")
    assert claims["exp"] - claims["iat"] == timedelta(minutes=90).total_seconds()

    async with open_gateway(database_url, jwt_secret=SECRET, jwt_audience="usage-gateway") as gw:
        response = await gw.client.post(
            "/graphql",
            json={"query": "{ viewer { id roles } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"viewer": {"id": "alice", "roles": ["ADMIN_READONLY"]}}


def test_token_takes_several_roles_and_refuses_bad_ones(tmp_path: Path) -> None:
    env = {"USAGE_GATEWAY_JWT_SECRET": SECRET}
    both = cli("token", "--sub", "root", "--role", "admin", "--role", "user", env=env, cwd=tmp_path)
    assert both.returncode == 0, both.stderr
    claims = jwt.decode(both.stdout.strip(), SECRET, algorithms=["HS256"])
    assert claims["roles"] == ["admin", "user"]
    assert claims["exp"] - claims["iat"] == 12 * 3600  # the default ttl

    for args, message in (
        (("--role", "root"), "'root' is not one of"),
        (("--role", "user", "--ttl", "0"), "at most 365d"),
        (("--role", "user", "--ttl", "5 weeks"), "is not a duration"),
    ):
        refused = cli("token", "--sub", "root", *args, env=env, cwd=tmp_path)
        assert refused.returncode == 2
        assert message in refused.stderr
        assert refused.stdout == ""


def test_token_refuses_when_only_a_jwks_is_configured(tmp_path: Path) -> None:
    result = cli(
        "token", "--sub", "alice", "--role", "user",
        env={"USAGE_GATEWAY_JWT_JWKS_URL": "https://idp.example/.well-known/jwks.json"}, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stdout == ""
    assert "USAGE_GATEWAY_JWT_JWKS_URL is set and USAGE_GATEWAY_JWT_SECRET is not" in result.stderr

    unset = cli("token", "--sub", "alice", "--role", "user", env={}, cwd=tmp_path)
    assert unset.returncode == 1
    assert "USAGE_GATEWAY_JWT_SECRET is not set" in unset.stderr


# --- an unreachable Postgres ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ("migrate",),
        ("serve",),
        ("backfill", "--from", "2026-11-01", "--to", "2026-11-02"),
        ("refresh-today",),
    ],
)
def test_an_unreachable_postgres_is_one_line_naming_the_setting_and_host(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    port = free_port()  # nothing listens there
    env = {"USAGE_GATEWAY_DATABASE_URL": f"postgresql://gw:{DB_PASSWORD_IN_URL}@127.0.0.1:{port}/usage"}
    start_seconds = _start_seconds(tmp_path)
    started = time.monotonic()
    result = cli(*command, env=env, cwd=tmp_path)
    assert time.monotonic() - started < 2 * start_seconds + 5
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "USAGE_GATEWAY_DATABASE_URL" in lines[0]
    assert f"127.0.0.1:{port}" in lines[0]
    assert "connection refused; is Postgres running there?" in lines[0]
    assert DB_PASSWORD_IN_URL not in result.stderr


def test_serve_retries_with_a_visible_backoff_when_asked(tmp_path: Path) -> None:
    port = free_port()
    env = {"USAGE_GATEWAY_DATABASE_URL": f"postgresql://gw:{DB_PASSWORD_IN_URL}@127.0.0.1:{port}/usage"}
    start_seconds = _start_seconds(tmp_path)
    started = time.monotonic()
    result = cli("serve", "--wait-for-database", "3", env=env, cwd=tmp_path)
    assert time.monotonic() - started < 2 * start_seconds + 3 + 5
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert [line.rsplit(" (", 1)[-1] for line in lines[:-1]] == ["retrying in 1 s)", "retrying in 2 s)"]
    assert f"127.0.0.1:{port} (USAGE_GATEWAY_DATABASE_URL)" in lines[-1]
    assert "retrying" not in lines[-1]


def test_a_database_url_that_does_not_parse_is_named_without_its_password(tmp_path: Path) -> None:
    env = {"USAGE_GATEWAY_DATABASE_URL": "postgresql://gw:pw%zz-secret@127.0.0.1:1/usage"}
    result = cli("migrate", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert (
        result.stderr
        == "USAGE_GATEWAY_DATABASE_URL is not a valid postgresql:// URL (check its percent-encoding)\n"
    )


# --- version and help -----------------------------------------------------------------------------------


def test_version(tmp_path: Path) -> None:
    result = cli("--version", env={}, cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout == f"usage-gateway, version {version('usage-gateway')}\n"


def test_the_top_level_help_shows_each_command_whole(tmp_path: Path) -> None:
    result = cli("--help", env={}, cwd=tmp_path)
    assert result.returncode == 0
    shown = _words(result.stdout)
    for name, command in main.commands.items():
        first_paragraph = inspect.cleandoc(command.help or "").split("\n\n", 1)[0]
        assert f"{name} {_words(first_paragraph)}" in shown


def test_serve_help_lists_its_options_and_where_settings_come_from(tmp_path: Path) -> None:
    result = cli("serve", "--help", env={}, cwd=tmp_path)
    assert result.returncode == 0
    for option in ("--host", "--port", "--workers", "--wait-for-database"):
        assert option in result.stdout
    assert "USAGE_GATEWAY_" in result.stdout
    assert ".env" in result.stdout


def test_serve_with_workers_answers_on_the_given_host_and_port(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "USAGE_GATEWAY_DATABASE_URL": database_url, "USAGE_GATEWAY_PORT": "1"}
    # --host and --port win over USAGE_GATEWAY_HOST/PORT; two workers need uvicorn's app factory.
    process = subprocess.Popen(
        [CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.communicate()[1]
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if response.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve --workers 2 did not become ready"
            time.sleep(0.2)
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert stderr.count("Started server process") == 2


# --- export ---------------------------------------------------------------------------------------------


def test_export_refuses_a_missing_directory_before_fetching_anything(
    database_url: str, tmp_path: Path
) -> None:
    store = LiteLLMStore(keys=[], users=[], rows=[])
    out = tmp_path / "missing" / "dir" / "file.csv"
    with running_litellm(store) as url:
        env = {
            "USAGE_GATEWAY_DATABASE_URL": database_url,
            "USAGE_GATEWAY_LITELLM_URL": url,
            "USAGE_GATEWAY_LITELLM_MASTER_KEY": store.master_key,
        }
        result = cli(
            "export", "--from", "2026-11-01", "--to", "2026-11-02", "--format", "csv", "--out", str(out),
            env=env, cwd=tmp_path,
        )  # fmt: skip
        assert store.request_log == []
    assert result.returncode == 2
    assert f"the directory '{out.parent}' does not exist; create it first" in _words(result.stderr)
    assert not (tmp_path / "missing").exists()
