"""The LiteLLM of the cold benchmark: the LiteLLM-compatible server over the reference rows, in its own
process (as LiteLLM would be), answering every request after a fixed latency.

Our compatible server is Python and computes each page from the rows on every request — at reference
scale a few hundred milliseconds of CPU per 1,000-row page, on the machine the gateway runs on, behind
one interpreter lock. A real LiteLLM answers from its own machines, so that CPU would measure this
stand-in rather than the gateway. The store does not change during the benchmark, so each answer is
computed once and replayed afterwards (:class:`Replaying`): once warmed up by an untimed pass, every
request costs the latency plus the sending of a stored answer. Requests are counted by kind here, and
how many had to be computed.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bench.gateway import BenchError
from bench.reference_data import ReferenceData, Scale
from usage_gateway.datasources.litellm.client import DAILY_ACTIVITY
from usage_gateway.devtools.litellm_compat import LiteLLMStore, create_litellm_app
from usage_gateway.devtools.local_services import serving

COMPUTED = "computed, not replayed"  # the counter of answers that were not stored yet


def kind(path: str, params: dict[str, str]) -> str:
    if path != DAILY_ACTIVITY:
        return path.rsplit("/", 1)[-1]
    if "model" in params:
        return "model=&user_id= pages" if "user_id" in params else "model= pages"
    return "pages"


class Replaying:
    """ASGI: wait ``latency`` seconds, then send the stored answer to the same request (method, path,
    parameters in any order, credentials), or compute it with ``app`` and store it if it succeeded."""

    def __init__(self, app: ASGIApp, latency: float) -> None:
        self.app = app
        self.latency = latency
        self.answers: dict[tuple[object, ...], list[Message]] = {}
        self.counts: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await asyncio.sleep(self.latency)
        params = dict(parse_qsl(scope["query_string"].decode()))
        auth = dict(scope["headers"]).get(b"authorization")
        key = (scope["method"], scope["path"], tuple(sorted(params.items())), auth)
        self.counts[kind(scope["path"], params)] += 1
        answer = self.answers.get(key)
        if answer is None:
            self.counts[COMPUTED] += 1
            answer = []

            async def keep(message: Message) -> None:
                answer.append(message)

            await self.app(scope, receive, keep)
            if answer and answer[0].get("status") == 200:
                self.answers[key] = answer
        for message in answer:
            await send(message)


@dataclass(frozen=True)
class Served:
    rows: int
    api_requests: int


def _serve(scale: Scale, indexes: Sequence[int], latency_ms: float, conn: Connection) -> None:
    """In the child process: sends the URL, then the requests answered since the last time, by kind,
    whenever asked ("counts"), until told anything else or the pipe closes."""
    data = ReferenceData(scale)
    rows = data.litellm_rows(indexes)
    store = LiteLLMStore(keys=data.litellm_keys(), users=data.litellm_users(), rows=rows)
    served = Served(len(rows), sum(int(row["api_requests"]) for row in rows))
    app = create_litellm_app(store)
    replaying = Replaying(app, latency_ms / 1000)
    with serving(replaying, on_stop=app.state.stopping.set) as url:
        conn.send((url, served))
        with contextlib.suppress(EOFError, OSError):
            while conn.recv() == "counts":
                conn.send(Counter(replaying.counts))
                replaying.counts.clear()


@dataclass
class LiteLLMProcess:
    conn: Connection
    url: str
    served: Served

    def counts(self) -> Counter[str]:
        """Requests answered since the last call, by kind, and how many were computed."""
        self.conn.send("counts")
        counts: Counter[str] = self.conn.recv()
        return counts


@contextlib.contextmanager
def litellm_process(scale: Scale, indexes: Sequence[int], latency_ms: float) -> Iterator[LiteLLMProcess]:
    """The server over the rows of these days of the reference data set, in a child process."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=_serve, args=(scale, list(indexes), latency_ms, theirs), daemon=True)
    process.start()
    try:
        while not ours.poll(0.2):
            if not process.is_alive():
                raise BenchError(f"the LiteLLM-compatible server exited ({process.exitcode}) before serving")
        url, served = ours.recv()
        yield LiteLLMProcess(ours, url, served)
    finally:
        with contextlib.suppress(OSError):
            ours.send("stop")
        process.join(15)
        if process.is_alive():
            process.kill()
            process.join(5)
        ours.close()
