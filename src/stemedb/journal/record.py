"""Record framing: one length-prefixed, checksummed, hash-chained frame per record.

Frame layout (all integers little-endian)::

    u32 payload_len | u32 crc32(lsn_u64 + prev_hash + payload) | u64 lsn | 32s prev_hash | payload

The chain hash of a record is ``sha256(prev_hash + lsn_u64 + payload)``; the next record
stores it as its ``prev_hash``. See docs/journal-format.md.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass
from typing import NamedTuple

FRAME_HEADER = struct.Struct("<IIQ32s")
FRAME_HEADER_SIZE = FRAME_HEADER.size  # 48
MAX_PAYLOAD = 16 * 1024 * 1024
HASH_SIZE = 32
ZERO_HASH = bytes(HASH_SIZE)
_LSN = struct.Struct("<Q")
MAX_LSN = 2**64 - 1


class Record(NamedTuple):
    """A durable journal record. (A named tuple: replay makes one per record, and a
    tuple is several times cheaper to make than a frozen dataclass.)"""

    lsn: int
    payload: bytes
    hash: bytes  # this record's chain hash (32 bytes)
    segment: str  # segment file name
    offset: int  # byte offset of the frame in the segment


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame that decoded with a good checksum; its place in the chain is not yet checked."""

    lsn: int
    prev_hash: bytes
    payload: bytes
    hash: bytes
    offset: int  # where the frame starts
    end: int  # where the next frame starts


@dataclass(frozen=True, slots=True)
class BadFrame:
    """Why the bytes at ``offset`` are not a frame."""

    offset: int
    what: str
    truncated: bool  # the buffer ended before the frame did


def chain_hash(prev_hash: bytes, lsn: int, payload: bytes) -> bytes:
    return hashlib.sha256(prev_hash + _LSN.pack(lsn) + payload).digest()


def frame_crc(lsn: int, prev_hash: bytes | memoryview, payload: bytes | memoryview) -> int:
    return zlib.crc32(payload, zlib.crc32(prev_hash, zlib.crc32(_LSN.pack(lsn))))


def encode_record(lsn: int, prev_hash: bytes, payload: bytes) -> tuple[bytes, bytes]:
    """Returns ``(frame, hash)`` for the record ``lsn`` that follows the record hashing to
    ``prev_hash``.

    Requires: 1 <= lsn < 2**64, len(prev_hash) == 32, len(payload) <= MAX_PAYLOAD.
    """
    if not 1 <= lsn <= MAX_LSN:
        raise ValueError(f"lsn out of range: {lsn}")
    if len(prev_hash) != HASH_SIZE:
        raise ValueError("prev_hash must be 32 bytes")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    header = FRAME_HEADER.pack(len(payload), frame_crc(lsn, prev_hash, payload), lsn, prev_hash)
    return header + payload, chain_hash(prev_hash, lsn, payload)


def decode_record(buf: bytes | memoryview, offset: int) -> Frame | BadFrame:
    """Decodes the frame starting at ``buf[offset]``.

    Checks the length bound and the checksum only; the caller checks the LSN and the
    chain link. Never raises on bad bytes: damage is returned as a :class:`BadFrame`.
    """
    view = memoryview(buf)
    available = len(view) - offset
    if available < FRAME_HEADER_SIZE:
        return BadFrame(offset, f"truncated frame header ({available} of 48 bytes)", True)
    length, crc, lsn, prev_hash = FRAME_HEADER.unpack_from(view, offset)
    if length > MAX_PAYLOAD:
        return BadFrame(offset, f"implausible payload length {length}", False)
    start = offset + FRAME_HEADER_SIZE
    end = start + length
    if end > len(view):
        return BadFrame(offset, f"truncated frame ({len(view) - start} of {length} bytes)", True)
    payload = view[start:end]
    if frame_crc(lsn, prev_hash, payload) != crc:
        return BadFrame(offset, "frame checksum mismatch", False)
    data = bytes(payload)
    return Frame(lsn, prev_hash, data, chain_hash(prev_hash, lsn, data), offset, end)
