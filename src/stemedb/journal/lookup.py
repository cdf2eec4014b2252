"""Random reads of single records: the record with a given LSN at a known frame offset.

The derived index keeps where each signed write's record starts (``Record.offset``)
instead of a second copy of its signed body, and reads the body back from here when an
answer includes it. Each read checks the frame's checksum and that it holds the LSN
asked for; it does not walk the chain (``scan`` and start-up do that).
"""

from __future__ import annotations

import bisect
import os
import threading
from pathlib import Path

from stemedb.errors import JournalCorrupt
from stemedb.journal.record import FRAME_HEADER, FRAME_HEADER_SIZE, MAX_PAYLOAD, frame_crc
from stemedb.journal.segment import list_segments, segment_name

READ_AHEAD = 2048  # bytes read with the header: most records need one read
MAX_OPEN = 64  # segment files kept open; past that a read opens and closes its own


class RecordReader:
    """Reads records of the journal in ``directory`` by (LSN, frame offset). Safe to use
    from many threads; up to ``MAX_OPEN`` segment files stay open until ``close``. A
    segment created after the last look at the directory is found by looking again."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._firsts: list[int] = []
        self._fds: dict[int, int] = {}
        self._lock = threading.Lock()
        self._closed = False

    def payload(self, lsn: int, offset: int) -> bytes:
        """The payload of record ``lsn``, whose frame starts at ``offset`` of its segment.
        Raises ``JournalCorrupt`` when the bytes there are not that record."""
        for look_again in (False, True):
            first = self._segment_of(lsn, look_again)
            if first is None:
                continue
            got = self._read(first, lsn, offset)
            if got is not None:
                return got
        raise JournalCorrupt(str(self.directory / self._name(lsn)), offset,
                             f"record {lsn} is not at offset {offset}")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            fds, self._fds = self._fds, {}
        for fd in fds.values():
            os.close(fd)

    def _name(self, lsn: int) -> str:
        first = self._segment_of(lsn, False)
        return segment_name(first) if first is not None else "(no segment)"

    def _segment_of(self, lsn: int, look_again: bool) -> int | None:
        if look_again or not self._firsts or lsn < self._firsts[0]:
            firsts = list_segments(self.directory) if self.directory.is_dir() else []
            with self._lock:
                self._firsts = firsts
        firsts = self._firsts
        i = bisect.bisect_right(firsts, lsn) - 1
        return firsts[i] if i >= 0 else None

    def _open(self, first: int) -> tuple[int, bool]:
        """(a descriptor of the segment, whether the caller must close it)."""
        fd = self._fds.get(first)
        if fd is not None:
            return fd, False
        with self._lock:
            if self._closed:
                raise ValueError("the record reader is closed")
            fd = self._fds.get(first)
            if fd is not None:
                return fd, False
            try:
                fd = os.open(self.directory / segment_name(first), os.O_RDONLY)
            except FileNotFoundError:
                raise JournalCorrupt(str(self.directory / segment_name(first)), 0,
                                     "segment file is missing") from None
            if len(self._fds) >= MAX_OPEN:
                return fd, True
            self._fds[first] = fd
            return fd, False

    def _read(self, first: int, lsn: int, offset: int) -> bytes | None:
        fd, own = self._open(first)
        try:
            return self._read_frame(fd, first, lsn, offset)
        finally:
            if own:
                os.close(fd)

    def _read_frame(self, fd: int, first: int, lsn: int, offset: int) -> bytes | None:
        buf = os.pread(fd, FRAME_HEADER_SIZE + READ_AHEAD, offset)
        if len(buf) < FRAME_HEADER_SIZE:
            return None
        length, crc, found, prev = FRAME_HEADER.unpack_from(buf)
        if found != lsn or length > MAX_PAYLOAD:
            return None
        payload = buf[FRAME_HEADER_SIZE:FRAME_HEADER_SIZE + length]
        if len(payload) < length:
            payload = os.pread(fd, length, offset + FRAME_HEADER_SIZE)
            if len(payload) < length:
                return None
        if frame_crc(lsn, prev, payload) != crc:
            raise JournalCorrupt(str(self.directory / segment_name(first)), offset,
                                 "frame checksum mismatch")
        return payload
