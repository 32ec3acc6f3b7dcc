"""The command line, run as a real process against real Postgres, Redis and the LiteLLM-compatible server."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from tests.expected import total_of
from tests.test_day_cache import spread_rows
from usage_gateway.devtools.litellm_compat import LiteLLMStore, running_litellm

CLI = str(Path(sys.executable).with_name("usage-gateway"))


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_bad_configuration_stops_with_one_line_naming_the_variable(database_url: str) -> None:
    result = run_cli("migrate", env={"USAGE_GATEWAY_LITELLM_CONCURRENCY": "zero"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "USAGE_GATEWAY_LITELLM_CONCURRENCY" in lines[0]


def test_migrate_backfill_and_refresh_today(database_url: str, redis_url: str) -> None:
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=n) for n in range(5, -1, -1)]
    store = LiteLLMStore(keys=[], users=[], rows=spread_rows(days))
    with running_litellm(store) as url:
        env = {
            "USAGE_GATEWAY_DATABASE_URL": database_url,
            "USAGE_GATEWAY_REDIS_URL": redis_url,
            "USAGE_GATEWAY_LITELLM_URL": url,
            "USAGE_GATEWAY_LITELLM_MASTER_KEY": store.master_key,
        }
        migrated = run_cli("migrate", env=env)
        assert migrated.returncode == 0, migrated.stderr
        # The test database is a clone of a migrated template: nothing left to apply.
        assert "applied 0 migration(s)" in migrated.stdout

        backfill = run_cli("backfill", "--from", days[0].isoformat(), "--to", days[-1].isoformat(), env=env)
        assert backfill.returncode == 0, backfill.stderr
        assert "6 day(s): 6 fetched, 0 failed, 0 unverified" in backfill.stdout
        # One batch, read model by model: one /aggregated request, not one per day.
        assert len(store.requests_for("/user/daily/activity/aggregated")) == 1
        assert "backfill" in backfill.stdout + backfill.stderr  # plain progress lines when not on a terminal
        assert store.master_key not in backfill.stdout + backfill.stderr

        refreshed = run_cli("refresh-today", env=env)
        assert refreshed.returncode == 0, refreshed.stderr
        assert f"{today.isoformat()}: refreshed" in refreshed.stdout

    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT sum(api_requests), count(DISTINCT date) FROM usage_facts").fetchone()
    assert stored == (total_of(store.rows()).api_requests, 6)


def test_backfill_refresh_reads_closed_days_again(database_url: str, redis_url: str) -> None:
    """A day stored before migration 0009 (facts, no model groups) stays closed; --refresh reads it."""
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=n) for n in range(8, 5, -1)]  # closed days
    store = LiteLLMStore(keys=[], users=[], rows=spread_rows(days))
    span = ("--from", days[0].isoformat(), "--to", days[-1].isoformat())
    with running_litellm(store) as url:
        env = {
            "USAGE_GATEWAY_DATABASE_URL": database_url,
            "USAGE_GATEWAY_REDIS_URL": redis_url,
            "USAGE_GATEWAY_LITELLM_URL": url,
            "USAGE_GATEWAY_LITELLM_MASTER_KEY": store.master_key,
        }
        first = run_cli("backfill", *span, env=env)
        assert "3 day(s): 3 fetched, 0 failed, 0 unverified" in first.stdout, first.stderr
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DELETE FROM usage_breakdown_facts WHERE date = %s", (days[1],))
        again = run_cli("backfill", *span, env=env)
        assert "3 day(s): 0 fetched, 0 failed, 0 unverified" in again.stdout, again.stderr
        refreshed = run_cli("backfill", *span, "--refresh", env=env)
        assert refreshed.returncode == 0, refreshed.stderr
        assert "3 day(s): 3 fetched, 0 failed, 0 unverified" in refreshed.stdout
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM usage_breakdown_facts WHERE date = %s AND rollup = 'model_group'",
            (days[1],),
        ).fetchone()
        states = conn.execute("SELECT DISTINCT status FROM usage_days").fetchall()
    assert row is not None
    assert row[0] > 0
    assert states == [("closed",)]


def test_backfill_rejects_a_reversed_range(database_url: str) -> None:
    result = run_cli(
        "backfill",
        "--from",
        "2026-11-05",
        "--to",
        "2026-11-01",
        env={"USAGE_GATEWAY_DATABASE_URL": database_url},
    )
    assert result.returncode == 2
    assert "--to is before --from" in result.stderr
