"""The request's loaders (``resolvers/loaders/base.py``): aiodataloader's batching and caching, and what the
wrapper adds to it: a batch nobody waits for is cancelled, a cancelled load is loaded again. Then the
grouped batch skeleton (``resolvers/loaders/grouped.py``): one query per group, answers in key order."""

from __future__ import annotations

import asyncio

import pytest

from usage_gateway.resolvers.loaders.base import Loader
from usage_gateway.resolvers.loaders.grouped import grouped


class Recorder:
    """A batch function that records its calls; ``gate`` holds every call until it is set."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.cancelled: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, keys: list[str]) -> list[str]:
        self.calls.append(keys)
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled.append(keys)
            raise
        return [key.upper() for key in keys]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_loads_made_together_are_one_batch_and_a_key_is_loaded_once() -> None:
    batch = Recorder()
    loader = Loader(batch)
    answers = await asyncio.gather(
        loader.load("a"), loader.load("b"), loader.load("a"), loader.load_many(["c", "b"])
    )
    assert list(answers) == ["A", "B", "A", ["C", "B"]]
    assert batch.calls == [["a", "b", "c"]]
    assert await loader.load("b") == "B"  # cached: no new batch
    assert await loader.load_many(["d", "e"]) == ["D", "E"]
    assert batch.calls == [["a", "b", "c"], ["d", "e"]]


async def test_a_failed_batch_fails_each_of_its_loads() -> None:
    async def failing(keys: list[str]) -> list[str]:
        raise RuntimeError("no database")

    loader = Loader(failing)
    results = await asyncio.gather(loader.load("a"), loader.load("b"), return_exceptions=True)
    assert [str(result) for result in results] == ["no database", "no database"]


def test_a_loader_is_built_inside_a_request() -> None:
    with pytest.raises(RuntimeError, match="no running event loop"):
        Loader(Recorder())


async def test_a_batch_nobody_waits_for_is_cancelled() -> None:
    batch = Recorder()
    batch.gate.clear()
    loader = Loader(batch)
    first, second = loader.load("a"), loader.load("b")
    await settle()
    assert batch.calls == [["a", "b"]]
    first.cancel()
    await settle()
    assert batch.cancelled == []  # "b" is still awaited
    second.cancel()
    await settle()
    assert batch.cancelled == [["a", "b"]]


async def test_a_batch_cancelled_before_it_starts_never_runs() -> None:
    batch = Recorder()
    loader = Loader(batch)
    loader.load("a").cancel()
    loader.load("b").cancel()
    await settle()
    assert batch.calls == []


async def test_a_cancelled_load_is_loaded_again() -> None:
    batch = Recorder()
    batch.gate.clear()
    loader = Loader(batch)
    waiter = asyncio.ensure_future(loader.load("a"))
    await settle()
    waiter.cancel()  # cancels the cached future it awaits: the batch is abandoned
    await settle()
    assert batch.cancelled == [["a"]]
    batch.gate.set()
    assert await loader.load("a") == "A"
    assert batch.calls == [["a"], ["a"]]


def pair(key: tuple[str, int]) -> tuple[str, int]:
    return key


async def test_grouped_runs_one_query_per_group_and_answers_each_key_in_order() -> None:
    queries: list[tuple[str, list[int]]] = []

    async def query(group: str, parts: list[int]) -> dict[int, str]:
        queries.append((group, parts))
        return {part: f"{group}{part}" for part in parts}

    batch = grouped(pair, query)
    answers = await batch([("a", 1), ("b", 2), ("a", 3), ("c", 1), ("b", 1)])
    assert answers == ["a1", "b2", "a3", "c1", "b1"]
    assert queries == [("a", [1, 3]), ("b", [2, 1]), ("c", [1])]
    assert await batch([]) == []


async def test_grouped_fails_when_a_query_leaves_a_part_unanswered() -> None:
    async def query(group: str, parts: list[int]) -> dict[int, str]:
        return {part: group for part in parts if part != 2}

    with pytest.raises(KeyError):
        await grouped(pair, query)([("a", 1), ("a", 2)])
