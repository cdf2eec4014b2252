"""Record framing and the segment header, checked against the byte layout in
docs/journal-format.md rather than against the encoder's own structs."""

from __future__ import annotations

import hashlib
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stemedb.journal import (
    MAX_PAYLOAD,
    BadFrame,
    Frame,
    chain_hash,
    decode_record,
    encode_record,
    encode_segment_header,
)
from stemedb.journal.segment import check_header

lsns = st.integers(min_value=1, max_value=2**64 - 1)
hashes = st.binary(min_size=32, max_size=32)
payloads = st.binary(max_size=2048)


def le(n: int, width: int) -> bytes:
    return n.to_bytes(width, "little")


@given(lsn=lsns, prev=hashes, payload=payloads, prefix=st.binary(max_size=64))
def test_round_trip(lsn: int, prev: bytes, payload: bytes, prefix: bytes) -> None:
    frame, digest = encode_record(lsn, prev, payload)
    buf = prefix + frame + b"\x00trailing"
    decoded = decode_record(buf, len(prefix))
    assert isinstance(decoded, Frame)
    assert (decoded.lsn, decoded.prev_hash, decoded.payload) == (lsn, prev, payload)
    assert decoded.hash == digest
    assert (decoded.offset, decoded.end) == (len(prefix), len(prefix) + len(frame))


@given(lsn=lsns, prev=hashes, payload=payloads)
def test_layout_matches_the_documented_format(lsn: int, prev: bytes, payload: bytes) -> None:
    frame, digest = encode_record(lsn, prev, payload)
    crc = zlib.crc32(le(lsn, 8) + prev + payload)
    assert frame == le(len(payload), 4) + le(crc, 4) + le(lsn, 8) + prev + payload
    assert digest == hashlib.sha256(prev + le(lsn, 8) + payload).digest()
    assert digest == chain_hash(prev, lsn, payload)


@given(lsn=lsns, prev=hashes, payload=payloads, data=st.data())
def test_any_flipped_byte_is_rejected(lsn: int, prev: bytes, payload: bytes, data) -> None:
    frame, _ = encode_record(lsn, prev, payload)
    index = data.draw(st.integers(0, len(frame) - 1), label="index")
    mask = data.draw(st.integers(1, 255), label="mask")
    damaged = bytearray(frame)
    damaged[index] ^= mask
    assert isinstance(decode_record(bytes(damaged), 0), BadFrame)


@given(lsn=lsns, prev=hashes, payload=payloads, data=st.data())
def test_every_short_prefix_is_truncated(lsn: int, prev: bytes, payload: bytes, data) -> None:
    frame, _ = encode_record(lsn, prev, payload)
    cut = data.draw(st.integers(0, len(frame) - 1), label="cut")
    decoded = decode_record(frame[:cut], 0)
    assert isinstance(decoded, BadFrame)
    assert decoded.truncated


def test_empty_payload_is_a_48_byte_frame() -> None:
    frame, _ = encode_record(1, bytes(32), b"")
    assert len(frame) == 48
    assert isinstance(decode_record(frame, 0), Frame)


def test_implausible_length_is_damage_not_truncation() -> None:
    frame, _ = encode_record(7, bytes(32), b"abc")
    damaged = le(MAX_PAYLOAD + 1, 4) + frame[4:]
    decoded = decode_record(damaged, 0)
    assert isinstance(decoded, BadFrame)
    assert not decoded.truncated
    assert "length" in decoded.what


@pytest.mark.parametrize(
    ("lsn", "prev", "size"),
    [(0, bytes(32), 0), (2**64, bytes(32), 0), (1, bytes(31), 0), (1, bytes(32), MAX_PAYLOAD + 1)],
)
def test_encode_rejects_out_of_contract_arguments(lsn: int, prev: bytes, size: int) -> None:
    with pytest.raises(ValueError):
        encode_record(lsn, prev, bytes(size))


@given(first=lsns, prev=hashes)
def test_segment_header_layout(first: int, prev: bytes) -> None:
    header = encode_segment_header(first, prev)
    body = b"STMJWAL1" + le(first, 8) + prev
    assert header == body + le(zlib.crc32(body), 4)
    assert check_header(header, first, prev) is None


@given(first=lsns, prev=hashes, data=st.data())
def test_segment_header_flip_is_rejected(first: int, prev: bytes, data) -> None:
    header = bytearray(encode_segment_header(first, prev))
    header[data.draw(st.integers(0, 51), label="index")] ^= data.draw(st.integers(1, 255))
    fault = check_header(bytes(header), first, prev)
    assert fault is not None
    assert fault.offset == 0


def test_segment_header_link_faults_are_not_torn() -> None:
    header = encode_segment_header(5, b"\x01" * 32)
    wrong_lsn = check_header(header, 6, b"\x01" * 32)
    wrong_prev = check_header(header, 5, b"\x02" * 32)
    assert wrong_lsn is not None and not wrong_lsn.torn
    assert wrong_prev is not None and not wrong_prev.torn
    short = check_header(header[:30], 5, None)
    assert short is not None and short.torn
