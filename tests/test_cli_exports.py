"""``sync-directory`` and ``export`` as real processes, against Postgres and the LiteLLM-compatible server."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import psycopg

from tests.golden_files import GOLDEN_DIR
from tests.test_cli import run_cli
from usage_gateway.devtools.litellm_compat import LiteLLMStore, running_litellm

GOLDEN = GOLDEN_DIR / "directory.json"


def test_sync_directory_then_export_a_users_usage(database_url: str, tmp_path: Path) -> None:
    store = LiteLLMStore.from_golden(GOLDEN)
    with running_litellm(store) as url:
        env = {
            "USAGE_GATEWAY_DATABASE_URL": database_url,
            "USAGE_GATEWAY_LITELLM_URL": url,
            "USAGE_GATEWAY_LITELLM_MASTER_KEY": store.master_key,
        }
        synced = run_cli("sync-directory", env=env)
        assert synced.returncode == 0, synced.stderr
        assert "users created: 8" in synced.stdout
        assert "api keys created: 13" in synced.stdout
        assert "api keys revoked: 2" in synced.stdout
        assert "HTTP Request" not in synced.stderr  # httpx's line per request is not logged at INFO

        out = tmp_path / "nested" / "kim.csv"
        out.parent.mkdir()  # export writes into an existing directory only
        exported = run_cli(
            "export", "--from", "2026-11-01", "--to", "2026-11-02", "--format", "csv", "--out", str(out),
            "--user", "kim", "--group-by", "date,user,api_key", env=env,
        )  # fmt: skip
        assert exported.returncode == 0, exported.stderr
        assert "export" in exported.stderr  # plain progress lines when not on a terminal
    content = out.read_bytes()
    assert f"{len(content)} bytes, sha256 {hashlib.sha256(content).hexdigest()}" in exported.stdout
    rows = list(csv.DictReader(content.decode().splitlines()))
    assert f"{out}: {len(rows)} rows" in exported.stdout
    assert {row["user_id"] for row in rows} == {"kim"}
    assert {row["key_alias"] for row in rows} == {"kim-key-00"}
    assert [row["date"] for row in rows] == ["2026-11-01", "2026-11-02"]
    with psycopg.connect(database_url) as conn:
        spend = conn.execute("SELECT sum(spend) FROM usage_facts WHERE user_id = 'kim'").fetchone()
        actions = conn.execute("SELECT action, outcome FROM audit_log ORDER BY id").fetchall()
    assert spend is not None
    assert sum(float(row["spend"]) for row in rows) == float(spend[0])
    assert actions == [("syncDirectory", "ok"), ("exportUsage", "ok")]


def test_export_rejects_an_unknown_dimension(database_url: str, tmp_path: Path) -> None:
    result = run_cli(
        "export", "--from", "2026-11-01", "--to", "2026-11-02", "--format", "json", "--out",
        str(tmp_path / "x.json"), "--group-by", "date,star", env={"USAGE_GATEWAY_DATABASE_URL": database_url},
    )  # fmt: skip
    assert result.returncode == 2
    assert "STAR" in result.stderr
