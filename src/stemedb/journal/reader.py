"""Reading records back from segment files, checking every checksum and chain link."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from stemedb.errors import JournalCorrupt, JournalError
from stemedb.journal.record import ZERO_HASH, Record
from stemedb.journal.segment import (
    SEGMENT_HEADER_SIZE,
    Fault,
    check_header,
    header_prev_hash,
    list_segments,
    segment_name,
    walk_frames,
)

Progress = Callable[[int], None]


def read_records(
    directory: Path,
    segments: Sequence[int],
    from_lsn: int,
    to_lsn: int | None,
    progress: Progress | None = None,
) -> Iterator[Record]:
    """Yields records ``from_lsn..to_lsn`` (``None``: to the end of the last segment).

    ``segments`` are the first LSNs of the segment files, ascending. Reading starts at the
    segment holding ``from_lsn`` and trusts that segment's header ``prev_hash``; everything
    from there on is checked. Any fault, including a last segment that does not end on a
    frame boundary when ``to_lsn`` is None, raises :class:`JournalCorrupt`. ``progress``
    gets the running total of bytes checked.
    """
    if to_lsn is not None and to_lsn < from_lsn:
        return
    start = max(bisect.bisect_right(segments, max(from_lsn, 1)) - 1, 0)
    expect_lsn = segments[start] if segments else 1
    expect_hash: bytes | None = ZERO_HASH if expect_lsn == 1 else None
    consumed = 0
    for first_lsn in segments[start:]:
        path = directory / segment_name(first_lsn)
        if first_lsn != expect_lsn:
            raise JournalCorrupt(str(path), 0, f"missing segment: expected lsn {expect_lsn} next")
        data = _read_file(path)
        _raise_if(path, check_header(data, first_lsn, expect_hash))
        expect_hash = header_prev_hash(data)
        consumed += SEGMENT_HEADER_SIZE
        if progress is not None:
            progress(consumed)
        name = path.name
        for frame in walk_frames(data, SEGMENT_HEADER_SIZE, first_lsn, expect_hash):
            if isinstance(frame, Fault):
                raise JournalCorrupt(str(path), frame.offset, frame.what)
            lsn, _prev, payload, chain, offset, end = frame
            if progress is not None:
                consumed += end - offset
                progress(consumed)
            if lsn >= from_lsn:
                yield Record(lsn, payload, chain, name, offset)
            if lsn == to_lsn:
                return
            expect_lsn, expect_hash = lsn + 1, chain
    if to_lsn is not None and expect_lsn <= to_lsn:
        raise JournalError(f"journal ends at lsn {expect_lsn - 1}, before lsn {to_lsn}")


def scan(
    directory: str | Path,
    *,
    from_lsn: int = 1,
    to_lsn: int | None = None,
    progress: Progress | None = None,
) -> Iterator[Record]:
    """Read-only full check of a journal directory, for ``stemedb verify`` and backups.

    Checks every segment header, checksum and chain link, and that segments are
    contiguous. Raises :class:`JournalCorrupt` at the first fault, including a torn tail
    (this check is strict; only opening a :class:`Journal` repairs a torn tail).
    ``progress`` receives the total number of bytes checked so far, after each header
    and each record.
    Stop at ``to_lsn`` to check a live journal up to its durable ``last_lsn``.
    """
    root = Path(directory)
    if not root.is_dir():
        raise JournalError(f"no journal directory at {root}")
    yield from read_records(root, list_segments(root), from_lsn, to_lsn, progress)


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise JournalCorrupt(str(path), 0, "segment file is missing") from None


def _raise_if(path: Path, fault: Fault | None) -> None:
    if fault is not None:
        raise JournalCorrupt(str(path), fault.offset, fault.what)
