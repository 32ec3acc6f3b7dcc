"""Admission control (issue 12): a bounded number of operations run, a bounded FIFO queue waits a bounded
time, anything else is answered 503 OVERLOADED with Retry-After at once and never runs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from tests.api_client import Gateway, open_gateway, seed_days
from tests.facts_data import BASE
from usage_gateway.datasources.facts.aggregates import UsageTotals
from usage_gateway.errors import Overloaded
from usage_gateway.resolvers import usage as usage_resolvers
from usage_gateway.resolvers.context import Context
from usage_gateway.resolvers.usage import UsageRequest
from usage_gateway.server.admission import Admission
from usage_gateway.server.config import ConfigError, load_settings


async def until(condition: Callable[[], bool]) -> None:
    """Let the other tasks run until ``condition`` holds (no sleeping on the clock)."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


def queued(admission: Admission, n: int) -> Callable[[], bool]:
    return lambda: admission.queued == n


# --- The controller alone -------------------------------------------------------------------------------


async def test_a_full_queue_sheds_at_once_with_an_estimate() -> None:
    now = [0.0]
    admission = Admission(1, 1, 10.0, clock=lambda: now[0])
    taken = await admission.acquire("a")
    now[0] = 4.0
    admission.release(taken)  # one operation took 4 s: the estimate
    await admission.acquire("b")
    queued = asyncio.create_task(admission.acquire("c"))
    await until(lambda: admission.queued == 1)
    with capture_logs() as logs, pytest.raises(Overloaded) as refused:
        await admission.acquire("d")
    assert refused.value.code == "OVERLOADED"
    assert refused.value.retry_after == 8  # one ahead and itself, 4 s each, one slot
    assert [log["event"] for log in logs] == ["admission.shed"]
    assert logs[0]["reason"] == "queue_full"
    assert logs[0]["request_id"] == "d"
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert admission.queued == 0


async def test_waiters_are_served_in_arrival_order() -> None:
    admission = Admission(1, 3, 10.0)
    first = await admission.acquire("first")
    served: list[str] = []

    async def request(name: str) -> None:
        taken = await admission.acquire(name)
        served.append(name)
        admission.release(taken)

    tasks = []
    for name in ("b", "c", "d"):
        tasks.append(asyncio.create_task(request(name)))
        await until(queued(admission, len(tasks)))
    admission.release(first)
    await asyncio.gather(*tasks)
    assert served == ["b", "c", "d"]
    assert (admission.running, admission.queued) == (0, 0)


async def test_a_request_waiting_too_long_is_shed_and_leaves_the_queue() -> None:
    admission = Admission(1, 5, 0.05)
    held = await admission.acquire("a")
    with capture_logs() as logs, pytest.raises(Overloaded):
        await admission.acquire("b")
    assert [(log["event"], log["reason"]) for log in logs] == [("admission.shed", "queue_wait")]
    assert admission.queued == 0
    admission.release(held)
    assert admission.running == 0


async def test_a_slot_handed_to_a_cancelled_request_passes_on() -> None:
    admission = Admission(1, 5, 10.0)
    held = await admission.acquire("a")
    doomed = asyncio.create_task(admission.acquire("b"))
    await until(lambda: admission.queued == 1)
    next_one = asyncio.create_task(admission.acquire("c"))
    await until(lambda: admission.queued == 2)
    admission.release(held)  # hands the slot to b …
    doomed.cancel()  # … which is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await doomed
    admission.release(await next_one)
    assert (admission.running, admission.queued) == (0, 0)


# --- Through the app ------------------------------------------------------------------------------------


class Blocked:
    """``usage.totals`` held until the test opens the gate; which requests (by their day) ran it."""

    def __init__(self) -> None:
        self.started: list[date] = []
        self.gate = asyncio.Event()

    async def totals(self, ctx: Context, request: UsageRequest) -> UsageTotals:
        self.started.append(request.filter.date_from)
        await self.gate.wait()
        return UsageTotals.ZERO


@pytest.fixture
def blocked(monkeypatch: pytest.MonkeyPatch) -> Blocked:
    held = Blocked()
    monkeypatch.setattr(usage_resolvers, "totals", held.totals)
    return held


def day(n: int) -> date:
    return BASE + timedelta(days=n)


async def totals_of(gw: Gateway, n: int) -> httpx.Response:
    d = day(n).isoformat()
    return await gw.post(f'{{ usage(filter: {{from: "{d}", to: "{d}"}}) {{ totals {{ spend }} }} }}')


def admission_of(gw: Gateway) -> Admission:
    admission = gw.client._transport.app.state.admission  # type: ignore[attr-defined]
    assert isinstance(admission, Admission)
    return admission


def overloaded(response: httpx.Response) -> bool:
    body: dict[str, Any] = response.json()
    return (
        response.status_code == 503
        and int(response.headers["retry-after"]) >= 1
        and bool(response.headers["x-request-id"])
        and [e["extensions"]["code"] for e in body["errors"]] == ["OVERLOADED"]
    )


async def test_queue_full_is_503_at_once_and_queued_requests_run_in_order(
    database_url: str, blocked: Blocked
) -> None:
    async with open_gateway(
        database_url, max_concurrent_operations=1, max_queued_operations=3, max_queue_wait_seconds=20
    ) as gw:
        admission = admission_of(gw)
        await seed_days(gw.db, day(0), day(4))
        running = asyncio.create_task(totals_of(gw, 0))
        await until(lambda: blocked.started == [day(0)])
        waiting = []
        for n in (1, 2, 3):
            waiting.append(asyncio.create_task(totals_of(gw, n)))
            await until(queued(admission, n))
        with capture_logs() as logs:
            refused = await totals_of(gw, 4)
        assert overloaded(refused), refused.text
        assert [log["event"] for log in logs] == ["admission.shed"]
        blocked.gate.set()
        answers = await asyncio.gather(running, *waiting)
        assert [a.status_code for a in answers] == [200] * 4
        assert all("errors" not in a.json() for a in answers), [a.text for a in answers]
        assert blocked.started == [day(0), day(1), day(2), day(3)]  # arrival order; the refused one never
        assert (admission.running, admission.queued) == (0, 0)


async def test_a_request_queued_past_the_wait_is_503_and_never_runs(
    database_url: str, blocked: Blocked
) -> None:
    async with open_gateway(
        database_url, max_concurrent_operations=1, max_queued_operations=5, max_queue_wait_seconds=0.05
    ) as gw:
        await seed_days(gw.db, day(0), day(4))
        running = asyncio.create_task(totals_of(gw, 0))
        await until(lambda: blocked.started == [day(0)])
        shed = await totals_of(gw, 1)
        assert overloaded(shed), shed.text
        blocked.gate.set()
        assert (await running).status_code == 200
        assert (await totals_of(gw, 2)).status_code == 200
        assert blocked.started == [day(0), day(2)]


async def test_health_and_non_operations_bypass_a_full_gateway(database_url: str, blocked: Blocked) -> None:
    async with open_gateway(
        database_url, max_concurrent_operations=1, max_queued_operations=0, max_queue_wait_seconds=1
    ) as gw:
        await seed_days(gw.db, day(0), day(4))
        running = asyncio.create_task(totals_of(gw, 0))
        await until(lambda: blocked.started == [day(0)])
        assert overloaded(await totals_of(gw, 1))
        assert (await gw.client.get("/healthz")).status_code == 200
        assert (await gw.client.get("/readyz")).status_code == 200
        assert (await gw.client.get("/graphql")).status_code == 405  # not an operation: not queued
        blocked.gate.set()
        assert (await running).status_code == 200


async def test_zero_concurrent_operations_turns_admission_control_off(database_url: str) -> None:
    async with open_gateway(database_url, max_concurrent_operations=0) as gw:
        assert gw.client._transport.app.state.admission is None  # type: ignore[attr-defined]
        assert await gw.data("{ viewer { id } }") == {"viewer": {"id": "admin"}}


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"max_concurrent_operations": -1}, "MAX_CONCURRENT_OPERATIONS"),
        ({"max_queued_operations": -1}, "MAX_QUEUED_OPERATIONS"),
        ({"max_queue_wait_seconds": 0}, "MAX_QUEUE_WAIT_SECONDS"),
        ({"max_queue_wait_seconds": "soon"}, "MAX_QUEUE_WAIT_SECONDS"),
    ],
)
def test_bad_admission_settings_name_the_variable(overrides: dict[str, object], variable: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(**overrides)
    message = str(refused.value)
    assert message.startswith(f"USAGE_GATEWAY_{variable}:")
    assert "\n" not in message


async def test_refused_and_cached_answers_never_wait_for_a_slot(
    database_url: str, redis_url: str, blocked: Blocked
) -> None:
    """Admission comes after authentication and the answer cache: a full gateway still answers 401s and
    cache hits at once, and neither takes a slot."""
    async with open_gateway(
        database_url,
        redis_url,
        max_concurrent_operations=1,
        max_queued_operations=0,
        max_queue_wait_seconds=1,
        answer_cache_ttl_seconds=300,
    ) as gw:
        admission = admission_of(gw)
        await seed_days(gw.db, day(0), day(4))
        blocked.gate.set()
        assert (await totals_of(gw, 1)).headers["x-answer-cache"] == "miss"
        blocked.gate.clear()
        running = asyncio.create_task(totals_of(gw, 0))
        await until(lambda: blocked.started == [day(1), day(0)])
        assert overloaded(await totals_of(gw, 2))
        hit = await totals_of(gw, 1)
        assert (hit.status_code, hit.headers["x-answer-cache"]) == (200, "hit"), hit.text
        forged = "not-a-" + "token"
        assert (await gw.post("{ viewer { id } }", token=forged)).status_code == 401
        assert (admission.running, admission.queued) == (1, 0)
        blocked.gate.set()
        assert (await running).status_code == 200
        assert blocked.started == [day(1), day(0)]


async def test_the_operation_timeout_starts_when_the_slot_is_given(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four 0.4 s operations through one slot: the last waits 1.2 s, longer than the 1 s operation
    timeout, and still runs to its end."""

    async def slow_totals(ctx: Context, request: UsageRequest) -> UsageTotals:
        await asyncio.sleep(0.4)
        return UsageTotals.ZERO

    monkeypatch.setattr(usage_resolvers, "totals", slow_totals)
    async with open_gateway(
        database_url,
        max_concurrent_operations=1,
        max_queued_operations=10,
        max_queue_wait_seconds=20,
        operation_timeout_seconds=1,
    ) as gw:
        await seed_days(gw.db, day(0), day(4))
        answers = await asyncio.gather(*(totals_of(gw, n) for n in range(4)))
        assert [a.status_code for a in answers] == [200] * 4
        assert all("errors" not in a.json() for a in answers), [a.text for a in answers]
