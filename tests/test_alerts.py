"""``usage-gateway alerts --once`` against a real webhook receiver on loopback: each alert is posted once,
a second run posts nothing, a failing webhook loses nothing (exit 1, nothing marked sent, posted on the
next run exactly once), and two runs at once post each alert once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import astuple
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest

from tests.facts_data import COPY, Fact
from usage_gateway.devtools.local_services import LocalPostgres

TODAY = datetime.now(UTC).date()
ALICE_KEY, BOB_KEY, CAROL_KEY = "a" * 64, "b" * 64, "c" * 64


class Receiver(ThreadingHTTPServer):
    """A webhook: records every JSON body it is posted, answers ``status``."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.status = 200
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/secret-path"

    def identities(self) -> list[str]:
        with self.lock:
            return [body["blocks"][-1]["elements"][0]["text"].split("`")[1] for body in self.bodies]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.bodies.append(body)
        self.send_response(self.server.status)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def fact(day_offset: int, api_key: str, user_id: str, spend: str) -> Fact:
    return Fact(
        date=TODAY - timedelta(days=day_offset), api_key=api_key, litellm_user_id=user_id, model="gpt-4o",
        provider="openai", user_id=user_id, spend=Decimal(spend), prompt_tokens=0, completion_tokens=0,
        cache_read_input_tokens=0, cache_creation_input_tokens=0, total_tokens=0, api_requests=1,
        successful_requests=1, failed_requests=0, total_response_time_ms=0, timed_requests=0,
        team_id="no-team",
    )  # fmt: skip


def seed(database_url: str) -> None:
    """Alice 12 today against a monthly 10; Bob's key 12 against 20; Carol 1 a day for three weeks, then
    100 yesterday (an anomaly of her, her key, the model and no-team)."""
    facts = [
        fact(0, ALICE_KEY, "alice", "12"),
        fact(0, BOB_KEY, "bob", "12"),
        fact(1, CAROL_KEY, "carol", "100"),
    ]
    facts += [fact(n, CAROL_KEY, "carol", "1") for n in range(2, 24)]
    with psycopg.connect(database_url) as conn, conn.cursor() as cursor:
        cursor.execute(
            "INSERT INTO users (id, username) VALUES ('alice', 'Alice'), ('bob', 'Bob'), ('carol', 'Carol')"
        )
        cursor.execute(
            "INSERT INTO api_keys (id, token_hash, user_id, key_alias) VALUES"
            " ('key-a', %s, 'alice', 'a-laptop'), ('key-b', %s, 'bob', 'b-ci'),"
            " ('key-c', %s, 'carol', 'c-agent')",
            (ALICE_KEY, BOB_KEY, CAROL_KEY),
        )
        with cursor.copy(COPY) as copy:
            for row in facts:
                copy.write_row(astuple(row))
        cursor.execute(
            "INSERT INTO usage_days (date, status, fetched_at, verified, fact_count, spend, api_requests,"
            " total_tokens) SELECT d::date, CASE WHEN d::date = %s THEN 'open' ELSE 'closed' END, now(),"
            " true, 0, 0, 0, 0 FROM generate_series(%s::date - 30, %s::date, '1 day') AS d",
            (TODAY, TODAY, TODAY),
        )
        cursor.execute(
            "INSERT INTO budgets (entity, entity_id, max_budget, budget_duration) VALUES"
            " ('USER', 'alice', 10, '1mo'), ('API_KEY', %s, 20, '1mo')",
            (BOB_KEY,),
        )


def run_alerts(database_url: str, webhook: str | None, *args: str) -> subprocess.Popen[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("USAGE_GATEWAY_")},
        "USAGE_GATEWAY_DATABASE_URL": database_url,
        **({"USAGE_GATEWAY_ALERT_WEBHOOK_URL": webhook} if webhook else {}),
    }
    command = [
        sys.executable,
        "-c",
        "from usage_gateway.server.cli import main; main()",
        "alerts",
        "--once",
        *args,
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def recorded(database_url: str) -> dict[str, tuple[bool, int]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT identity, sent_at IS NOT NULL, attempts FROM alerts").fetchall()
    return {row[0]: (row[1], row[2]) for row in rows}


def test_alerts_are_posted_once_and_nothing_is_lost(database_url: str, receiver: Receiver) -> None:
    seed(database_url)
    month = TODAY.replace(day=1).isoformat()
    budget_ids = {f"budget:USER:alice:{month}:100", f"budget:API_KEY:{BOB_KEY}:{month}:50"}
    day = (TODAY - timedelta(days=1)).isoformat()
    anomaly_ids = {
        f"anomaly:USER:carol:{day}:SPEND",
        f"anomaly:API_KEY:{CAROL_KEY}:{day}:SPEND",
        f"anomaly:MODEL:gpt-4o:{day}:SPEND",
        f"anomaly:TEAM:no-team:{day}:SPEND",
    }

    # A dry run prints what would go out, posts and records nothing.
    code, out, err = finish(run_alerts(database_url, None, "--dry-run"))
    assert code == 0, err
    printed = [json.loads(line) for line in out.splitlines()]
    assert {p["identity"] for p in printed} == budget_ids | anomaly_ids
    alice = next(p for p in printed if p["identity"].startswith("budget:USER:alice"))
    assert "Budget exceeded" in alice["text"]
    assert "$12.00 of $10.00" in alice["text"]
    assert alice["blocks"][0] == {"type": "section", "text": {"type": "mrkdwn", "text": alice["text"]}}
    assert receiver.bodies == []
    assert recorded(database_url) == {}

    # The webhook fails: exit 1, each failure named, nothing marked sent.
    receiver.status = 500
    code, out, err = finish(run_alerts(database_url, receiver.url))
    assert code == 1
    assert sorted(receiver.identities()) == sorted(budget_ids | anomaly_ids)
    for identity in budget_ids | anomaly_ids:
        assert f"alert {identity} not sent: the webhook answered HTTP 500" in err
    assert "secret-path" not in out + err
    assert recorded(database_url) == dict.fromkeys(budget_ids | anomaly_ids, (False, 1))

    # Fixed: the next run posts every one of them, exactly once, and settles Alice's lower thresholds.
    receiver.status = 200
    receiver.bodies.clear()
    code, out, err = finish(run_alerts(database_url, receiver.url))
    assert code == 0, err
    assert sorted(receiver.identities()) == sorted(budget_ids | anomaly_ids)
    assert "alerts: 6 sent, 0 sent before, 0 failed" in out
    sent = recorded(database_url)
    assert sent[f"budget:USER:alice:{month}:50"] == (True, 1)
    assert sent[f"budget:USER:alice:{month}:80"] == (True, 1)
    assert all(sent[identity] == (True, 2) for identity in budget_ids | anomaly_ids)

    # A second run posts nothing.
    receiver.bodies.clear()
    code, out, err = finish(run_alerts(database_url, receiver.url))
    assert code == 0, err
    assert receiver.bodies == []
    assert "alerts: 0 sent, 6 sent before, 0 failed" in out

    # Two runs at once: the new alerts go out once.
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO budgets (entity, entity_id, max_budget, budget_duration)"
            " VALUES ('USER', 'bob', 15, '7d')"
        )
    first, second = run_alerts(database_url, receiver.url), run_alerts(database_url, receiver.url)
    assert finish(first)[0] == 0
    assert finish(second)[0] == 0
    assert [identity.rsplit(":", 2)[0] for identity in receiver.identities()] == ["budget:USER:bob"]


def test_alerts_refuse_without_a_webhook_or_once(database_url: str, postgres_server: LocalPostgres) -> None:
    code, _, err = finish(run_alerts(database_url, None))
    assert code == 1
    assert "USAGE_GATEWAY_ALERT_WEBHOOK_URL is not set" in err
    env = {**os.environ, "USAGE_GATEWAY_DATABASE_URL": database_url}
    command = [sys.executable, "-c", "from usage_gateway.server.cli import main; main()", "alerts"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "pass --once" in done.stderr
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE alerts_unmigrated")
    try:
        code, _, err = finish(run_alerts(postgres_server.url_for("alerts_unmigrated"), None, "--dry-run"))
    finally:
        with psycopg.connect(postgres_server.url, autocommit=True) as conn:
            conn.execute("DROP DATABASE alerts_unmigrated")
    assert code == 1
    assert "run `usage-gateway migrate`" in err
    assert "Traceback" not in err
