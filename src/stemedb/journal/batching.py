"""The queue in front of a group commit: callers' requests in, one batch at a time out.

Shared by the file journal's writer and the PostgreSQL committer: one thread takes the
first waiting request, then everything else already queued, up to ``max_batch``
records, and commits them together.
"""

from __future__ import annotations

import queue
import threading
import time
from abc import ABC, abstractmethod
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from stemedb.journal.record import Record


@dataclass(frozen=True, slots=True)
class Request:
    payloads: list[bytes]
    contexts: list[Any]
    future: Future[list[Record]]


class _Stop:
    """Queued by ``stop``: every request accepted before it is taken first."""


class BatchQueue:
    def __init__(self, max_batch: int, max_wait_us: int) -> None:
        self.max_batch = max_batch
        self.max_wait_us = max_wait_us
        self._queue: queue.SimpleQueue[Request | _Stop] = queue.SimpleQueue()
        self._carry: Request | None = None  # taken from the queue, kept for the next batch

    def put(self, request: Request) -> None:
        self._queue.put(request)

    def stop(self) -> None:
        self._queue.put(_Stop())

    def take(self, last_submitters: int) -> tuple[list[Request], bool]:
        """Blocks for one request, then takes the ones already queued, up to max_batch
        records. Waits up to max_wait_us for more only when the previous batch had more
        than one submitter (``last_submitters``): a lone writer is never delayed.
        Returns (batch, stop)."""
        first = self._carry if self._carry is not None else self._queue.get()
        self._carry = None
        if isinstance(first, _Stop):
            return [], True
        batch, count = [first], len(first.payloads)
        deadline = None
        if self.max_wait_us > 0 and last_submitters > 1:
            deadline = time.monotonic() + self.max_wait_us / 1e6
        while count < self.max_batch:
            item = self._next(deadline)
            if item is None:
                break
            if isinstance(item, _Stop):
                return batch, True
            if count + len(item.payloads) > self.max_batch:
                self._carry = item
                break
            batch.append(item)
            count += len(item.payloads)
        return batch, False

    def _next(self, deadline: float | None) -> Request | _Stop | None:
        try:
            if deadline is None:
                return self._queue.get_nowait()
            return self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return None


class BatchThread(ABC):
    """The thread side of a group commit, shared by the journal's writer and the
    PostgreSQL committer: ``start`` runs one thread that takes a batch at a time from the
    queue and hands the requests still wanted to ``_process``; ``close`` lets it finish
    every accepted request, then stops it. Subclasses set ``_lock`` (ordering their
    ``submit`` against ``close``) and implement ``_process`` and ``_finish`` (run on the
    thread as it ends)."""

    _lock: threading.Lock

    def _start_batches(self, queue_: BatchQueue, name: str) -> None:
        self._closed = False
        self._queue = queue_
        self._last_submitters = 0  # set by _process: how many requests the batch had
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Lets the thread finish every accepted request, then stops it. Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.stop()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _run(self) -> None:
        try:
            while True:
                batch, stop = self._queue.take(self._last_submitters)
                live = [r for r in batch if r.future.set_running_or_notify_cancel()]
                if live:
                    self._process(live)
                if stop:
                    return
        finally:
            self._finish()

    @abstractmethod
    def _process(self, requests: list[Request]) -> None:
        """Commits ``requests`` (their futures are running) and settles their futures."""

    @abstractmethod
    def _finish(self) -> None:
        """Releases what the thread held, as it ends."""
