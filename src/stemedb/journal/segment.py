"""Segment files: names, the 52-byte header, walking frames, and the file syscalls.

Segment header (little-endian)::

    8s magic "STMJWAL1" | u64 first_lsn | 32s prev_hash | u32 crc32 of the preceding 48 bytes

A segment is named ``{first_lsn:020d}.wal``; ``prev_hash`` is the chain hash of record
``first_lsn - 1`` (32 zero bytes for lsn 1).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from stemedb.journal.files import OS_FILES, FileOps
from stemedb.journal.record import (
    FRAME_HEADER,
    FRAME_HEADER_SIZE,
    MAX_PAYLOAD,
    BadFrame,
    Frame,
    decode_record,
)

MAGIC = b"STMJWAL1"
SEGMENT_HEADER = struct.Struct("<8sQ32sI")
SEGMENT_HEADER_SIZE = SEGMENT_HEADER.size  # 52
_NAME = re.compile(r"^(\d{20})\.wal$")


@dataclass(frozen=True, slots=True)
class Fault:
    """The first thing wrong in a segment."""

    offset: int
    what: str
    torn: bool  # an interrupted write could explain it (never true for a chain fault)


def segment_name(first_lsn: int) -> str:
    return f"{first_lsn:020d}.wal"


def list_segments(directory: Path) -> list[int]:
    """First LSNs of the segment files in ``directory``, ascending. Other files are ignored."""
    found = (_NAME.match(entry.name) for entry in os.scandir(directory) if entry.is_file())
    return sorted(int(match.group(1)) for match in found if match)


def encode_segment_header(first_lsn: int, prev_hash: bytes) -> bytes:
    body = SEGMENT_HEADER.pack(MAGIC, first_lsn, prev_hash, 0)[:-4]
    return body + struct.pack("<I", zlib.crc32(body))


def check_header(data: bytes, first_lsn: int, prev_hash: bytes | None) -> Fault | None:
    """Checks the header of a segment named for ``first_lsn``.

    ``prev_hash`` is the expected link to the previous segment, or None to trust the
    header (when reading starts at this segment).
    """
    if len(data) < SEGMENT_HEADER_SIZE:
        return Fault(0, f"truncated segment header ({len(data)} of 52 bytes)", True)
    magic, header_lsn, header_prev, crc = SEGMENT_HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        return Fault(0, "bad segment magic", True)
    if zlib.crc32(data[: SEGMENT_HEADER_SIZE - 4]) != crc:
        return Fault(0, "segment header checksum mismatch", True)
    if header_lsn != first_lsn:
        return Fault(0, f"segment header says first lsn {header_lsn}", False)
    if prev_hash is not None and header_prev != prev_hash:
        return Fault(0, "segment prev_hash does not match the previous record", False)
    return None


def header_prev_hash(data: bytes) -> bytes:
    """Requires: check_header(data, ...) returned None."""
    return bytes(data[16:48])


def iter_frames(data: bytes, offset: int, lsn: int, prev_hash: bytes) -> Iterator[Frame | Fault]:
    """Yields the frames from ``offset`` on, expecting ``lsn`` first and chained to
    ``prev_hash``; if the data does not end exactly after a good frame, yields a
    :class:`Fault` last.
    """
    for item in walk_frames(data, offset, lsn, prev_hash):
        yield item if isinstance(item, Fault) else Frame(*item)


# Frame's fields, in order: (lsn, prev_hash, payload, hash, offset, end).
FrameTuple = tuple[int, bytes, bytes, bytes, int, int]


def walk_frames(
    data: bytes, offset: int, lsn: int, prev_hash: bytes
) -> Iterator[FrameTuple | Fault]:
    """``iter_frames`` yielding each good frame as a tuple of :class:`Frame`'s fields
    (replay reads every record twice, at open and to rebuild: objects cost).

    A well-formed frame is checked inline: it must carry the expected LSN and link, and
    its checksum covers ``lsn_u64 + prev_hash + payload``, which lie contiguous in the
    frame, so one ``crc32`` call checks it. Anything else goes to ``decode_record`` and
    the checks after it, which say what is wrong, exactly as ``iter_frames`` always has.
    """
    view = memoryview(data)
    size = len(data)
    unpack = FRAME_HEADER.unpack_from
    crc32 = zlib.crc32
    sha256 = hashlib.sha256
    while offset < size:
        start = offset + FRAME_HEADER_SIZE
        if start <= size:
            length, crc, frame_lsn, frame_prev = unpack(data, offset)
            end = start + length
            if (frame_lsn == lsn and frame_prev == prev_hash and length <= MAX_PAYLOAD
                    and end <= size and crc32(view[offset + 8:end]) == crc):  # frame_crc
                payload = data[start:end]
                lsn_u64 = data[offset + 8:offset + 16]
                chain = sha256(prev_hash + lsn_u64 + payload).digest()  # chain_hash
                yield lsn, prev_hash, payload, chain, offset, end
                lsn, prev_hash, offset = lsn + 1, chain, end
                continue
        frame = decode_record(data, offset)
        if isinstance(frame, BadFrame):
            yield Fault(offset, frame.what, True)
        elif frame.lsn != lsn:
            yield Fault(offset, f"expected lsn {lsn}, found lsn {frame.lsn}", False)
        else:  # the checks above passed but for the chain link
            yield Fault(offset, f"broken hash chain at lsn {lsn}", False)
        return


def write_all(fd: int, data: bytes, files: FileOps = OS_FILES) -> None:
    """Writes all of ``data`` at the file position, looping on short writes."""
    view = memoryview(data)
    while view:
        written = files.write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, "write made no progress")
        view = view[written:]


def fsync_dir(directory: Path, files: FileOps) -> None:
    """Makes the directory's entries (creates, renames, unlinks) durable."""
    fd = files.open(directory, os.O_RDONLY)
    try:
        files.fsync(fd)
    finally:
        files.close(fd)


def create_segment(directory: Path, first_lsn: int, prev_hash: bytes, files: FileOps) -> int:
    """Creates segment ``first_lsn`` with a durable header and directory entry; returns an
    append-mode fd positioned after the header.

    Requires: no file of that name exists (O_EXCL enforces it).
    """
    path = directory / segment_name(first_lsn)
    fd = files.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
    try:
        write_all(fd, encode_segment_header(first_lsn, prev_hash), files)
        files.fsync(fd)
        fsync_dir(directory, files)
    except BaseException:
        files.close(fd)
        raise
    return fd


def open_segment(directory: Path, first_lsn: int, files: FileOps) -> int:
    """Opens an existing segment for appending. Requires: recovery validated it."""
    return files.open(directory / segment_name(first_lsn), os.O_WRONLY | os.O_APPEND)
