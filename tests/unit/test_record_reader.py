"""``journal.RecordReader``: a record read back by (LSN, frame offset), as the index
reads signed bodies; segments written after it last looked are found, and bytes that
are not the record asked for are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from stemedb.errors import JournalCorrupt
from stemedb.journal import Journal, RecordReader, lookup


def test_records_are_read_back_across_segments_made_after_the_first_look(tmp_path: Path
                                                                          ) -> None:
    reader = RecordReader(tmp_path)
    try:
        with Journal(tmp_path, segment_bytes=4096) as j:
            first = j.append([b"x" * 100])
            assert reader.payload(first[0].lsn, first[0].offset) == b"x" * 100
            later = [r for i in range(12)  # a segment rotates between appends
                     for r in j.append([bytes([65 + i]) * (700 * k + 300) for k in range(4)])]
        assert len({r.segment for r in later}) > 3  # rotated after the reader looked
        for r in later:
            assert reader.payload(r.lsn, r.offset) == r.payload
        big = later[-1]
        assert len(big.payload) > 2048  # past the bytes read with the header
    finally:
        reader.close()


def test_a_wrong_offset_or_damaged_frame_is_refused(tmp_path: Path) -> None:
    with Journal(tmp_path) as j:
        a, b = j.append([b"first payload", b"second payload"])
    reader = RecordReader(tmp_path)
    try:
        with pytest.raises(JournalCorrupt, match="record 2 is not at offset"):
            reader.payload(2, a.offset)
        with pytest.raises(JournalCorrupt, match="record 9 is not at offset"):
            reader.payload(9, 10**6)
        path = tmp_path / b.segment
        data = bytearray(path.read_bytes())
        data[-3] ^= 0xFF
        path.write_bytes(bytes(data))
        reader.close()
        reader = RecordReader(tmp_path)
        with pytest.raises(JournalCorrupt, match="checksum"):
            reader.payload(2, b.offset)
        assert reader.payload(1, a.offset) == b"first payload"
    finally:
        reader.close()


def test_past_the_open_file_limit_a_read_opens_its_own(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lookup, "MAX_OPEN", 2)
    with Journal(tmp_path, segment_bytes=256) as j:
        written = [r for i in range(6) for r in j.append([bytes([97 + i]) * 300])]
    assert len({r.segment for r in written}) == 6
    reader = RecordReader(tmp_path)
    try:
        for _ in range(2):
            assert [reader.payload(r.lsn, r.offset) for r in written] == \
                [r.payload for r in written]
        assert len(reader._fds) == 2
    finally:
        reader.close()
