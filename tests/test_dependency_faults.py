"""Our own dependencies failing (issue 14, item 5): Redis and Postgres killed and restarted under load, two
gateway processes on one cold range, and shutdown.

Each test that stops a server starts its own ``redis-server`` or ``postgres`` (never the suite's shared
ones) and restarts it on the same port. The recovery times measured are printed (``pytest -s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest
from psycopg.errors import QueryCanceled
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from structlog.testing import capture_logs

from tests.api_client import SECRET, token_hash
from tests.fault_worker import ranges
from tests.gateway_harness import MASTER_KEY, clock_at, gateway, long_after
from tests.test_answer_cache import DASHBOARD, DAYS, RANGE, ask, rows_for
from tests.test_answer_cache import gateway as answering_gateway
from tests.test_day_cache import spread_rows
from usage_gateway.datasources.daycache.days import days_between
from usage_gateway.datasources.daycache.locks import PostgresDayLocks
from usage_gateway.datasources.daycache.store import DayStore, DayWrite
from usage_gateway.datasources.db import Database
from usage_gateway.datasources.exports import records as exports
from usage_gateway.datasources.exports.writers import ExportFormat
from usage_gateway.datasources.facts.vocabulary import FactFilter
from usage_gateway.datasources.hot_tier import HotTier, HotTierDown, connect
from usage_gateway.datasources.litellm.day_metrics import DayMetrics
from usage_gateway.datasources.litellm.split import Fact
from usage_gateway.devtools.litellm_compat import Faults, LiteLLMStore, running_litellm
from usage_gateway.devtools.local_services import (
    LocalPostgres,
    LocalRedis,
    free_port,
    running_postgres,
    running_redis,
    serving,
)
from usage_gateway.errors import DatabaseUnavailable, UpstreamUnavailable
from usage_gateway.migrations import apply_migrations
from usage_gateway.resolvers.viewer import Role
from usage_gateway.server.app import create_app
from usage_gateway.server.config import ENV_PREFIX, Settings
from usage_gateway.server.health import readiness
from usage_gateway.server.resources import Resources
from usage_gateway.server.tokens import issue_token

REPO = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).with_name("usage-gateway"))


@pytest.fixture
def own_redis() -> Iterator[LocalRedis]:
    with running_redis() as server:
        yield server


@pytest.fixture
def own_postgres() -> Iterator[LocalPostgres]:
    with running_postgres() as server:
        apply_migrations(server.url)
        yield server


def figure(name: str, seconds: float) -> None:
    print(f"\n[fault figure] {name}: {seconds:.3f} s")


async def until(check: Any, *, within: float = 15.0, every: float = 0.01) -> float:
    """Seconds until ``await check()`` returned true (it may raise meanwhile)."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        with contextlib.suppress(Exception):
            if await check():
                return time.monotonic() - started
        await asyncio.sleep(every)
    raise AssertionError(f"not true within {within} s")


# --- Redis ------------------------------------------------------------------------------------------------


async def test_usage_queries_are_answered_with_redis_unreachable_from_the_start(database_url: str) -> None:
    nobody_listens = f"redis://127.0.0.1:{free_port()}/0"
    with running_litellm(LiteLLMStore(keys=[], users=[], rows=rows_for(DAYS))) as url:
        async with answering_gateway(
            database_url, nobody_listens, url, clock=clock_at(long_after(DAYS[-1])), rate_limit_cost=10**6
        ) as (gw, _):
            with capture_logs() as logs:
                took = []
                for _ in range(20):
                    started = time.monotonic()
                    status, body = await ask(gw)
                    took.append(time.monotonic() - started)
                    assert "errors" not in body, body
                    assert status == "bypass"
                    assert body["data"]["usage"]["totals"]["requests"] == 12
                    assert body["data"]["usage"]["freshness"]["complete"] is True
    events = [entry["event"] for entry in logs]
    assert events.count("redis.unavailable") == 1  # once per outage, not per request
    assert "redis.recovered" not in events
    warm = sorted(took[1:])
    figure("usage query, Redis unreachable, warm, median", warm[len(warm) // 2])
    assert warm[-1] < 1.0  # no request waits on Redis


async def test_redis_killed_and_restarted_during_a_burst(database_url: str, own_redis: LocalRedis) -> None:
    days = days_between(date(2026, 8, 1), date(2026, 9, 9))
    store = LiteLLMStore(keys=[], users=[], rows=spread_rows(days))
    wanted = ranges(days[0], days[-1], 100, seed=7)
    with running_litellm(store, Faults(latency_seconds=0.05)) as url, capture_logs() as logs:
        async with gateway(
            database_url, url, redis_url=own_redis.url, clock=clock_at(long_after(days[-1]))
        ) as gw:
            hot, redis = gw.resources.hot, gw.redis
            assert hot is not None
            assert redis is not None

            async def one(i: int, start: date, end: date) -> bool:
                await asyncio.sleep(i * 0.025)  # arrivals over 2.5 s, across the outage
                report = await gw.days.ensure(start, end)
                return report.complete

            burst = asyncio.gather(*(one(i, start, end) for i, (start, end) in enumerate(wanted)))
            await asyncio.sleep(0.4)
            own_redis.kill()
            await asyncio.sleep(0.8)
            await asyncio.to_thread(own_redis.start)
            back = await until(lambda: hot.call("test", lambda r: r.ping()))
            figure("Redis back -> first successful Redis call (client reconnected)", back)
            lock_ttls = [await redis.pttl(key) for key in await redis.keys("ug:lock:*")]
            completed = await burst
            fetched = Counter(entry["day"] for entry in logs if entry["event"] == "day.fetched")
            assert await redis.keys("ug:lock:*") == []
            # The client works again: the day markers are written to the new Redis.
            assert (await gw.days.ensure(days[0], days[-1])).complete
            assert len(await redis.keys("ug:day:*")) == len(days)
    assert completed == [True] * 100  # through the Postgres tier while Redis was gone
    assert all(0 < ttl <= 120_000 for ttl in lock_ttls), lock_ttls
    asked = {day.isoformat() for start, end in wanted for day in days_between(start, end)}
    assert fetched == Counter(asked)  # no day fetched (and stored) twice
    events = [entry["event"] for entry in logs]
    assert events.count("redis.unavailable") == 1
    assert events.count("redis.recovered") == 1


async def test_the_hot_tier_backs_off_and_logs_once_per_outage(redis_url: str) -> None:
    now = [0.0]
    hot = HotTier(connect(redis_url), backoff_seconds=1.0, monotonic=lambda: now[0])
    tried: list[float] = []

    async def flaky(redis: Redis) -> object:
        tried.append(now[0])
        if now[0] < 2.0:  # Redis "down" until t = 2
            raise RedisConnectionError("Connection refused")
        return await redis.ping()

    try:
        with capture_logs() as logs:
            for moment in (0.0, 0.3, 0.9, 1.1, 1.5, 2.5, 2.6):
                now[0] = moment
                with contextlib.suppress(HotTierDown):
                    await hot.call("test", flaky)
            # A command Redis refuses on its own is no outage.
            await hot.client.set("a-string", "x")
            with pytest.raises(HotTierDown):
                await hot.call("test", lambda redis: redis.lpush("a-string", "y"))
        assert hot.up
        assert tried == [0.0, 1.1, 2.5, 2.6]  # nothing tried while backing off
        events = [entry["event"] for entry in logs]
        assert events == ["redis.unavailable", "redis.recovered", "redis.error"]
    finally:
        await hot.close()


async def test_a_server_that_is_not_redis_is_an_outage() -> None:
    with running_litellm(LiteLLMStore(keys=[], users=[], rows=[])) as url:  # speaks HTTP
        hot = HotTier(connect(url.replace("http://", "redis://").rstrip("/") + "/0"))
        try:
            with capture_logs() as logs:
                for _ in range(20):
                    fallback: bytes | str | None = "fallback"
                    assert await hot.attempt("test", lambda redis: redis.get("k"), fallback) == "fallback"
            assert not hot.up
            assert [entry["event"] for entry in logs] == ["redis.unavailable"]
        finally:
            await hot.close()


@pytest.mark.parametrize("redis_up", [True, False], ids=["redis", "redis-unreachable"])
def test_two_gateway_processes_fetch_each_day_of_overlapping_cold_ranges_once(
    database_url: str, redis_url: str, redis_up: bool
) -> None:
    days = days_between(date(2026, 6, 1), date(2026, 7, 15))
    store = LiteLLMStore(keys=[], users=[], rows=spread_rows(days))
    redis = redis_url if redis_up else f"redis://127.0.0.1:{free_port()}/0"
    now = long_after(days[-1]).isoformat()
    with running_litellm(store, Faults(latency_seconds=0.1)) as url:
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.fault_worker",
                    database_url,
                    redis,
                    url,
                    now,
                    days[0].isoformat(),
                    days[-1].isoformat(),
                    "100",
                    str(seed),
                ],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for seed in (1, 2)
        ]
        outputs = [worker.communicate(timeout=60) for worker in workers]
    stored: Counter[str] = Counter()
    for worker, (out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
        result = orjson.loads(out.strip().splitlines()[-1])
        assert (result["complete"], result["failures"]) == (100, [])
        stored.update(result["stored"])
    asked = {
        day.isoformat()
        for seed in (1, 2)
        for start, end in ranges(days[0], days[-1], 100, seed)
        for day in days_between(start, end)
    }
    # Each day fetched and stored once across both processes and their 200 requests. (Counting LiteLLM's
    # requests instead would also count the days a batch's span bridges: read, not stored, see plan_batches.)
    assert stored == Counter(asked)


# --- Postgres ---------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def app_on(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Resources]]:
    resources = await Resources.open(settings, litellm_backoff_seconds=0.01)
    try:
        transport = httpx.ASGITransport(app=create_app(settings, resources=resources))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=30) as client:
            yield client, resources
    finally:
        await resources.close()


async def test_postgres_restarted_during_a_burst(own_postgres: LocalPostgres) -> None:
    days = days_between(date(2026, 5, 1), date(2026, 5, 20))
    store = LiteLLMStore(keys=[], users=[], rows=spread_rows(days))
    admin = {"Authorization": f"Bearer {issue_token(SECRET, 'admin', [Role.ADMIN])}"}
    query = (
        "query($from: Date!, $to: Date!) { usage(filter: {from: $from, to: $to}) { totals { requests } } }"
    )
    with running_litellm(store, Faults(latency_seconds=0.02)) as url:
        settings = Settings(
            database_url=own_postgres.url,
            jwt_secret=SECRET,
            answer_cache_ttl_seconds=0,
            litellm_url=url,
            litellm_master_key=MASTER_KEY,
            litellm_retries=1,
            max_concurrent_operations=16,  # what is measured is Postgres, not admission control
        )
        async with app_on(settings) as (client, resources):

            async def one(i: int) -> tuple[float, float, str]:
                await asyncio.sleep(i * 0.03)  # arrivals over 3 s, across the outage
                start = days[i % 10]
                variables = {"from": start.isoformat(), "to": (start + timedelta(days=9)).isoformat()}
                began = time.monotonic()
                response = await client.post(
                    "/graphql", json={"query": query, "variables": variables}, headers=admin
                )
                body = response.json()
                outcome = body["errors"][0]["extensions"]["code"] if body.get("errors") else "ok"
                return began, time.monotonic(), outcome

            burst = asyncio.gather(*(one(i) for i in range(100)))
            await asyncio.sleep(0.6)
            await asyncio.to_thread(own_postgres.halt)
            down = await readiness(resources)
            await asyncio.sleep(1.2)
            await asyncio.to_thread(own_postgres.start)
            restarted = time.monotonic()
            first_query = await until(lambda: resources.db.fetch_one("SELECT true"))
            ready = await until(lambda: _ready(resources))
            outcomes = await burst
    figure("Postgres back -> first successful query (pool reconnected)", first_query)
    figure("Postgres back -> /readyz 200", first_query + ready)
    assert down.status_code == 503
    assert orjson.loads(bytes(down.body))["checks"]["postgres"]["ok"] is False
    codes = Counter(outcome for _, _, outcome in outcomes)
    assert set(codes) <= {"ok", "DATABASE_UNAVAILABLE"}, codes
    assert codes["DATABASE_UNAVAILABLE"] > 0, codes
    assert codes["ok"] > 0, codes
    failed = [end - began for began, end, outcome in outcomes if outcome != "ok"]
    figure("slowest DATABASE_UNAVAILABLE answer", max(failed))
    assert max(failed) < 3.0  # fast, not the pool's 30 s
    # Every request that began once Postgres answered again succeeded.
    recovered = restarted + first_query
    assert all(outcome == "ok" for began, _, outcome in outcomes if began > recovered)


async def test_a_statement_timeout_is_not_an_outage(database_url: str) -> None:
    db = await Database.open(database_url, max_size=2, statement_timeout_ms=100)
    try:
        with capture_logs() as logs, pytest.raises(QueryCanceled):
            await db.fetch_one("SELECT pg_sleep(1)")
        assert db.up
        assert logs == []
    finally:
        await db.close()


async def test_the_pool_reconnects_soon_after_a_long_outage(own_postgres: LocalPostgres) -> None:
    db = await Database.open(own_postgres.url, max_size=4)
    try:
        await db.fetch_one("SELECT 1")
        own_postgres.halt()
        down_until = time.monotonic() + 8.0  # long enough for a backoff that doubles to reach 8 s
        while time.monotonic() < down_until:  # some traffic meanwhile, as a live gateway has
            with pytest.raises(DatabaseUnavailable):
                await db.fetch_one("SELECT 1")
            await asyncio.sleep(0.2)
        await asyncio.to_thread(own_postgres.start)
        back = await until(lambda: db.fetch_one("SELECT true"))
        figure("Postgres back after 8 s down -> first successful query", back)
        assert back < 2.5
    finally:
        await db.close()


async def _ready(resources: Resources) -> bool:
    return (await readiness(resources)).status_code == 200


class _CutWhileWriting(Sequence[Fact]):
    """Facts whose reading stops Postgres halfway through."""

    def __init__(self, server: LocalPostgres, total: int, cut_at: int) -> None:
        self._server, self._total, self._cut_at = server, total, cut_at

    def __len__(self) -> int:
        return self._total

    def __getitem__(self, index: Any) -> Any:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Fact]:
        for n in range(self._total):
            if n == self._cut_at:
                self._server.halt()
            yield Fact(f"{n:064x}", "u", "m", "openai", DayMetrics(Decimal(1), 1, 1, 0, 0, 2, 1, 1))


async def test_a_day_write_cut_halfway_leaves_the_previous_version(own_postgres: LocalPostgres) -> None:
    day = date(2026, 4, 1)
    fetched = datetime(2026, 4, 3, tzinfo=UTC)
    db = await Database.open(own_postgres.url, max_size=4)
    try:
        days = DayStore(db)
        first = [Fact(f"{n:064x}", "u", "m", "openai", DayMetrics(Decimal("0.5"), 3)) for n in range(5)]
        await days.replace_days([DayWrite(day, first, {}, "closed", True, fetched)])
        # The test cluster runs with synchronous_commit off: make the first version durable before the crash.
        await db.execute("CHECKPOINT")
        before = await days.state(day)
        facts_before = await db.fetch_all(
            "SELECT * FROM usage_facts WHERE date = %s ORDER BY api_key", (day,)
        )
        cut = _CutWhileWriting(own_postgres, total=50_000, cut_at=20_000)
        with pytest.raises(DatabaseUnavailable):
            await days.replace_days([DayWrite(day, cut, {}, "closed", True, fetched + timedelta(hours=1))])
        own_postgres.start()
        await until(lambda: db.fetch_one("SELECT true"))
        assert await days.state(day) == before
        after = await db.fetch_all("SELECT * FROM usage_facts WHERE date = %s ORDER BY api_key", (day,))
        assert after == facts_before
        assert len(after) == 5
    finally:
        await db.close()


async def test_waiting_for_a_postgres_day_lock_is_bounded(database_url: str) -> None:
    day = date(2026, 3, 1)
    db = await Database.open(database_url, max_size=2, statement_timeout_ms=30_000)
    holder = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    try:
        await holder.execute("SELECT pg_advisory_lock(%s, %s)", (7_250_302, day.toordinal()))
        started = time.monotonic()
        with pytest.raises(UpstreamUnavailable, match="timed out waiting for another fetch of 2026-03-01"):
            async with PostgresDayLocks(db, wait_seconds=0.3).hold([day]):
                pass
        assert 0.3 <= time.monotonic() - started < 2.0
        # The pooled connection has its own statement timeout back.
        assert await db.fetch_one("SHOW statement_timeout") == ("30s",)
        await holder.execute("SELECT pg_advisory_unlock_all()")
        async with PostgresDayLocks(db, wait_seconds=0.3).hold([day]):
            pass
    finally:
        await holder.close()
        await db.close()


# --- Shutdown and exports ---------------------------------------------------------------------------------

_DEAD_REPLICA = """
import sys, time, psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True)
conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (int(sys.argv[2]), sys.argv[3]))
conn.execute("UPDATE exports SET status = 'RUNNING' WHERE id = %s", (sys.argv[3],))
print("running", flush=True)
time.sleep(600)
"""


async def _export(db: Database, tmp: Path) -> str:
    everything = FactFilter(date(2026, 1, 1), date(2026, 1, 31))
    record = await exports.create_export(
        db, requested_by="admin", filter=everything, fmt=ExportFormat.CSV, ttl_hours=1
    )
    return record.id


async def test_an_export_left_by_a_dead_process_fails_at_the_next_start(
    database_url: str, tmp_path: Path
) -> None:
    db = await Database.open(database_url, max_size=2)
    try:
        dead, live = await _export(db, tmp_path), await _export(db, tmp_path)
        # Another replica, alive, running its export as run_export does: its lock held.
        replica = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
        await replica.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (exports.RUN_LOCKS, live))
        await replica.execute("UPDATE exports SET status = 'RUNNING' WHERE id = %s", (live,))
        # A replica that dies (SIGKILL) in the middle of its export.
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _DEAD_REPLICA,
            database_url,
            str(exports.RUN_LOCKS),
            dead,
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        assert (await process.stdout.readline()).strip() == b"running"
        process.kill()
        await process.wait()
        # One its process never started (it died first), one just created by a live replica.
        stale, fresh = await _export(db, tmp_path), await _export(db, tmp_path)
        await db.execute("UPDATE exports SET created_at = now() - interval '6 min' WHERE id = %s", (stale,))
        settings = Settings(database_url=database_url, jwt_secret=SECRET, export_dir=tmp_path)
        await asyncio.sleep(0.2)  # Postgres notices the closed connection
        with serving(create_app(settings), lifespan="on"):
            pass
        dead_record, live_record = await exports.get_export(db, dead), await exports.get_export(db, live)
        assert dead_record is not None
        assert dead_record.status == "FAILED"
        assert dead_record.error == exports.STOPPED_MESSAGE
        assert await _status(db, stale, "FAILED")
        assert await _status(db, fresh, "PENDING")
        assert live_record is not None
        assert live_record.status == "RUNNING"
        await replica.close()
    finally:
        await db.close()


async def test_shutdown_finishes_or_fails_background_exports(database_url: str, tmp_path: Path) -> None:
    db = await Database.open(database_url, max_size=6)
    try:
        finished = await _export(db, tmp_path)
        exports.start_in_background(db, finished, tmp_path)
        await exports.finish_background(10.0)  # within the grace period: finished
        record = await exports.get_export(db, finished)
        assert record is not None
        assert record.status == "DONE"

        # One blocked while RUNNING (a lock on the facts it reads), one not started yet: both FAILED.
        blocked, waiting = await _export(db, tmp_path), await _export(db, tmp_path)
        async with db.transaction() as conn:
            await conn.execute("LOCK TABLE usage_facts IN ACCESS EXCLUSIVE MODE")
            exports.start_in_background(db, blocked, tmp_path)
            await until(lambda: _status(db, blocked, "RUNNING"))
            exports.start_in_background(db, waiting, tmp_path)
            await exports.finish_background(0.2)
        for export_id in (blocked, waiting):
            record = await exports.get_export(db, export_id)
            assert record is not None
            assert record.status == "FAILED", record
            assert record.error == exports.STOPPED_MESSAGE
        assert await asyncio.to_thread(lambda: list(tmp_path.glob(f"*{blocked}*"))) == []
    finally:
        await db.close()


async def _status(db: Database, export_id: str, status: str) -> bool:
    record = await exports.get_export(db, export_id)
    return record is not None and record.status == status


_BIG_MONTH = (date(2026, 2, 1), date(2026, 2, 28))
_FACTS_PER_DAY = 2_000  # 56,000 facts: past INLINE_EXPORT_MAX_FACTS, so the export runs in the background
_EXPORT_MUTATION = "mutation($f: UsageFilter!) { exportUsage(filter: $f, format: CSV) { id status } }"


def _seed_for_shutdown(database_url: str) -> None:
    """Alice's and Bob's keys (the slow query's days come from LiteLLM) and a stored month of many facts."""
    assert _FACTS_PER_DAY * 28 > exports.INLINE_EXPORT_MAX_FACTS
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO users (id) VALUES ('u-alice'), ('u-bob')")
        conn.execute(
            "INSERT INTO api_keys (id, token_hash, user_id)"
            " VALUES ('key-a', %s, 'u-alice'), ('key-b', %s, 'u-bob')",
            (token_hash("key-a"), token_hash("key-b")),
        )
        conn.execute(
            "INSERT INTO usage_facts (date, api_key, litellm_user_id, model, provider, user_id, spend,"
            " prompt_tokens, completion_tokens, cache_read_input_tokens, cache_creation_input_tokens,"
            " total_tokens, api_requests, successful_requests, failed_requests, total_response_time_ms,"
            " timed_requests)"
            " SELECT d::date, lpad(to_hex(n), 64, '0'), 'u', 'm', 'openai', '', 0.01, 1, 1, 0, 0, 2, 1, 1,"
            " 0, 10, 1 FROM generate_series(%s::date, %s::date, interval '1 day') AS d,"
            " generate_series(1, %s) AS n",
            (*_BIG_MONTH, _FACTS_PER_DAY),
        )
        conn.execute(
            "INSERT INTO usage_days (date, status, fetched_at, verified, fact_count, spend, api_requests,"
            " total_tokens) SELECT d::date, 'closed', now(), true, %s, %s, %s, %s"
            " FROM generate_series(%s::date, %s::date, interval '1 day') AS d",
            (
                _FACTS_PER_DAY,
                Decimal("0.01") * _FACTS_PER_DAY,
                _FACTS_PER_DAY,
                2 * _FACTS_PER_DAY,
                *_BIG_MONTH,
            ),
        )


def test_sigterm_finishes_the_request_in_flight_and_the_background_export(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    _seed_for_shutdown(database_url)
    store = LiteLLMStore(keys=[], users=[], rows=rows_for(DAYS))
    with running_litellm(store, Faults(latency_seconds=0.8)) as url:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
        env.update(
            {
                f"{ENV_PREFIX}DATABASE_URL": database_url,
                f"{ENV_PREFIX}REDIS_URL": redis_url,
                f"{ENV_PREFIX}LITELLM_URL": url,
                f"{ENV_PREFIX}LITELLM_MASTER_KEY": MASTER_KEY,
                f"{ENV_PREFIX}JWT_SECRET": SECRET,
                f"{ENV_PREFIX}EXPORT_DIR": str(tmp_path),
            }
        )
        server = subprocess.Popen(
            [CLI, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                assert server.poll() is None, "serve exited"
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                time.sleep(0.1)
            headers = {"Authorization": f"Bearer {issue_token(SECRET, 'admin', [Role.ADMIN])}"}
            answers: list[httpx.Response] = []

            def ask_slowly() -> None:
                answers.append(
                    httpx.post(
                        f"{base}/graphql",
                        json={"query": DASHBOARD, "variables": RANGE},
                        headers=headers,
                        timeout=30,
                    )
                )

            asking = threading.Thread(target=ask_slowly)
            asking.start()
            time.sleep(0.8)  # the request is waiting on the slow LiteLLM
            started = httpx.post(
                f"{base}/graphql",
                json={
                    "query": _EXPORT_MUTATION,
                    "variables": {"f": {"from": _BIG_MONTH[0].isoformat(), "to": _BIG_MONTH[1].isoformat()}},
                },
                headers=headers,
                timeout=30,
            ).json()
            assert "errors" not in started, started
            export = started["data"]["exportUsage"]
            assert export["status"] in ("PENDING", "RUNNING")  # went to the background
            with psycopg.connect(database_url) as conn:  # and is still being written
                status = conn.execute("SELECT status FROM exports WHERE id = %s", (export["id"],)).fetchone()
            assert status in (("PENDING",), ("RUNNING",))
            assert not answers
            server.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            asking.join(30)
            # uvicorn raises the signal again once it has shut down gracefully: killed by SIGTERM, on time.
            assert server.wait(30) == -signal.SIGTERM
            figure(
                "SIGTERM -> process exited (a request and an export in flight)", time.monotonic() - signalled
            )
        finally:
            if server.poll() is None:
                server.kill()
                server.wait(10)
    [answer] = answers
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "errors" not in body, body
    assert body["data"]["usage"]["totals"]["requests"] == 12
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT status, row_count, path FROM exports WHERE id = %s", (export["id"],)
        ).fetchone()
    assert row is not None
    assert row[0] == "DONE", row  # finished within the grace period, not left RUNNING
    assert row[1] == 28 * _FACTS_PER_DAY  # one row per fact: every fact has its own key
    assert (tmp_path / row[2]).stat().st_size > 0
