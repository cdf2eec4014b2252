"""The group-commit writer: one thread; per batch one ``write`` and one ``fsync``.

Callers enqueue requests and get futures. The writer takes the first queued request,
everything else already queued (up to ``max_batch`` records), writes the batch's frames
with one write, makes them durable with one fsync, runs the hooks, then resolves the
futures. A failed write or fsync is never retried: the journal turns read-only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stemedb.errors import JournalError, JournalReadOnly, StemeError, Unavailable
from stemedb.journal.batching import BatchQueue, BatchThread, Request
from stemedb.journal.files import FileOps
from stemedb.journal.record import Record, encode_record
from stemedb.journal.segment import (
    SEGMENT_HEADER_SIZE,
    create_segment,
    segment_name,
    write_all,
)

log = logging.getLogger("stemedb.journal")

OnDurable = Callable[[list[Record], list[Any]], None]
OnCommitStats = Callable[[int, float, int], None]
BeforeCommit = Callable[[int], None]  # raises a StemeError to refuse a batch of n bytes


@dataclass(frozen=True, slots=True)
class Tip:
    """What is durable; replaced as a whole by the writer, so readers see one snapshot."""

    lsn: int  # last durable LSN (0 when empty)
    hash: bytes  # its chain hash
    segments: tuple[int, ...]  # first LSN of each segment, ascending; the last is active
    active_size: int  # bytes in the active segment, all durable


class _CommitFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class WriterOptions:
    segment_bytes: int
    max_batch: int
    max_wait_us: int
    files: FileOps
    on_durable: OnDurable | None
    on_commit_stats: OnCommitStats | None
    before_commit: BeforeCommit | None = None


class GroupCommitWriter(BatchThread):
    """Owns the active segment's fd and the one writer thread."""

    def __init__(self, directory: Path, fd: int, tip: Tip, options: WriterOptions) -> None:
        self._dir = directory
        self._fd = fd
        self._opt = options
        self.tip = tip
        self.read_only_reason: str | None = None
        self._lock = threading.Lock()  # orders submit() against close() and read-only
        self._start_batches(BatchQueue(options.max_batch, options.max_wait_us), "stemedb-journal")

    # -- callers' side -------------------------------------------------------------

    def submit(self, payloads: list[bytes], contexts: list[Any]) -> Future[list[Record]]:
        """Queues one request. Raises JournalReadOnly or JournalError instead of queueing
        when the journal is read-only or closed."""
        future: Future[list[Record]] = Future()
        with self._lock:
            if self._closed:
                raise JournalError("journal is closed")
            if self.read_only_reason is not None:
                raise JournalReadOnly(self.read_only_reason)
            if not payloads:
                future.set_result([])
            else:
                self._queue.put(Request(payloads, contexts, future))
        return future

    # -- the writer thread -----------------------------------------------------------

    def _finish(self) -> None:
        self._opt.files.close(self._fd)

    def _process(self, requests: list[Request]) -> None:
        """Commits one batch and settles its futures. Requires: futures are running."""
        if self.read_only_reason is not None:
            _fail(requests, self.read_only_reason)
            return
        if self._opt.before_commit is not None:
            try:  # e.g. too little disk left: refused before anything is written
                self._opt.before_commit(sum(len(p) for r in requests for p in r.payloads))
            except StemeError as refused:
                for request in requests:
                    request.future.set_exception(refused)
                return
        try:
            grouped, seconds, size = self._commit(requests)
        except _CommitFailed as failed:
            self._enter_read_only(failed.reason)
            _fail(requests, failed.reason)
            return
        except Exception as exc:  # a bug must not leave callers waiting forever
            log.exception("journal: writer failed")
            self._enter_read_only(f"journal writer failed: {exc!r}")
            _fail(requests, f"journal writer failed: {exc!r}")
            return
        self._last_submitters = len(requests)
        not_applied = self._run_hooks(requests, grouped, seconds, size)
        for request, records in zip(requests, grouped, strict=True):
            if not_applied is None:
                request.future.set_result(records)
            else:
                request.future.set_exception(not_applied)

    def _commit(self, requests: list[Request]) -> tuple[list[list[Record]], float, int]:
        """Makes the batch durable: one write, one fsync. Raises _CommitFailed."""
        self._roll_if_full()
        tip = self.tip
        grouped, data = _encode(requests, tip)
        self._write(data)
        seconds = self._sync()
        last = grouped[-1][-1]
        self.tip = Tip(last.lsn, last.hash, tip.segments, tip.active_size + len(data))
        return grouped, seconds, len(data)

    def _roll_if_full(self) -> None:
        """Starts the next segment if the active one is full and holds a record.

        Requires: everything in the active segment is durable (the previous batch's fsync
        succeeded), so the sealed segment never changes again.
        """
        tip = self.tip
        if tip.active_size < self._opt.segment_bytes or tip.active_size <= SEGMENT_HEADER_SIZE:
            return
        first = tip.lsn + 1
        try:
            fd = create_segment(self._dir, first, tip.hash, self._opt.files)
        except OSError as exc:
            raise _CommitFailed(f"segment rollover failed: {exc}") from exc
        self._opt.files.close(self._fd)
        self._fd = fd
        self.tip = Tip(tip.lsn, tip.hash, (*tip.segments, first), SEGMENT_HEADER_SIZE)

    def _write(self, data: bytes) -> None:
        try:
            write_all(self._fd, data, self._opt.files)
        except OSError as exc:
            raise _CommitFailed(f"write failed: {exc}") from exc

    def _sync(self) -> float:
        start = time.perf_counter()
        try:
            self._opt.files.fsync(self._fd)
        except OSError as exc:
            raise _CommitFailed(f"fsync failed: {exc}") from exc
        return time.perf_counter() - start

    def _enter_read_only(self, reason: str) -> None:
        """Never retried: after a failed fsync the kernel may have dropped the dirty pages,
        so a later fsync could succeed without the data being on disk."""
        with self._lock:
            self.read_only_reason = reason
        log.error("journal: %s; the journal is now read-only", reason, extra={"reason": reason})

    def _run_hooks(
        self, requests: list[Request], grouped: list[list[Record]], seconds: float, size: int
    ) -> StemeError | None:
        """Hooks run after the fsync and before any future resolves. The records are
        durable whatever they do, so the journal stays writable; but when ``on_durable``
        (applying the batch to the index) fails, the batch is not acknowledged: its
        futures fail with the returned error (a StemeError ``on_durable`` raised, else
        ``Unavailable``), and a retry is answered once the index has caught up."""
        records = [record for group in grouped for record in group]
        refused: StemeError | None = None
        if self._opt.on_durable is not None:
            contexts = [context for request in requests for context in request.contexts]
            try:
                self._opt.on_durable(records, contexts)
            except StemeError as e:
                refused = e
            except Exception as e:
                log.exception(
                    "journal: on_durable failed for lsn %d..%d", records[0].lsn, records[-1].lsn
                )
                refused = Unavailable(f"records {records[0].lsn}..{records[-1].lsn} are durable "
                                      f"but were not applied: {type(e).__name__}")
        if self._opt.on_commit_stats is not None:
            try:
                self._opt.on_commit_stats(len(records), seconds, size)
            except Exception:
                log.exception("journal: on_commit_stats failed")
        return refused


def _encode(requests: list[Request], tip: Tip) -> tuple[list[list[Record]], bytes]:
    """Assigns consecutive LSNs after ``tip`` and frames every payload."""
    name = segment_name(tip.segments[-1])
    lsn, prev, offset = tip.lsn, tip.hash, tip.active_size
    grouped: list[list[Record]] = []
    frames: list[bytes] = []
    for request in requests:
        records = []
        for payload in request.payloads:
            lsn += 1
            frame, prev = encode_record(lsn, prev, payload)
            records.append(Record(lsn, payload, prev, name, offset))
            frames.append(frame)
            offset += len(frame)
        grouped.append(records)
    return grouped, b"".join(frames)


def _fail(requests: list[Request], reason: str) -> None:
    for request in requests:
        request.future.set_exception(JournalReadOnly(reason))
