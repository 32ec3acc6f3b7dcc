"""``usage-gateway serve`` as operators run it: the request id in the JSON log lines of its request, and
``/metrics`` summed over ``--workers`` processes, whichever of them answers the scrape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api_client import LITELLM_MASTER_KEY, SECRET
from tests.metrics_scrape import Samples, parse, value
from tests.test_answer_cache import DAYS, RANGE, litellm, rows_for
from tests.test_metrics import ADMIN, TOTALS
from usage_gateway.devtools.local_services import free_port
from usage_gateway.server.config import ENV_PREFIX
from usage_gateway.server.metrics import MULTIPROC_DIR

CLI = str(Path(sys.executable).with_name("usage-gateway"))
P = "usage_gateway_"


@contextmanager
def serve(
    database_url: str,
    litellm_url: str,
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    **settings: str,
) -> Iterator[str]:
    """``usage-gateway serve`` with JSON logs to ``cwd/stderr.log``, ready; yields its base URL. ``env``
    adds variables other than settings (which are given by name, without the prefix)."""
    port = free_port()
    ours = (ENV_PREFIX, "OTEL_", MULTIPROC_DIR)
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)} | (env or {})
    env.update(
        {
            f"{ENV_PREFIX}DATABASE_URL": database_url,
            f"{ENV_PREFIX}LITELLM_URL": litellm_url,
            f"{ENV_PREFIX}LITELLM_MASTER_KEY": LITELLM_MASTER_KEY,
            f"{ENV_PREFIX}JWT_SECRET": SECRET,
            f"{ENV_PREFIX}LOG_FORMAT": "json",
            f"{ENV_PREFIX}ANSWER_CACHE_TTL_SECONDS": "0",
            **{f"{ENV_PREFIX}{name.upper()}": setting for name, setting in settings.items()},
        }
    )
    with (cwd / "stderr.log").open("w") as stderr:
        process = subprocess.Popen(
            [CLI, "serve", "--port", str(port), *args], env=env, cwd=cwd, stdout=stderr, stderr=stderr
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, (cwd / "stderr.log").read_text()
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "serve did not become ready"
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)


def post(url: str, variables: dict[str, Any], **headers: str) -> httpx.Response:
    body = {"query": TOTALS, "variables": variables}
    headers = {"Authorization": f"Bearer {ADMIN}", **headers}
    return httpx.post(f"{url}/graphql", json=body, headers=headers, timeout=30)


def log_lines(cwd: Path) -> list[dict[str, Any]]:
    lines = []
    for line in (cwd / "stderr.log").read_text().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_the_request_id_is_in_every_log_line_of_its_request(database_url: str, tmp_path: Path) -> None:
    with litellm(rows_for(DAYS)) as (_, litellm_url), serve(database_url, litellm_url, tmp_path) as url:
        given = post(url, RANGE, **{"X-Request-ID": "trace-0001"})
        fresh = post(url, {"from": "2026-10-01", "to": "2026-10-02"})
        insane = post(url, RANGE, **{"X-Request-ID": "no spaces or / allowed"})
        health = httpx.get(f"{url}/healthz", headers={"X-Request-ID": "probe-7"}, timeout=5)
        missing = httpx.get(f"{url}/nowhere", timeout=5)
        time.sleep(0.2)  # the log lines are written by now; read them before the server stops
        lines = log_lines(tmp_path)
    assert given.status_code == fresh.status_code == 200
    assert given.headers["x-request-id"] == "trace-0001"
    generated = fresh.headers["x-request-id"]
    assert len(generated) == 32
    assert int(generated, 16) >= 0
    replaced = insane.headers["x-request-id"]
    assert replaced not in {generated, "no spaces or / allowed"}
    assert len(replaced) == 32
    assert health.headers["x-request-id"] == "probe-7"
    assert missing.status_code == 404
    assert len(missing.headers["x-request-id"]) == 32
    assert not [line for line in lines if line["event"].startswith("tracing.")]  # no OTEL_* variable
    # The data layer's lines (the day cache read the days of each range from LiteLLM) carry the id of
    # the request they served, the given one and the generated one alike.
    for rid, days in (("trace-0001", RANGE), (generated, {"from": "2026-10-01", "to": "2026-10-02"})):
        fetched = [line for line in lines if line.get("event") == "day.fetched" and line["request_id"] == rid]
        assert sorted(line["day"] for line in fetched) == list(days.values()), lines


@pytest.mark.slow
def test_metrics_are_summed_over_the_workers(database_url: str, tmp_path: Path) -> None:
    requests, pool_size = 8, 21
    before = set(Path(tempfile.gettempdir()).glob("usage-gateway-metrics-*"))
    with (
        litellm(rows_for(DAYS)) as (_, litellm_url),
        serve(database_url, litellm_url, tmp_path, "--workers", "2", db_pool_size=str(pool_size)) as url,
    ):
        shared = set(Path(tempfile.gettempdir()).glob("usage-gateway-metrics-*")) - before
        # Each worker publishes its pool when it starts: both have once the sum is two pools.
        deadline = time.monotonic() + 30
        while value(scrape(url), P + "db_pool_max_connections") != 2 * pool_size:
            assert time.monotonic() < deadline, "the two workers' pools were not summed"
            time.sleep(0.2)
        assert [post(url, RANGE).status_code for _ in range(requests)] == [200] * requests
        scrapes = [scrape(url) for _ in range(6)]  # answered by either worker
    for samples in scrapes:
        assert value(samples, P + "graphql_requests_total", operation="Totals", outcome="ok") == requests
        assert value(samples, P + "days_fetched_total", verified="true") == len(DAYS)
        assert value(samples, P + "db_pool_max_connections") == 2 * pool_size
    assert len(shared) == 1, "serve made a directory for the workers' samples"
    assert not any(path.exists() for path in shared), "and removed it when it stopped"


def scrape(url: str) -> Samples:
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return parse(response.text)
