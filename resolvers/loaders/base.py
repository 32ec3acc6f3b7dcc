"""The one place the request's loaders meet aiodataloader: :class:`Loader`, an ``aiodataloader.DataLoader``
with the guarantees the resolvers rely on.

Batching and caching are aiodataloader's: every ``load`` made before the event loop gets round to the
batch (the resolvers of a page of nodes all run first) lands in one call of the batch function, and a
key asked twice in a request is loaded once. aiodataloader is typed (``py.typed``), so ``mypy --strict``
needs nothing here; the wrapper is for behaviour aiodataloader leaves out, which the loaders had before
(Strawberry's DataLoader) and must keep:

- it is built on the running loop, i.e. inside the request (aiodataloader would otherwise take the
  deprecated ``asyncio.get_event_loop()``);
- a batch that nobody waits for any more (every load of it cancelled: the operation timed out, or
  graphql-core cancelled the siblings of a failed field) is cancelled, its statement with it, instead of
  holding a pool connection until the statement ends; when that is so before it starts, it never runs;
- a cached load that was cancelled is loaded again rather than handed out cancelled to the next
  resolver that asks for the same key.

It exposes only what the resolvers use: ``load`` and ``load_many``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Generic, TypeVar

import aiodataloader

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

BatchFn = Callable[[list[K]], Awaitable[list[V]]]


class Loader(Generic[K, V]):
    """One request's loader: ``batch`` answers a list of keys with one value per key, in order."""

    def __init__(self, batch: BatchFn[K, V]) -> None:
        self._batch = batch
        # aiodataloader's cache, held here to see which loads a batch answers (see _dispatch).
        self._cache: dict[K, asyncio.Future[V]] = {}
        self._loader = aiodataloader.DataLoader[K, V](
            self._dispatch, loop=asyncio.get_running_loop(), cache_map=self._cache
        )

    def load(self, key: K) -> asyncio.Future[V]:
        future = self._loader.load(key)
        if future.cancelled():
            future = self._loader.clear(key).load(key)
        return future

    def load_many(self, keys: Iterable[K]) -> Awaitable[list[V]]:
        return asyncio.gather(*map(self.load, keys))

    async def _dispatch(self, keys: list[K]) -> list[V]:
        waiting = [self._cache.get(key) for key in keys]

        def abandoned() -> bool:
            return all(future is not None and future.cancelled() for future in waiting)

        if abandoned():
            raise asyncio.CancelledError
        task = asyncio.current_task()

        def cancel_if_abandoned(_: asyncio.Future[V]) -> None:
            if task is not None and abandoned():
                task.cancel()

        for future in waiting:
            if future is not None:
                future.add_done_callback(cancel_if_abandoned)
        return await self._batch(keys)
