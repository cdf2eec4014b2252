"""Regenerates the golden journals next to this file.

    .venv/bin/python tests/testdata/journals/make_golden.py [OUTPUT_DIR]

Every case starts from the same clean journal (12 records in 4 segments) and damages it in
one way. ``expected.json`` states what opening each case must do ("ok", "torn": the tail
is cut and the journal opens, "corrupt": JournalCorrupt naming file and offset) and what
the strict ``scan()`` must do. The output is byte-for-byte deterministic; a test checks
that the committed files still match it, so a format change cannot slip in unnoticed.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import zlib
from pathlib import Path
from typing import Any

from stemedb.journal import Journal, Record, encode_segment_header

HERE = Path(__file__).resolve().parent


def build_clean(directory: Path) -> list[Record]:
    with Journal(directory, segment_bytes=256) as journal:
        for i in range(1, 13):
            journal.append([b"golden record %02d " % i + b"." * (i * 5 % 23)])
        records = list(journal.read())
    return records


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def corrupt(file: str, offset: int, what: str) -> dict[str, Any]:
    return {"open": "corrupt", "file": file, "offset": offset, "what": what, "scan": "corrupt"}


def case_clean(d: Path, records: list[Record]) -> dict[str, Any]:
    return {"open": "ok", "last_lsn": 12, "scan": "ok"}


def case_torn_tail(d: Path, records: list[Record]) -> dict[str, Any]:
    """The last frame was half written when the machine stopped."""
    last = records[-1]
    cut = last.offset + 48 + len(last.payload) // 2
    os.truncate(d / last.segment, cut)
    return {"open": "torn", "last_lsn": 11, "truncated_bytes": cut - last.offset, "scan": "corrupt"}


def case_torn_header(d: Path, records: list[Record]) -> dict[str, Any]:
    """A new segment was created but only 20 bytes of its header reached the disk."""
    (d / f"{13:020d}.wal").write_bytes(encode_segment_header(13, records[-1].hash)[:20])
    return {"open": "torn", "last_lsn": 12, "truncated_bytes": 20, "scan": "corrupt"}


def case_flipped_byte_mid(d: Path, records: list[Record]) -> dict[str, Any]:
    """One payload byte flipped in the last segment, with good records after it."""
    victim = records[-2]
    assert victim.segment == records[-1].segment
    flip(d / victim.segment, victim.offset + 48 + 3)
    return corrupt(victim.segment, victim.offset, "frame checksum mismatch")


def case_flipped_byte_sealed(d: Path, records: list[Record]) -> dict[str, Any]:
    """One byte flipped in the last record of a sealed segment."""
    victim = [r for r in records if r.segment == records[0].segment][-1]
    flip(d / victim.segment, victim.offset + 48)
    return corrupt(victim.segment, victim.offset, "frame checksum mismatch")


def case_broken_chain(d: Path, records: list[Record]) -> dict[str, Any]:
    """A record's payload rewritten with a recomputed checksum, as a tamperer would:
    the checksum passes, the next record's link does not."""
    victim, after = records[-3], records[-2]
    assert victim.segment == after.segment
    path = d / victim.segment
    data = bytearray(path.read_bytes())
    start = victim.offset + 48
    data[start : start + 6] = b"forged"
    body = victim.lsn.to_bytes(8, "little") + data[victim.offset + 16 : start]
    crc = zlib.crc32(bytes(body) + bytes(data[start : start + len(victim.payload)]))
    data[victim.offset + 4 : victim.offset + 8] = crc.to_bytes(4, "little")
    path.write_bytes(bytes(data))
    return corrupt(after.segment, after.offset, f"broken hash chain at lsn {after.lsn}")


def case_missing_segment(d: Path, records: list[Record]) -> dict[str, Any]:
    """A sealed segment in the middle was deleted."""
    names = sorted({r.segment for r in records})
    (d / names[1]).unlink()
    return corrupt(names[2], 0, "missing segment")


def case_bad_header(d: Path, records: list[Record]) -> dict[str, Any]:
    """A byte of a sealed segment's header (its prev_hash) flipped."""
    names = sorted({r.segment for r in records})
    flip(d / names[1], 20)
    return corrupt(names[1], 0, "segment header checksum mismatch")


CASES = {
    "clean": case_clean,
    "torn_tail": case_torn_tail,
    "torn_header": case_torn_header,
    "flipped_byte_mid": case_flipped_byte_mid,
    "flipped_byte_sealed": case_flipped_byte_sealed,
    "broken_chain": case_broken_chain,
    "missing_segment": case_missing_segment,
    "bad_header": case_bad_header,
}


def generate(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    expected = {}
    for name, damage in CASES.items():
        target = out / name
        shutil.rmtree(target, ignore_errors=True)
        records = build_clean(target)
        expected[name] = damage(target, records)
    (out / "expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
