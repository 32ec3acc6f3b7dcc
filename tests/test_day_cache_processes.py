"""Two gateway processes sharing Postgres (and Redis) still fetch each day once."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from tests.gateway_harness import long_after
from tests.test_day_cache import day_fetches, spread_rows
from usage_gateway.datasources.daycache.days import days_between
from usage_gateway.devtools.litellm_compat import Faults, LiteLLMStore, running_litellm

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("with_redis", [True, False], ids=["redis", "postgres-locks"])
def test_two_gateway_processes_fetch_each_missing_day_once(
    database_url: str, redis_url: str, with_redis: bool
) -> None:
    days = days_between(date(2026, 9, 1), date(2026, 9, 30))
    store = LiteLLMStore(keys=[], users=[], rows=spread_rows(days))
    now = long_after(days[-1]).isoformat()
    with running_litellm(store, Faults(latency_seconds=0.02)) as url:
        args = [
            database_url,
            redis_url if with_redis else "-",
            url,
            days[0].isoformat(),
            days[-1].isoformat(),
            now,
            "25",
        ]
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.gateway_worker", *args],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [worker.communicate(timeout=120) for worker in workers]
    for worker, (out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
        assert out.strip().splitlines()[-1].split() == ["30"] * 25
    # Each day read exactly once across both processes and their 50 requests.
    assert day_fetches(store) == Counter(days)
