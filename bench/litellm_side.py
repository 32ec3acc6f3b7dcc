"""The LiteLLM of the cold benchmark: the LiteLLM-compatible server over the reference rows, in its own
process (as LiteLLM would be), answering every request after a fixed latency.

Our compatible server is Python and computes each page from the rows on every request — at reference
scale a few hundred milliseconds of CPU per 1,000-row page, on the machine the gateway runs on, behind
one interpreter lock. A real LiteLLM answers from its own machines, so that CPU would measure this
stand-in rather than the gateway. The store does not change during the benchmark, so each answer is
computed once and replayed afterwards (:class:`Replaying`): once warmed up by an untimed pass, every
request costs the latency plus the sending of a stored answer (``--no-replay`` computes every answer
anew, timing the stand-in's CPU too). Requests are counted by kind here, and how many had to be computed.

``--legacy-share`` gives some rows the NULL ``user_id`` older LiteLLMs wrote (:func:`with_legacy_rows`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import multiprocessing
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any
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


def with_legacy_rows(rows: list[dict[str, Any]], share: float) -> list[dict[str, Any]]:
    """``rows`` where ``share`` of the (date, key, model) groups that went to two providers carry a
    legacy row: its ``user_id`` NULL, as LiteLLM before ``''`` was written. Such a key spans two users
    and two providers within one model, the case narrowing by user has to solve without a filter that
    selects NULL users. Chosen by a hash of the group, so the same rows come out every run."""
    if share <= 0:
        return rows
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["date"], row["api_key"], row["model"]].append(row)
    threshold = int(share * 2**32)
    for group, members in groups.items():
        digest = hashlib.sha256("|".join(group).encode()).digest()
        if len({r["custom_llm_provider"] for r in members}) > 1 and int.from_bytes(digest[:4]) < threshold:
            min(members, key=lambda r: r["id"])["user_id"] = None
    return rows


class Replaying:
    """ASGI: wait ``latency`` seconds, then send the stored answer to the same request (method, path,
    parameters in any order, credentials), or compute it with ``app`` and store it if it succeeded (and
    ``replay``: without, every answer is computed)."""

    def __init__(self, app: ASGIApp, latency: float, *, replay: bool = True) -> None:
        self.app = app
        self.latency = latency
        self.replay = replay
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
            if self.replay and answer and answer[0].get("status") == 200:
                self.answers[key] = answer
        for message in answer:
            await send(message)


@dataclass(frozen=True)
class Served:
    rows: int
    api_requests: int
    legacy_rows: int  # with a NULL user_id


def _serve(
    scale: Scale,
    indexes: Sequence[int],
    latency_ms: float,
    legacy_share: float,
    replay: bool,
    conn: Connection,
) -> None:
    """In the child process: sends the URL, then the requests answered since the last time, by kind,
    whenever asked ("counts"), until told anything else or the pipe closes."""
    data = ReferenceData(scale)
    rows = with_legacy_rows(data.litellm_rows(indexes), legacy_share)
    store = LiteLLMStore(keys=data.litellm_keys(), users=data.litellm_users(), rows=rows)
    legacy = sum(row["user_id"] is None for row in rows)
    served = Served(len(rows), sum(int(row["api_requests"]) for row in rows), legacy)
    app = create_litellm_app(store)
    replaying = Replaying(app, latency_ms / 1000, replay=replay)
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
def litellm_process(
    scale: Scale, indexes: Sequence[int], latency_ms: float, *, legacy_share: float = 0.0, replay: bool = True
) -> Iterator[LiteLLMProcess]:
    """The server over the rows of these days of the reference data set, in a child process."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    arguments = (scale, list(indexes), latency_ms, legacy_share, replay, theirs)
    process = context.Process(target=_serve, args=arguments, daemon=True)
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
