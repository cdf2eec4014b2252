"""Rounds: concurrent calls on one event loop that share their round trips; Releases: what
was released while such a read was out."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Rounds(Generic[T, R]):
    """Calls that arrive while a round is out go together in the next round.

    ``await rounds(item)`` answers ``run_many(items)[i]`` for its item. The first call
    starts a round at once, with just its item (and those of calls made before the
    event loop comes to it); calls made while a round is out wait and are taken together
    (up to ``most``) when it returns, so a lone caller is never delayed and concurrent
    callers share the round trips. Single writes read their checks' facts this way
    (``Reads.assertion_facts_many``): on PostgreSQL one statement per round instead of
    one per write.

    A round runs in a worker thread when ``in_thread()`` says so as it starts (always,
    for a database across the network), else on the event loop itself. See
    ``Database._read_in_thread`` for when the embedded index reads on the loop.

    An error of a round is every caller's of that round when ``shared(error)`` says it
    is not one item's doing (the database is down: every item would get it); any other
    error has the round's items run again one at a time, so an item the backend cannot
    take fails alone. Runs on one event loop."""

    def __init__(self, run_many: Callable[[list[T]], list[R]], most: int = 256, *,
                 shared: Callable[[Exception], bool] = lambda e: False,
                 in_thread: Callable[[], bool] = lambda: True) -> None:
        self._run_many = run_many
        self._most = most
        self._in_thread = in_thread
        self._shared = shared
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None  # the rounds running, if any

    async def __call__(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, future))
        if self._task is None:
            self._task = loop.create_task(self._rounds(), name="stemedb-rounds")
        return await future

    async def _rounds(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._waiting:
                batch = self._waiting[:self._most]
                del self._waiting[:self._most]
                try:
                    results = await self._run([i for i, _ in batch])
                except Exception as e:
                    if len(batch) > 1 and not self._shared(e):
                        for one in batch:
                            await self._alone(*one)
                        continue
                    for _, f in batch:
                        if not f.done():
                            f.set_exception(e)
                    continue
                for (_, f), r in zip(batch, results, strict=True):
                    if not f.done():
                        f.set_result(r)
        finally:
            self._task = None
            for _, f in (*batch, *self._waiting):  # cancelled: nobody is left waiting
                f.cancel()
            self._waiting.clear()

    async def _run(self, items: list[T]) -> list[R]:
        if self._in_thread():
            return await asyncio.to_thread(self._run_many, items)
        return self._run_many(items)

    async def _alone(self, item: T, future: asyncio.Future[R]) -> None:
        try:
            (result,) = await self._run([item])
        except Exception as e:
            if not future.done():
                future.set_exception(e)
        else:
            if not future.done():
                future.set_result(result)


class Releases:
    """The keys released, newest last, so that an answer read before a check can be
    known stale: ``mark()`` before the read, ``since(key, mark)`` after it. The engine
    adds a write's (agent, nonce) when the write leaves its in-flight table (committed
    or failed): an index read of that nonce made before then may have missed it.
    Keeps the last ``keep`` keys; a mark older than what was dropped counts as stale."""

    def __init__(self, keep: int = 4096) -> None:
        self._keep = keep
        self._lock = threading.Lock()
        self._count = 0  # releases so far
        self._dropped = 0  # the count of the newest release no longer kept
        self._keys: OrderedDict[Hashable, int] = OrderedDict()

    def add(self, key: Hashable) -> None:
        with self._lock:
            self._count += 1
            self._keys[key] = self._count
            self._keys.move_to_end(key)
            if len(self._keys) > self._keep:
                self._dropped = self._keys.popitem(last=False)[1]

    def mark(self) -> int:
        with self._lock:
            return self._count

    def since(self, key: Hashable, mark: int) -> bool:
        """Whether ``key`` may have been released after ``mark``."""
        with self._lock:
            if self._dropped > mark:
                return True
            released = self._keys.get(key)
            return released is not None and released > mark
