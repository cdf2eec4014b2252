"""Recovery on open and scan(): torn tails are cut and kept, all other damage refuses."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from stemedb.errors import JournalCorrupt, JournalError
from stemedb.journal import Journal, Record, encode_record, encode_segment_header, scan


def build(directory: Path, count: int, segment_bytes: int = 300) -> list[Record]:
    """A journal of ``count`` one-record batches with payloads of varied sizes."""
    with Journal(directory, segment_bytes=segment_bytes) as journal:
        return [journal.append([b"p%d-" % i + b"z" * (i * 7 % 40)])[0] for i in range(count)]


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.wal"))


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


def frame_end(record: Record) -> int:
    return record.offset + 48 + len(record.payload)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Record]]:
    """Three sealed segments, then a last segment holding the last five records."""
    directory = tmp_path_factory.mktemp("base")
    records = build(directory, 9)
    with Journal(directory, segment_bytes=1) as journal:
        journal.append([b"roll"])  # any segment with a record is full: this starts a new one
    with Journal(directory, segment_bytes=1 << 20) as journal:
        records += [journal.append([b"tail-%d" % i + b"t" * i])[0] for i in range(4)]
        records = list(journal.read())
    assert len({r.segment for r in records[-5:]}) == 1
    assert len(segment_files(directory)) >= 3
    return directory, records


def test_torn_tail_sweep(base: tuple[Path, list[Record]], tmp_path: Path) -> None:
    """Cut the journal at every byte offset inside its last three frames."""
    source, records = base
    last = records[-3:]
    segment = last[0].segment
    original = (source / segment).read_bytes()
    boundaries = {r.offset: r.lsn - 1 for r in last}
    for cut in range(last[0].offset, frame_end(last[-1])):
        case = tmp_path / str(cut)
        shutil.copytree(source, case)
        os.truncate(case / segment, cut)
        torn_start = max(r.offset for r in last if r.offset <= cut)
        intact = boundaries[torn_start] if cut > torn_start else boundaries[cut]
        with Journal(case) as journal:
            assert journal.last_lsn == intact
            report = journal.recovery
            if cut == torn_start:
                assert (report.truncated_bytes, report.broken_copy) == (0, None)
            else:
                assert report.truncated_bytes == cut - torn_start
                assert report.broken_copy == str(case / (segment + ".broken"))
                assert Path(report.broken_copy).read_bytes() == original[torn_start:cut]
            assert (case / segment).stat().st_size == torn_start
            assert journal.append([b"continues"])[0].lsn == intact + 1
        with Journal(case) as journal:
            assert journal.last_lsn == intact + 1
            assert journal.recovery.truncated_bytes == 0
        assert [r.lsn for r in scan(case)] == list(range(1, intact + 2))
        shutil.rmtree(case)


def test_torn_tail_followed_by_zeros(base: tuple[Path, list[Record]], tmp_path: Path) -> None:
    """A crash can leave the file longer than what was written, filled with zeros."""
    source, records = base
    last = records[-3:]
    segment = last[0].segment
    original = (source / segment).read_bytes()
    for cut in range(last[0].offset, frame_end(last[-1]), 3):
        case = tmp_path / str(cut)
        shutil.copytree(source, case)
        (case / segment).write_bytes(original[:cut] + bytes(len(original) - cut))
        torn = [r for r in last if r.offset <= cut][-1]
        with Journal(case) as journal:
            assert journal.last_lsn == torn.lsn - 1
            assert journal.recovery.truncated_bytes == len(original) - torn.offset
        shutil.rmtree(case)


def test_flip_in_a_record_with_records_after_it(
    base: tuple[Path, list[Record]], tmp_path: Path
) -> None:
    source, records = base
    victim = records[-3]  # in the last segment, two good records follow
    for offset in range(victim.offset, frame_end(victim)):
        case = tmp_path / str(offset)
        shutil.copytree(source, case)
        flip(case / victim.segment, offset)
        with pytest.raises(JournalCorrupt) as raised:
            Journal(case)
        assert raised.value.file == str(case / victim.segment)
        assert raised.value.offset == victim.offset
        assert f"{victim.segment} at offset {victim.offset}" in str(raised.value)
        assert "runbook" in raised.value.hint or "runbooks" in raised.value.hint
        with pytest.raises(JournalCorrupt):
            list(scan(case))
        shutil.rmtree(case)


def test_flip_anywhere_in_a_sealed_segment(base: tuple[Path, list[Record]], tmp_path: Path) -> None:
    source, records = base
    segment = records[0].segment
    starts = [0] + [r.offset for r in records if r.segment == segment]
    size = (source / segment).stat().st_size
    for offset in range(size):
        case = tmp_path / str(offset)
        shutil.copytree(source, case)
        flip(case / segment, offset)
        with pytest.raises(JournalCorrupt) as raised:
            Journal(case)
        assert raised.value.file == str(case / segment)
        assert raised.value.offset == max(s for s in starts if s <= offset)
        shutil.rmtree(case)


def test_flip_in_the_very_last_record_reads_as_torn(
    base: tuple[Path, list[Record]], tmp_path: Path
) -> None:
    """Documented limit: damage to the last record looks like an interrupted write."""
    source, records = base
    shutil.copytree(source, tmp_path / "j")
    flip(tmp_path / "j" / records[-1].segment, frame_end(records[-1]) - 1)
    with Journal(tmp_path / "j") as journal:
        assert journal.last_lsn == len(records) - 1
        assert journal.recovery.truncated_bytes == frame_end(records[-1]) - records[-1].offset


def test_truncated_sealed_segment_is_corrupt(
    base: tuple[Path, list[Record]], tmp_path: Path
) -> None:
    source, records = base
    shutil.copytree(source, tmp_path / "j")
    path = tmp_path / "j" / records[0].segment
    os.truncate(path, path.stat().st_size - 5)
    with pytest.raises(JournalCorrupt, match="truncated frame"):
        Journal(tmp_path / "j")


def test_valid_frame_with_wrong_lsn_at_the_tail_is_corrupt(tmp_path: Path) -> None:
    records = build(tmp_path, 3)
    frame, _ = encode_record(records[-1].lsn + 2, records[-1].hash, b"skips an lsn")
    with open(tmp_path / records[-1].segment, "ab") as f:
        f.write(frame)
    with pytest.raises(JournalCorrupt, match="expected lsn 4, found lsn 5"):
        Journal(tmp_path)


def test_missing_segment(base: tuple[Path, list[Record]], tmp_path: Path) -> None:
    source, _ = base
    shutil.copytree(source, tmp_path / "j")
    middle = segment_files(tmp_path / "j")[1]
    middle.unlink()
    with pytest.raises(JournalCorrupt, match="missing segment"):
        Journal(tmp_path / "j")
    with pytest.raises(JournalCorrupt, match="missing segment"):
        list(scan(tmp_path / "j"))


def test_journal_must_start_at_lsn_1(base: tuple[Path, list[Record]], tmp_path: Path) -> None:
    source, _ = base
    shutil.copytree(source, tmp_path / "j")
    segment_files(tmp_path / "j")[0].unlink()
    with pytest.raises(JournalCorrupt, match="expected lsn 1"):
        Journal(tmp_path / "j")


def test_torn_header_of_the_only_segment(tmp_path: Path) -> None:
    (tmp_path / f"{1:020d}.wal").write_bytes(encode_segment_header(1, bytes(32))[:20])
    with Journal(tmp_path) as journal:
        assert journal.last_lsn == 0
        assert journal.recovery.truncated_bytes == 20
        assert journal.recovery.broken_copy == str(tmp_path / f"{1:020d}.wal.broken")
        assert journal.append([b"first"])[0].lsn == 1
    assert (tmp_path / f"{1:020d}.wal").stat().st_size == 52 + 48 + 5


@pytest.mark.parametrize("header", [b"", b"STMJ", bytes(52)], ids=["empty", "partial", "zeros"])
def test_torn_header_after_sealed_segments(
    base: tuple[Path, list[Record]], tmp_path: Path, header: bytes
) -> None:
    source, records = base
    shutil.copytree(source, tmp_path / "j")
    name = f"{len(records) + 1:020d}.wal"
    (tmp_path / "j" / name).write_bytes(header)
    with Journal(tmp_path / "j") as journal:
        assert journal.last_lsn == len(records)
        assert journal.recovery.truncated_bytes == len(header)
        assert not (tmp_path / "j" / name).exists()
        assert (tmp_path / "j" / (name + ".broken")).read_bytes() == header
        assert journal.append([b"next"])[0].lsn == len(records) + 1
    assert [r.lsn for r in scan(tmp_path / "j")][-1] == len(records) + 1


def test_bad_last_header_with_good_records_after_is_corrupt(
    base: tuple[Path, list[Record]], tmp_path: Path
) -> None:
    source, records = base
    shutil.copytree(source, tmp_path / "j")
    flip(tmp_path / "j" / records[-1].segment, 3)
    with pytest.raises(JournalCorrupt, match="good record follows"):
        Journal(tmp_path / "j")


def test_torn_header_needs_a_continuous_name(tmp_path: Path) -> None:
    """A lone segment not starting at lsn 1 is the only evidence of older records."""
    (tmp_path / f"{5:020d}.wal").write_bytes(b"STMJ")
    with pytest.raises(JournalCorrupt, match="missing segment"):
        Journal(tmp_path)


def test_broken_copies_are_numbered_and_other_files_ignored(tmp_path: Path) -> None:
    records = build(tmp_path, 3, segment_bytes=1 << 20)
    path = tmp_path / records[0].segment
    (tmp_path / "notes.txt").write_text("not a segment")
    (tmp_path / "1.wal").write_text("not a segment name")
    for attempt in range(3):
        with open(path, "ab") as f:
            f.write(b"\x07torn")
        with Journal(tmp_path) as journal:
            suffix = ".broken" if attempt == 0 else f".broken.{attempt}"
            assert journal.recovery.broken_copy == str(path) + suffix
            assert journal.last_lsn == 3
    assert [r.lsn for r in scan(tmp_path)] == [1, 2, 3]


def test_repair_order_keeps_the_copy_durable_before_cutting(tmp_path: Path) -> None:
    records = build(tmp_path, 2)
    with open(tmp_path / records[-1].segment, "ab") as f:
        f.write(b"torn tail")
    synced: list[str] = []

    def recording_fsync(fd: int) -> None:
        synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        os.fsync(fd)

    Journal(tmp_path, fsync=recording_fsync).close()
    name = records[-1].segment
    assert synced == [name + ".broken", tmp_path.name, name]


def test_scan_checks_everything_and_reports_progress(
    base: tuple[Path, list[Record]], tmp_path: Path
) -> None:
    source, records = base
    consumed: list[int] = []
    assert list(scan(source, progress=consumed.append)) == records
    assert consumed == sorted(consumed)  # a running total, for a progress bar
    assert consumed[-1] == sum(p.stat().st_size for p in segment_files(source))
    assert [r.lsn for r in scan(source, from_lsn=7)] == list(range(7, len(records) + 1))
    assert [r.lsn for r in scan(source, from_lsn=3, to_lsn=5)] == [3, 4, 5]
    with pytest.raises(JournalError):
        list(scan(tmp_path / "nowhere"))


def test_scan_is_strict_about_a_torn_tail(base: tuple[Path, list[Record]], tmp_path: Path) -> None:
    source, records = base
    shutil.copytree(source, tmp_path / "j")
    path = tmp_path / "j" / records[-1].segment
    os.truncate(path, path.stat().st_size - 1)
    with pytest.raises(JournalCorrupt) as raised:
        list(scan(tmp_path / "j"))
    assert raised.value.offset == records[-1].offset
    assert len(list(scan(tmp_path / "j", to_lsn=len(records) - 1))) == len(records) - 1


def test_read_detects_damage_after_open(tmp_path: Path) -> None:
    with Journal(tmp_path) as journal:
        records = journal.append([b"one", b"two", b"three"])
        flip(tmp_path / records[1].segment, records[1].offset + 50)
        with pytest.raises(JournalCorrupt):
            list(journal.read())
