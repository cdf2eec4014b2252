"""Start-up recovery: validate every segment, cut a torn tail, refuse anything else.

A crash can only interrupt the last batch written, and a batch is only ever written to
the last segment. So damage is *torn* (cut off, kept in a ``.broken`` file) only when it
is in the last segment, could come from an interrupted write, and no good record follows
it. Everything else raises :class:`JournalCorrupt`. See docs/journal-format.md.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from stemedb.errors import JournalCorrupt
from stemedb.journal.files import FileOps
from stemedb.journal.record import (
    FRAME_HEADER,
    FRAME_HEADER_SIZE,
    MAX_PAYLOAD,
    ZERO_HASH,
    Frame,
    decode_record,
)
from stemedb.journal.segment import (
    SEGMENT_HEADER_SIZE,
    Fault,
    check_header,
    fsync_dir,
    list_segments,
    segment_name,
    walk_frames,
    write_all,
)

log = logging.getLogger("stemedb.journal")


@dataclass
class RecoveryReport:
    last_lsn: int
    last_hash: bytes
    truncated_bytes: int  # bytes cut off the torn tail (0 if none)
    broken_copy: str | None  # path of the `.broken` copy of what was cut
    segments: int  # segment files left after recovery


@dataclass(frozen=True)
class Recovered:
    report: RecoveryReport
    segments: list[int]  # first LSNs of the segments left, ascending
    active_size: int  # size of the last segment (0 if there is none)


def recover(directory: Path, files: FileOps) -> Recovered:
    """Validates ``directory`` in LSN order and repairs a torn tail.

    Requires: no writer has the journal open. Raises JournalCorrupt for any damage a
    crash during the last write cannot explain.
    """
    segments = list_segments(directory)
    lsn, prev = 0, ZERO_HASH
    truncated, broken = 0, None
    for index, first_lsn in enumerate(segments):
        path = directory / segment_name(first_lsn)
        if first_lsn != lsn + 1:
            raise JournalCorrupt(str(path), 0, f"missing segment: expected lsn {lsn + 1} next")
        data = path.read_bytes()
        fault = check_header(data, first_lsn, prev)
        if fault is None:
            lsn, prev, fault = _walk(data, first_lsn, prev)
        if fault is None:
            continue
        _require_torn(path, data, fault, lsn, is_last=index == len(segments) - 1)
        if fault.offset < SEGMENT_HEADER_SIZE:
            truncated, broken = _set_aside(path, files)
            segments.pop()
        else:
            truncated, broken = _cut_tail(path, data, fault.offset, files)
        break  # a torn fault is only ever in the last segment
    active_size = (directory / segment_name(segments[-1])).stat().st_size if segments else 0
    report = RecoveryReport(lsn, prev, truncated, broken, len(segments))
    return Recovered(report, segments, active_size)


def _walk(data: bytes, first_lsn: int, prev: bytes) -> tuple[int, bytes, Fault | None]:
    """Returns the last good (lsn, hash) of a segment whose header checked out, and the
    fault after it, if any."""
    lsn = first_lsn - 1
    for frame in walk_frames(data, SEGMENT_HEADER_SIZE, first_lsn, prev):
        if isinstance(frame, Fault):
            return lsn, prev, frame
        lsn, _, _, prev, _, _ = frame  # its hash is what the next frame links to
    return lsn, prev, None


def _require_torn(path: Path, data: bytes, fault: Fault, last_lsn: int, *, is_last: bool) -> None:
    """Raises JournalCorrupt unless ``fault`` can only be a torn tail."""
    if not is_last or not fault.torn:
        raise JournalCorrupt(str(path), fault.offset, fault.what)
    later = find_frame_after(data, fault.offset, last_lsn)
    if later is not None:
        what = f"{fault.what}; a good record follows at offset {later}"
        raise JournalCorrupt(str(path), fault.offset, what)


def find_frame_after(data: bytes, damage: int, last_lsn: int) -> int | None:
    """First offset after ``damage`` holding a frame with a good checksum whose LSN could
    follow ``last_lsn``: ``last_lsn < lsn <= last_lsn + 1 + (offset - damage) // 48``
    (each record missing in between takes at least 48 bytes of the gap).
    """
    view = memoryview(data)
    for offset in range(damage + 1, len(data) - FRAME_HEADER_SIZE + 1):
        length, _crc, lsn, _prev = FRAME_HEADER.unpack_from(view, offset)
        if not last_lsn < lsn <= last_lsn + 1 + (offset - damage) // FRAME_HEADER_SIZE:
            continue
        if length > MAX_PAYLOAD or offset + FRAME_HEADER_SIZE + length > len(data):
            continue
        if isinstance(decode_record(view, offset), Frame):
            return offset
    return None


def _cut_tail(path: Path, data: bytes, offset: int, files: FileOps) -> tuple[int, str]:
    """Copies ``data[offset:]`` to a new ``.broken`` file, then truncates the segment.

    The copy and its directory entry are durable before the segment shrinks, so a crash
    at any step loses no byte.
    """
    broken = _free_broken_path(path)
    fd = files.open(broken, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        write_all(fd, data[offset:], files)
        files.fsync(fd)
    finally:
        files.close(fd)
    fsync_dir(path.parent, files)  # the copy's name is durable before any byte is cut
    fd = files.open(path, os.O_WRONLY)
    try:
        files.ftruncate(fd, offset)
        files.fsync(fd)  # the new size is inode metadata: the file's fsync covers it
    finally:
        files.close(fd)
    cut = len(data) - offset
    log.warning(
        "journal: cut a torn tail of %d bytes off %s at offset %d; kept in %s",
        cut,
        path,
        offset,
        broken,
        extra={"segment": str(path), "offset": offset, "bytes": cut, "broken": str(broken)},
    )
    return cut, str(broken)


def _set_aside(path: Path, files: FileOps) -> tuple[int, str]:
    """Renames a last segment whose header never became whole to a ``.broken`` name."""
    broken = _free_broken_path(path)
    size = path.stat().st_size
    files.rename(path, broken)
    fsync_dir(path.parent, files)
    log.warning(
        "journal: last segment %s has a torn header; moved its %d bytes to %s",
        path,
        size,
        broken,
        extra={"segment": str(path), "offset": 0, "bytes": size, "broken": str(broken)},
    )
    return size, str(broken)


def _free_broken_path(path: Path) -> Path:
    """``<segment>.broken``, or ``.broken.1``, ``.broken.2``... if taken."""
    candidate = path.with_name(path.name + ".broken")
    n = 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.broken.{n}")
    return candidate
