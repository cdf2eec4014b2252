"""The Journal: recovery on open, group-commit appends, reads of durable records."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from stemedb.errors import JournalError
from stemedb.journal.files import FileOps, Fsync, OsFiles
from stemedb.journal.reader import read_records
from stemedb.journal.record import MAX_PAYLOAD, ZERO_HASH, Record
from stemedb.journal.recovery import RecoveryReport, recover
from stemedb.journal.segment import (
    SEGMENT_HEADER_SIZE,
    create_segment,
    fsync_dir,
    open_segment,
    segment_name,
)
from stemedb.journal.writer import (
    BeforeCommit,
    GroupCommitWriter,
    OnCommitStats,
    OnDurable,
    Tip,
    WriterOptions,
)

Payload = bytes | bytearray | memoryview


@dataclass(frozen=True)
class SegmentInfo:
    name: str
    path: Path
    first_lsn: int
    last_lsn: int  # first_lsn - 1 while the segment holds no record
    size: int  # durable bytes
    sealed: bool  # not the active (last) segment: it never changes again


class Journal:
    """A write-ahead journal in one directory of segment files.

    Opening runs recovery (which may raise JournalCorrupt) and starts one writer thread.
    Every method is safe to call from any thread; from asyncio, await
    ``asyncio.wrap_future(journal.submit(...))``.

    ``files`` is the file layer (default: the real syscalls); ``fsync`` alone replaces
    just the real ``os.fsync``.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        segment_bytes: int = 64 * 1024 * 1024,
        max_batch: int = 1024,
        max_wait_us: int = 0,
        fsync: Fsync | None = None,
        files: FileOps | None = None,
        on_durable: OnDurable | None = None,
        on_commit_stats: OnCommitStats | None = None,
        before_commit: BeforeCommit | None = None,
    ) -> None:
        if segment_bytes < 1 or max_batch < 1 or max_wait_us < 0:
            raise ValueError("segment_bytes and max_batch must be >= 1, max_wait_us >= 0")
        if files is None:
            files = OsFiles() if fsync is None else OsFiles(fsync)
        elif fsync is not None:
            raise ValueError("pass fsync or files, not both")
        self.directory = Path(directory)
        try:
            _make_directory(self.directory, files)
            recovered = recover(self.directory, files)
            segments, size = recovered.segments, recovered.active_size
            if segments:
                fd = open_segment(self.directory, segments[-1], files)
            else:
                fd = create_segment(self.directory, 1, ZERO_HASH, files)
                segments, size = [1], SEGMENT_HEADER_SIZE
        except OSError as exc:
            raise JournalError(f"cannot open the journal in {self.directory}: {exc}") from exc
        self.recovery: RecoveryReport = recovered.report
        tip = Tip(self.recovery.last_lsn, self.recovery.last_hash, tuple(segments), size)
        options = WriterOptions(
            segment_bytes, max_batch, max_wait_us, files, on_durable, on_commit_stats,
            before_commit,
        )
        self._writer = GroupCommitWriter(self.directory, fd, tip, options)

    @property
    def last_lsn(self) -> int:
        """The last durable LSN (0 for an empty journal)."""
        return self._writer.tip.lsn

    @property
    def last_hash(self) -> bytes:
        """The chain hash of the last durable record (zeros for an empty journal)."""
        return self._writer.tip.hash

    @property
    def read_only_reason(self) -> str | None:
        """Why the journal refuses writes (a failed write or fsync), or None."""
        return self._writer.read_only_reason

    def submit(
        self, payloads: Sequence[Payload], contexts: Sequence[Any] | None = None
    ) -> Future[list[Record]]:
        """Queues payloads to be written as consecutive records; the future resolves to
        their records once they are durable and ``on_durable`` has run.

        Raises JournalReadOnly (read-only journal) or JournalError (closed) at once; the
        future fails with JournalReadOnly if its batch's write or fsync fails.
        """
        items = [_payload_bytes(p) for p in payloads]
        context_list = [None] * len(items) if contexts is None else list(contexts)
        if len(context_list) != len(items):
            raise ValueError("contexts must match payloads one to one")
        return self._writer.submit(items, context_list)

    def append(
        self, payloads: Sequence[Payload], contexts: Sequence[Any] | None = None
    ) -> list[Record]:
        """``submit(...).result()``. Never call it from ``on_durable`` (deadlock)."""
        return self.submit(payloads, contexts).result()

    def read(self, from_lsn: int = 1, to_lsn: int | None = None) -> Iterator[Record]:
        """Durable records ``from_lsn..to_lsn`` (inclusive), read back from the files and
        checked. Records made durable after this call are not included."""
        tip = self._writer.tip
        last = tip.lsn if to_lsn is None else min(to_lsn, tip.lsn)
        if from_lsn > last:
            return iter(())
        return read_records(self.directory, tip.segments, from_lsn, last)

    def segments(self) -> list[SegmentInfo]:
        tip = self._writer.tip
        infos = []
        for index, first_lsn in enumerate(tip.segments):
            sealed = index < len(tip.segments) - 1
            path = self.directory / segment_name(first_lsn)
            last_lsn = tip.segments[index + 1] - 1 if sealed else tip.lsn
            size = path.stat().st_size if sealed else tip.active_size
            infos.append(SegmentInfo(path.name, path, first_lsn, last_lsn, size, sealed))
        return infos

    def close(self) -> None:
        """Writes every request already accepted, stops the writer, closes the file.
        Idempotent."""
        self._writer.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _make_directory(directory: Path, files: FileOps) -> None:
    """Creates the journal directory if missing, durably (its parent's entry too)."""
    if directory.is_dir():
        return
    files.mkdir(directory)
    fsync_dir(directory.parent, files)


def _payload_bytes(payload: Any) -> bytes:
    """A private copy, so a caller reusing its buffer cannot change a queued record."""
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
    data = bytes(payload)
    if len(data) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(data)} bytes exceeds {MAX_PAYLOAD}")
    return data
