"""`usage-gateway demo` starts from nothing, answers a dashboard query, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

START_TIMEOUT = 120
QUERY_TIMEOUT = 180
STOP_TIMEOUT = 30
DASHBOARD = """
query Dashboard($from: Date!, $to: Date!) {
  usage(filter: {from: $from, to: $to}) {
    totals {
      spend requests successfulRequests failedRequests promptTokens completionTokens totalTokens
      activeUsers activeApiKeys activeModels
    }
    byUser(first: 5) { totalCount nodes { userId metrics { spend requests } } }
    freshness { complete missingDays }
  }
}
"""


class DemoProcess:
    """The demo as a child process; a thread drains its output so the pipe never fills."""

    def __init__(self) -> None:
        command = [str(Path(sys.executable).with_name("usage-gateway")), "demo", "--port", "0"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := compiled.search(line):
                    return match
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        pytest.fail(f"no line matching {pattern!r} (exit code {self.process.poll()}):\n{self.output[-5000:]}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(5)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def demo() -> Iterator[DemoProcess]:
    process = DemoProcess()
    try:
        yield process
    finally:
        process.close()


@pytest.mark.slow
def test_demo_answers_a_dashboard_and_stops_cleanly(demo: DemoProcess) -> None:
    url = demo.wait_for(r"^GraphiQL: (http://\S+/graphql)$", START_TIMEOUT).group(1)
    token = demo.wait_for(r"^Admin token: (\S+)$", 5).group(1)
    data_dir = Path(demo.wait_for(r"\(data in (\S+)\)", 5).group(1))
    assert data_dir.exists()

    today = datetime.now(UTC).date()
    variables = {"from": (today - timedelta(days=29)).isoformat(), "to": today.isoformat()}
    with httpx.Client(timeout=QUERY_TIMEOUT) as client:
        page = client.get(url, headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "graphiql" in page.text.lower()
        response = client.post(
            url,
            json={"query": DASHBOARD, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    usage = body["data"]["usage"]
    totals = usage["totals"]
    assert totals["spend"] > 0
    assert totals["requests"] > 0
    assert totals["requests"] == totals["successfulRequests"] + totals["failedRequests"]
    assert totals["totalTokens"] == totals["promptTokens"] + totals["completionTokens"] > 0
    assert min(totals["activeUsers"], totals["activeApiKeys"], totals["activeModels"]) > 0
    nodes = usage["byUser"]["nodes"]
    assert len(nodes) == 5
    assert usage["byUser"]["totalCount"] >= 5
    spends = [node["metrics"]["spend"] for node in nodes]
    assert all(spend > 0 for spend in spends)
    assert spends == sorted(spends, reverse=True)
    assert usage["freshness"]["missingDays"] == []

    demo.process.send_signal(signal.SIGINT)
    assert demo.process.wait(STOP_TIMEOUT) == 0, demo.output[-5000:]
    assert not data_dir.exists()
