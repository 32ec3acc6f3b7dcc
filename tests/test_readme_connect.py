"""The README's "Connect your LiteLLM" section, run as written: its settings in a ``.env`` file, then its
commands in order (``migrate``, ``sync-directory``, ``backfill``, ``serve``, ``token`` and the ``curl``),
against real Postgres and Redis and the LiteLLM-compatible server. Only the values a user would put in
(URLs, dates, the port) are replaced."""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from usage_gateway.devtools.demo_data import generate
from usage_gateway.devtools.litellm_compat import MASTER_KEY, LiteLLMStore, running_litellm
from usage_gateway.devtools.local_services import free_port
from usage_gateway.server.config import ENV_PREFIX, Settings

README = Path(__file__).resolve().parent.parent / "README.md"
CLI = str(Path(sys.executable).with_name("usage-gateway"))


def _section() -> str:
    text = README.read_text()
    start = text.index("\n## Connect your LiteLLM\n")
    return text[start : text.index("\n## ", start + 1)]


def _shell_blocks() -> list[list[str]]:
    """Each ```sh block as logical lines: continuations joined, comments kept."""
    blocks = re.findall(r"```sh\n(.*?)```", _section(), re.DOTALL)
    return [block.replace("\\\n", " ").strip().splitlines() for block in blocks]


def _code(line: str) -> str:
    """The line without its trailing comment (the README's commands hold no `#` of their own)."""
    return line.split("  #", 1)[0].strip()


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    return subprocess.run(
        args, cwd=cwd, env=inherited, capture_output=True, text=True, timeout=180, check=False
    )


def test_the_sections_settings_are_settings() -> None:
    names = [line.split("=", 1)[0] for line in _shell_blocks()[0]]
    assert names == [
        f"{ENV_PREFIX}{name}"
        for name in ("DATABASE_URL", "REDIS_URL", "LITELLM_URL", "LITELLM_MASTER_KEY", "JWT_SECRET")
    ]
    assert all(name.removeprefix(ENV_PREFIX).lower() in Settings.model_fields for name in names)


@pytest.mark.skipif(shutil.which("curl") is None, reason="the section's last step is a curl")
def test_connect_your_litellm_as_written(database_url: str, redis_url: str, tmp_path: Path) -> None:
    workdir = tmp_path
    settings, commands, first_query = _shell_blocks()
    data = generate(7)
    today = datetime.now(UTC).date()
    store = LiteLLMStore(data.keys, data.users, data.rows, master_key=MASTER_KEY)
    with running_litellm(store) as litellm_url:
        values = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "LITELLM_URL": litellm_url,
            "LITELLM_MASTER_KEY": MASTER_KEY,
            "JWT_SECRET": secrets.token_hex(32),
        }
        env_lines = []
        for line in settings:
            name = line.split("=", 1)[0]
            env_lines.append(f"{name}={values[name.removeprefix(ENV_PREFIX)]}")
        (workdir / ".env").write_text("\n".join(env_lines) + "\n")

        steps = [shlex.split(_code(line)) for line in commands]
        assert [step[:2] for step in steps] == [
            ["usage-gateway", "migrate"],
            ["usage-gateway", "sync-directory"],
            ["usage-gateway", "backfill"],
            ["usage-gateway", "serve"],
        ]
        migrate, sync, backfill, serve = ([CLI, *step[1:]] for step in steps)

        migrated = _run(migrate, workdir)
        assert migrated.returncode == 0, migrated.stderr
        synced = _run(sync, workdir)
        assert synced.returncode == 0, synced.stderr
        assert f"users created: {len(data.users)}" in synced.stdout
        start, end = today - timedelta(days=2), today
        backfill[backfill.index("--from") + 1] = start.isoformat()
        backfill[backfill.index("--to") + 1] = end.isoformat()
        filled = _run(backfill, workdir)
        assert filled.returncode == 0, filled.stderr
        assert "3 day(s): 3 fetched, 0 failed, 0 unverified" in filled.stdout

        port = free_port()
        server = subprocess.Popen(
            [*serve, "--port", str(port)],
            cwd=workdir,
            env={k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_ready(base, server)
            assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
            checks = httpx.get(f"{base}/readyz").json()["checks"]
            assert set(checks) == {"postgres", "redis", "litellm"}

            token_line, curl_line, expected = first_query
            assignment = re.fullmatch(r"TOKEN=\$\((usage-gateway token .*)\)", _code(token_line))
            assert assignment is not None, token_line
            token_step = shlex.split(assignment.group(1))
            sub = token_step[token_step.index("--sub") + 1]
            with psycopg.connect(database_url) as conn:  # the example's sub is a directory user id
                assert conn.execute("SELECT 1 FROM users WHERE id = %s", (sub,)).fetchone() is not None
            signed = _run([CLI, *token_step[1:]], workdir)
            assert signed.returncode == 0, signed.stderr
            token = signed.stdout.strip()

            curl = _code(curl_line).replace("http://127.0.0.1:8000", base)
            answer = subprocess.run(
                ["bash", "-c", curl],
                env={**os.environ, "TOKEN": token},
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            assert json.loads(answer.stdout) == json.loads(expected.removeprefix("#").strip())
        finally:
            server.terminate()
            server.wait(30)


def _wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, "serve exited"
        try:
            if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail("serve did not become ready in 60 s")
