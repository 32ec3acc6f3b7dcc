"""`usage-gateway demo` starts from nothing, answers a dashboard query, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser import PageLog, launched_chromium

USAGE_GATEWAY = str(Path(sys.executable).with_name("usage-gateway"))
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

    def __init__(self, cwd: Path) -> None:
        self.process = subprocess.Popen(
            [USAGE_GATEWAY, "demo", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            cwd=cwd,  # the demo keeps its secret in ./var
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
def demo(tmp_path: Path) -> Iterator[DemoProcess]:
    process = DemoProcess(tmp_path)
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


VIEWER = "{ viewer { id roles } }"


# The whole answer in GraphiQL's result pane (CodeMirror draws only the lines in view).
RESPONSE_TEXT = "document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()"


def code_of(login: str) -> str:
    return login.split("code=", 1)[1]


def _viewer(url: str, token: str) -> httpx.Response:
    return httpx.post(url, json={"query": VIEWER}, headers={"Authorization": f"Bearer {token}"}, timeout=30)


@pytest.mark.slow
def test_demo_tokens_survive_a_restart_and_graphiql_opens_with_the_header(tmp_path: Path) -> None:
    first = DemoProcess(tmp_path)
    try:
        url = first.wait_for(r"^GraphiQL: (http://\S+/graphql)$", START_TIMEOUT).group(1)
        token = first.wait_for(r"^Admin token: (\S+)$", 5).group(1)
        login = first.wait_for(r"^(http://\S+/demo/graphiql\?code=\S+)$", 5).group(1)
        assert _viewer(url, token).json()["data"]["viewer"]["roles"] == ["ADMIN"]
        assert token not in first.output.split("Admin token:")[1].split("\n", 1)[1]  # printed once, in no URL
        assert token not in login

        with launched_chromium() as browser:
            page = browser.new_page()
            log = PageLog(allowed_origins=(url.removesuffix("/graphql"),))
            log.watch(page)
            visit = page.goto(login)
            assert visit is not None
            assert visit.headers["cache-control"] == "no-store"  # the page holds the token
            # The address bar drops the code and shows the examples' link; the header editor holds the token.
            expect(page).to_have_url(re.compile(r"/graphql\?q=.*Dashboard"))
            expect(page.locator(".graphiql-query-editor")).to_contain_text("query TopUsersWithModels")
            page.get_by_text("Headers", exact=True).click()
            expect(page.locator(".graphiql-editor-tool")).to_contain_text(f"Bearer {token[:40]}")
            # The run button offers each example; the dashboard's numbers come back with no error.
            page.locator(".graphiql-execute-button").click()
            page.get_by_role("menuitem", name="Dashboard").click()
            result_pane = page.locator(".graphiql-response")
            expect(result_pane).to_contain_text('"totals"', timeout=QUERY_TIMEOUT * 1000)
            answer = json.loads(page.evaluate(RESPONSE_TEXT))
            assert "errors" not in answer
            assert answer["data"]["usage"]["freshness"]["complete"] is True
            assert answer["data"]["usage"]["totals"]["requests"] > 0
            assert log.refused == []
            assert log.errors == []
            assert code_of(login) not in page.url
            # The code works once, also from the browser that used it.
            assert page.goto(login) is not None
            expect(page.locator("body")).to_contain_text("works once")
        assert httpx.get(login, timeout=30).status_code == 410
        assert httpx.get(url.replace("/graphql", "/demo/graphiql?code=guess"), timeout=30).status_code == 410
    finally:
        first.close()
    secret = tmp_path / "var" / "demo-jwt-secret"
    assert secret.stat().st_mode & 0o777 == 0o600

    second = DemoProcess(tmp_path)
    try:
        url = second.wait_for(r"^GraphiQL: (http://\S+/graphql)$", START_TIMEOUT).group(1)
        response = _viewer(url, token)  # the first run's token
        assert response.status_code == 200, response.text
        assert response.json()["data"]["viewer"]["roles"] == ["ADMIN"]
    finally:
        second.close()


def test_a_busy_port_is_named_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = subprocess.run(
            [USAGE_GATEWAY, "demo", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"port {port} on 127.0.0.1 is in use" in lines[0]
    assert "--port" in lines[0]
