"""Admission control of ``POST /graphql`` (issue 12): under overload the gateway sheds load rather than
queueing without bound.

At most ``MAX_CONCURRENT_OPERATIONS`` requests run at once; up to ``MAX_QUEUED_OPERATIONS`` more wait, in
arrival order, each at most ``MAX_QUEUE_WAIT_SECONDS``. Any other request, and any that waited that long,
is answered at once with HTTP 503, ``Retry-After`` and code ``OVERLOADED``; it never reaches the view, so
nothing of it ran. ``Retry-After`` estimates when a slot frees: the requests ahead times the recent
service time, divided by the slots. ``MAX_CONCURRENT_OPERATIONS=0`` turns admission control off.

The view (:mod:`server.graphql_view`) asks for a slot after authentication and after the answer cache's
fast path: a request refused 401 or answered from the cache never waits for a slot nor takes one, so
cheap answers keep flowing while slow operations queue.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import structlog

from usage_gateway.errors import Overloaded
from usage_gateway.server.config import Settings

log = structlog.get_logger("usage_gateway.admission")

_SMOOTHING = 0.2  # weight of the newest service time in the running estimate


class Admission:
    """Slots for ``concurrent`` operations, a FIFO queue of ``queued`` more, ``wait_seconds`` at most in it.

    :meth:`acquire` hands a slot over (or raises :class:`Overloaded`); :meth:`release` gives it back, to
    the first request still waiting if there is one.
    """

    def __init__(
        self,
        concurrent: int,
        queued: int,
        wait_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if concurrent < 1 or queued < 0 or wait_seconds <= 0:
            raise ValueError("concurrent ≥ 1, queued ≥ 0 and wait_seconds > 0")
        self.concurrent = concurrent
        self.queued_at_most = queued
        self.wait_seconds = wait_seconds
        self._clock = clock
        self._running = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._service_seconds: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Admission | None:
        """The settings' admission control, or None when it is off."""
        if settings.max_concurrent_operations == 0:
            return None
        return cls(
            settings.max_concurrent_operations,
            settings.max_queued_operations,
            settings.max_queue_wait_seconds,
        )

    @property
    def running(self) -> int:
        return self._running

    @property
    def queued(self) -> int:
        return len(self._waiters)

    def retry_after(self, ahead: int) -> int:
        """Whole seconds until a request with ``ahead`` requests before it would likely get a slot."""
        service = self._service_seconds if self._service_seconds is not None else self.wait_seconds
        return max(1, math.ceil((ahead + 1) * service / self.concurrent))

    async def acquire(self, rid: str) -> float:
        """Wait for a slot; the time it was taken, for :meth:`release`. :class:`Overloaded` when the queue
        is full or the wait passes ``wait_seconds`` (logged once, as ``admission.shed``)."""
        if self._running < self.concurrent and not self._waiters:
            self._running += 1
            return self._clock()
        if len(self._waiters) >= self.queued_at_most:
            retry = self.retry_after(len(self._waiters))
            self._shed(rid, "queue_full", retry, waited=0.0)
            message = (
                f"the gateway is overloaded: {self._running} operations run and {len(self._waiters)}"
                f" wait; retry after {retry} s"
            )
            raise Overloaded(message, retry)
        began = self._clock()
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.wait_seconds):
                await waiter
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                return self._clock()  # handed a slot just as the wait ended: it is this request's
            retry = self.retry_after(self._forget(waiter))
            self._shed(rid, "queue_wait", retry, waited=self._clock() - began)
            message = (
                f"the gateway is overloaded: no operation slot within {self.wait_seconds:g} s;"
                f" retry after {retry} s"
            )
            raise Overloaded(message, retry) from None
        except BaseException:  # cancelled from outside (the server stopping)
            if waiter.done() and not waiter.cancelled():
                self.release_slot()
            else:
                self._forget(waiter)
            raise
        return self._clock()

    @asynccontextmanager
    async def slot(self, rid: str) -> AsyncIterator[None]:
        """A slot for the ``async with`` block (see :meth:`acquire`)."""
        taken = await self.acquire(rid)
        try:
            yield
        finally:
            self.release(taken)

    def _forget(self, waiter: asyncio.Future[None]) -> int:
        """Take a waiter out of the queue: how many were ahead of it."""
        try:
            ahead = self._waiters.index(waiter)
        except ValueError:
            return 0  # already dropped by release_slot
        del self._waiters[ahead]
        return ahead

    def release(self, taken: float) -> None:
        """Give back the slot taken at ``taken`` (what :meth:`acquire` returned)."""
        seconds = self._clock() - taken
        previous = self._service_seconds
        self._service_seconds = seconds if previous is None else previous + _SMOOTHING * (seconds - previous)
        self.release_slot()

    def release_slot(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes to it: _running stays as it is
                return
        self._running -= 1

    def _shed(self, rid: str, reason: str, retry_after: int, *, waited: float) -> None:
        log.warning(
            "admission.shed",
            request_id=rid,
            reason=reason,
            running=self._running,
            queued=len(self._waiters),
            waited_seconds=round(waited, 3),
            retry_after=retry_after,
        )
