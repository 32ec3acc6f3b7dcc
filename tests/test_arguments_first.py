"""Every argument, limit and permission is checked before LiteLLM is asked, anything is written or an
export starts (queries, mutations, the CLI); unknown ids are errors everywhere, an empty list means none.
Against real Postgres and Redis, with LiteLLM played by the compatible server, whose request log shows
what was asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.api_client import Gateway
from tests.gateway_harness import clock_at, long_after
from tests.test_answer_cache import DAYS, RANGE, gateway, litellm, rows_for
from tests.test_cli import run_cli
from usage_gateway.devtools.litellm_compat import LiteLLMStore
from usage_gateway.resolvers.viewer import Role

TOTALS = "query($f: UsageFilter!) { usage(filter: $f) { totals { requests spend } } }"
LONG = {"from": "2025-10-01", "to": "2026-10-04"}  # 369 days: within MAX_RANGE_DAYS (400)


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors") or ()]


async def stored_days(gw: Gateway) -> int:
    row = await gw.db.fetch_one("SELECT count(*) FROM usage_days")
    assert row is not None
    return int(row[0])


async def refused(gw: Gateway, store: LiteLLMStore, query: str, variables: dict[str, Any], **kw: Any) -> Any:
    """The body of an answer refused before anything ran: no LiteLLM request, no day stored."""
    response = await gw.post(query, variables, **kw)
    body = response.json()
    assert body["data"] is None, body
    assert store.request_log == []
    assert await stored_days(gw) == 0
    return body


@pytest.mark.parametrize(
    ("query", "variables", "code"),
    [
        # The issue's query: a long range, and `first` out of range on a nested connection.
        (
            "query($f: UsageFilter!) { usage(filter: $f) { totals { requests } byUser(first: 1000) {"
            " nodes { userId } } } }",
            {"f": LONG},
            "BAD_USER_INPUT",
        ),
        # Deeper, through a fragment and a variable.
        (
            "query($f: UsageFilter!, $n: Int!) { usage(filter: $f) { byUser(first: 5) { nodes { ...U } } } }"
            " fragment U on UserUsage { models(first: $n) { model } }",
            {"f": RANGE, "n": -1},
            "BAD_USER_INPUT",
        ),
        (
            'query($f: UsageFilter!) { usage(filter: $f) { byModel(after: "nope") { totalCount } } }',
            {"f": RANGE},
            "BAD_USER_INPUT",
        ),
        (TOTALS, {"f": {"from": "2025-09-01", "to": "2026-10-06"}}, "RANGE_TOO_LARGE"),
        (TOTALS, {"f": {"from": "2026-10-06", "to": "2026-10-05"}}, "BAD_USER_INPUT"),
        (TOTALS, {"f": {**RANGE, "userIds": ["nobody"]}}, "BAD_USER_INPUT"),
        (TOTALS, {"f": {**RANGE, "apiKeyIds": ["no-such-key"]}}, "BAD_USER_INPUT"),
        (
            "query($f: UsageFilter!) { usage(filter: $f) { previousPeriod { requests } } }",
            {"f": {"from": "0001-01-01", "to": "0001-01-02"}},
            "BAD_USER_INPUT",
        ),
        ('{ filterOptions(from: "2026-10-06", to: "2026-10-05") { models } }', {}, "BAD_USER_INPUT"),
    ],
)
async def test_a_query_with_a_bad_argument_asks_litellm_nothing(
    database_url: str, redis_url: str, query: str, variables: dict[str, Any], code: str
) -> None:
    with litellm(rows_for(DAYS)) as (store, url):
        async with gateway(database_url, redis_url, url, clock=clock_at(long_after(DAYS[-1]))) as (gw, _):
            body = await refused(gw, store, query, variables)
            assert codes(body) == [code]


async def test_one_bad_root_field_stops_the_good_one_too(database_url: str, redis_url: str) -> None:
    query = (
        "query($f: UsageFilter!) { good: usage(filter: $f) { totals { requests } }"
        " bad: usage(filter: $f) { byProvider(first: 501) { totalCount } } }"
    )
    with litellm(rows_for(DAYS)) as (store, url):
        async with gateway(database_url, redis_url, url, clock=clock_at(long_after(DAYS[-1]))) as (gw, _):
            body = await refused(gw, store, query, {"f": RANGE})
            assert codes(body) == ["BAD_USER_INPUT"]
            assert body["errors"][0]["path"] == ["bad", "byProvider"]
            # A skipped field is not checked; the rest runs as usual.
            skipped = query.replace("byProvider(first: 501)", "byProvider(first: 501) @skip(if: true)")
            answer = (await gw.post(skipped, {"f": RANGE})).json()
            assert "errors" not in answer, answer
            assert answer["data"]["good"]["totals"]["requests"] == 2 * (1 + 2 + 3)


async def test_what_a_user_may_not_ask_is_refused_before_any_fetch(database_url: str, redis_url: str) -> None:
    with litellm(rows_for(DAYS)) as (store, url):
        async with gateway(database_url, redis_url, url, clock=clock_at(long_after(DAYS[-1]))) as (gw, _):
            alice = gw.token("alice", Role.USER)
            body = await refused(gw, store, TOTALS, {"f": {**RANGE, "userIds": ["bob"]}}, token=alice)
            assert codes(body) == ["FORBIDDEN"]
            export = "mutation($f: UsageFilter!) { exportUsage(filter: $f, format: CSV) { id } }"
            body = await refused(gw, store, export, {"f": {**RANGE, "apiKeyIds": ["key-b"]}}, token=alice)
            assert codes(body) == ["FORBIDDEN"]
            assert await gw.db.fetch_one("SELECT count(*) FROM exports") == (0,)


async def test_a_mutation_with_a_bad_argument_writes_nothing_but_its_audit_entry(
    database_url: str, redis_url: str
) -> None:
    refresh = "mutation($from: Date!, $to: Date!) { refreshRange(from: $from, to: $to) { days } }"
    export = "mutation($f: UsageFilter!) { exportUsage(filter: $f, format: CSV) { id } }"
    with litellm(rows_for(DAYS)) as (store, url):
        async with gateway(database_url, redis_url, url, clock=clock_at(long_after(DAYS[-1]))) as (gw, _):
            body = await refused(gw, store, refresh, {"from": "2026-10-06", "to": "2026-10-05"})
            assert codes(body) == ["BAD_USER_INPUT"]
            body = await refused(gw, store, refresh, {"from": "2024-01-01", "to": "2026-10-05"})
            assert codes(body) == ["RANGE_TOO_LARGE"]
            body = await refused(gw, store, export, {"f": {**RANGE, "userIds": ["nobody"]}})
            assert codes(body) == ["BAD_USER_INPUT"]
            assert "nobody" in body["errors"][0]["message"]
            rows = await gw.db.fetch_all("SELECT action, outcome FROM audit_log ORDER BY id")
            assert rows == [
                ("refreshRange", "bad_user_input"),
                ("refreshRange", "range_too_large"),
                ("exportUsage", "bad_user_input"),
            ]
            assert await gw.db.fetch_one("SELECT count(*) FROM exports") == (0,)


async def test_unknown_models_and_providers_are_errors_and_an_empty_list_is_none(
    database_url: str, redis_url: str
) -> None:
    with litellm(rows_for(DAYS)) as (_, url):
        async with gateway(database_url, redis_url, url, clock=clock_at(long_after(DAYS[-1]))) as (gw, _):

            async def ask(f: dict[str, Any]) -> dict[str, Any]:
                body: dict[str, Any] = (await gw.post(TOTALS, {"f": {**RANGE, **f}})).json()
                return body

            typo = await ask({"models": ["gpt-4o", "gtp-4o"]})
            assert codes(typo) == ["BAD_USER_INPUT"]
            assert "unknown models: gtp-4o" in typo["errors"][0]["message"]
            typo = await ask({"providers": ["opneai"]})
            assert codes(typo) == ["BAD_USER_INPUT"]
            assert "unknown providers: opneai" in typo["errors"][0]["message"]
            assert (await ask({"models": ["claude-3"]}))["data"]["usage"]["totals"]["requests"] == 4
            # Seen on a stored day, not in this range: legitimately zero.
            earlier = {"from": "2026-10-01", "to": "2026-10-01", "models": ["claude-3"]}
            body = await ask(earlier)
            assert "errors" not in body, body
            assert body["data"]["usage"]["totals"]["requests"] == 0
            for empty in ("models", "providers", "userIds", "apiKeyIds"):
                body = await ask({empty: []})
                assert "errors" not in body, body
                assert body["data"]["usage"]["totals"] == {"requests": 0, "spend": 0.0}
            export = "mutation($f: UsageFilter!) { exportUsage(filter: $f, format: CSV) { id } }"
            body = (await gw.post(export, {"f": {**RANGE, "providers": ["nope"]}})).json()
            assert codes(body) == ["BAD_USER_INPUT"]
            assert await gw.db.fetch_one("SELECT count(*) FROM exports") == (0,)


# --- The CLI ---------------------------------------------------------------------------------------------


def _cli_env(database_url: str, url: str, store: LiteLLMStore) -> dict[str, str]:
    return {
        "USAGE_GATEWAY_DATABASE_URL": database_url,
        "USAGE_GATEWAY_LITELLM_URL": url,
        "USAGE_GATEWAY_LITELLM_MASTER_KEY": store.master_key,
    }


def _stored_days(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM usage_days").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--user", "nobody"], "unknown user(s): nobody"),
        (["--user", "alice", "--user", "ghost"], "unknown user(s): ghost"),
        (["--api-key", "no-such-key"], "unknown API key(s): no-such-key"),
        (["--to", "2027-01-01"], "MAX_RANGE_DAYS"),
        (["--to", "2025-10-01"], "--to is before --from"),
    ],
)
def test_cli_export_refuses_bad_options_before_asking_litellm(
    database_url: str, tmp_path: Path, options: list[str], message: str
) -> None:
    run_cli("migrate", env={"USAGE_GATEWAY_DATABASE_URL": database_url})
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO users (id) VALUES ('alice')")
    out = tmp_path / "usage.csv"
    with litellm(rows_for(DAYS)) as (store, url):
        result = run_cli(
            "export", "--from", "2025-11-01", "--to", "2025-11-02", "--format", "csv", "--out", str(out),
            *options, env=_cli_env(database_url, url, store),
        )  # fmt: skip
        assert store.request_log == []
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert _stored_days(database_url) == 0


def test_cli_export_refuses_unknown_models_and_providers(database_url: str, tmp_path: Path) -> None:
    run_cli("migrate", env={"USAGE_GATEWAY_DATABASE_URL": database_url})
    out = tmp_path / "usage.csv"
    first, last = DAYS[0].isoformat(), DAYS[-1].isoformat()
    with litellm(rows_for(DAYS)) as (store, url):
        env = _cli_env(database_url, url, store)
        for option, value in (("--model", "gtp-4o"), ("--provider", "opneai")):
            result = run_cli(
                "export", "--from", first, "--to", last, "--format", "csv", "--out", str(out),
                option, value, env=env,
            )  # fmt: skip
            assert result.returncode == 2, result.stderr
            assert f"unknown {option[2:]}(s), never seen in LiteLLM's usage: {value}" in result.stderr
            assert not out.exists()
        known = run_cli(
            "export", "--from", first, "--to", last, "--format", "csv", "--out", str(out),
            "--model", "claude-3", "--provider", "anthropic", "--group-by", "date,model", env=env,
        )  # fmt: skip
    assert known.returncode == 0, known.stderr
    assert out.read_text().count("claude-3") == len(DAYS)
