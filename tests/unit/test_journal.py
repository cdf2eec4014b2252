"""Journal API and the group-commit writer, on real files."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import stat
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from stemedb.errors import JournalError, JournalReadOnly, Unavailable
from stemedb.journal import Journal, OsFiles, Record, scan
from stemedb.journal.segment import write_all


class CountingFsync:
    """A real fsync that counts calls and can simulate a slow disk or fail with EIO."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay
        self.fail = False
        self.gate: threading.Event | None = None  # when set up, a failing call waits on it
        self.entered = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, fd: int) -> None:
        with self.lock:
            self.calls += 1
        if self.fail:
            self.entered.set()
            if self.gate is not None:
                self.gate.wait(5)
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        if self.delay:
            time.sleep(self.delay)
        os.fsync(fd)


class HeldFsync:
    """Blocks the writer inside fsync until released, so requests pile up in the queue."""

    def __init__(self) -> None:
        self.hold = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, fd: int) -> None:
        if self.hold:
            self.hold = False
            self.entered.set()
            self.release.wait(5)
        os.fsync(fd)


def payload(i: int) -> bytes:
    return f"record-{i}".encode() * (i % 5)


def test_append_read_reopen_across_segments(tmp_path: Path) -> None:
    written: list[Record] = []
    with Journal(tmp_path, segment_bytes=300) as journal:
        assert journal.last_lsn == 0
        for i in range(1, 41):
            written += journal.append([payload(i)])
        written += journal.append([b"a", b"", b"c"])
        assert journal.last_lsn == 43
        assert list(journal.read()) == written
    with Journal(tmp_path, segment_bytes=300) as journal:
        assert journal.recovery.last_lsn == 43
        assert journal.recovery.truncated_bytes == 0
        assert journal.recovery.broken_copy is None
        assert journal.recovery.segments == len(journal.segments()) > 3
        assert journal.last_hash == written[-1].hash
        assert list(journal.read()) == written
        more = journal.append([b"after reopen"])
        assert more[0].lsn == 44
    assert [r.lsn for r in scan(tmp_path)] == list(range(1, 45))


def test_read_ranges(tmp_path: Path) -> None:
    with Journal(tmp_path, segment_bytes=200) as journal:
        for i in range(1, 31):
            journal.append([payload(i)])
        assert [r.lsn for r in journal.read(5, 9)] == [5, 6, 7, 8, 9]
        assert [r.lsn for r in journal.read(28)] == [28, 29, 30]
        assert [r.lsn for r in journal.read(29, 100)] == [29, 30]
        assert [r.lsn for r in journal.read(0, 2)] == [1, 2]
        assert list(journal.read(31)) == []
        assert list(journal.read(9, 5)) == []
        starts = [s.first_lsn for s in journal.segments()]
        for first in starts[1:]:  # ranges that start or stop on a segment boundary
            assert [r.lsn for r in journal.read(first - 1, first)] == [first - 1, first]


def test_records_chain_and_offsets_match_the_files(tmp_path: Path) -> None:
    with Journal(tmp_path, segment_bytes=256) as journal:
        records = [r for i in range(25) for r in journal.append([payload(i), b"x"])]
    prev = bytes(32)
    for record in records:
        data = (tmp_path / record.segment).read_bytes()
        assert data[record.offset + 8 : record.offset + 16] == record.lsn.to_bytes(8, "little")
        assert data[record.offset + 16 : record.offset + 48] == prev
        prev = record.hash
    assert [r.lsn for r in records] == list(range(1, 51))


def test_segments_info(tmp_path: Path) -> None:
    with Journal(tmp_path, segment_bytes=300) as journal:
        for i in range(30):
            journal.append([payload(i)])
        infos = journal.segments()
        assert [s.sealed for s in infos] == [True] * (len(infos) - 1) + [False]
        assert infos[0].first_lsn == 1
        assert infos[-1].last_lsn == journal.last_lsn == 30
        for before, after in zip(infos, infos[1:], strict=False):
            assert after.first_lsn == before.last_lsn + 1
            assert before.size >= 300
        for info in infos:
            assert info.name == f"{info.first_lsn:020d}.wal"
            assert info.size == info.path.stat().st_size


def test_a_batch_may_overfill_a_segment(tmp_path: Path) -> None:
    with Journal(tmp_path, segment_bytes=100) as journal:
        journal.append([b"x" * 50] * 10)
        journal.append([b"y"])
        infos = journal.segments()
    assert [(s.first_lsn, s.last_lsn) for s in infos] == [(1, 10), (11, 11)]
    assert infos[0].size == 52 + 10 * (48 + 50)


def test_group_commit_many_threads(tmp_path: Path) -> None:
    fsync = CountingFsync(delay=0.0005)
    threads, per_thread = 64, 50
    results: dict[int, list[Record]] = {}
    with Journal(tmp_path, segment_bytes=64 * 1024, fsync=fsync) as journal:
        start_calls = fsync.calls
        barrier = threading.Barrier(threads)

        def worker(t: int) -> None:
            barrier.wait()
            results[t] = [journal.append([f"{t}:{i}".encode()])[0] for i in range(per_thread)]

        pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        batch_fsyncs = fsync.calls - start_calls
    total = threads * per_thread
    assert batch_fsyncs < total
    acknowledged = sorted(r.lsn for rs in results.values() for r in rs)
    assert acknowledged == list(range(1, total + 1))
    with Journal(tmp_path) as journal:
        on_disk = list(journal.read())
    assert [r.lsn for r in on_disk] == list(range(1, total + 1))
    expected = {f"{t}:{i}".encode() for t in range(threads) for i in range(per_thread)}
    assert sorted(r.payload for r in on_disk) == sorted(expected)
    for t, records in results.items():  # each thread's own records are in its order
        assert [r.payload for r in records] == [f"{t}:{i}".encode() for i in range(per_thread)]


def test_lone_writer_is_not_delayed_by_max_wait(tmp_path: Path) -> None:
    with Journal(tmp_path, max_wait_us=200_000) as journal:
        journal.append([b"warm up"])
        started = time.perf_counter()
        journal.append([b"alone"])
        assert time.perf_counter() - started < 0.1


def test_max_wait_gathers_concurrent_submitters(tmp_path: Path) -> None:
    batches: list[int] = []
    stats = lambda n, s, b: batches.append(n)  # noqa: E731
    with Journal(tmp_path, max_wait_us=50_000, on_commit_stats=stats) as journal:
        for _ in range(3):
            futures = [journal.submit([b"a"]), journal.submit([b"b"])]
            for future in futures:
                future.result()
    assert sum(batches) == 6
    assert max(batches) >= 2


def test_max_batch_limits_records_per_commit(tmp_path: Path) -> None:
    fsync = HeldFsync()
    batches: list[int] = []
    with Journal(
        tmp_path, max_batch=4, fsync=fsync, on_commit_stats=lambda n, s, b: batches.append(n)
    ) as journal:
        fsync.hold = True
        first = journal.submit([b"first"])
        assert fsync.entered.wait(5)
        singles = [journal.submit([b"%d" % i]) for i in range(10)]
        big = journal.submit([b"big"] * 9)  # larger than max_batch: committed on its own
        fsync.release.set()
        first.result()
        lsns = [f.result()[0].lsn for f in singles]
        assert [r.lsn for r in big.result()] == list(range(12, 21))
    assert lsns == list(range(2, 12))
    assert batches == [1, 4, 4, 2, 9]


def test_on_durable_gets_flat_records_and_contexts_before_futures_resolve(tmp_path: Path) -> None:
    fsync = HeldFsync()
    seen: list[tuple[list[int], list[Any]]] = []
    futures: list[Future[list[Record]]] = []

    def on_durable(records: list[Record], contexts: list[Any]) -> None:
        assert not any(f.done() for f in futures)
        seen.append(([r.lsn for r in records], contexts))

    with Journal(tmp_path, fsync=fsync, on_durable=on_durable) as journal:
        fsync.hold = True
        held = journal.submit([b"hold"], ["h"])
        assert fsync.entered.wait(5)
        futures += [journal.submit([b"a", b"b"], ["ca", "cb"]), journal.submit([b"c"])]
        fsync.release.set()
        held.result()
        results = [f.result() for f in futures]
    assert seen == [([1], ["h"]), ([2, 3, 4], ["ca", "cb", None])]
    assert [[r.lsn for r in rs] for rs in results] == [[2, 3], [4]]


def test_a_failing_on_durable_is_logged_and_its_batch_not_acknowledged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The records are durable, but what applies them failed: the batch's futures fail
    (503), the journal stays writable, and the records are there to be applied later."""
    def on_durable(records: list[Record], contexts: list[Any]) -> None:
        if records[0].payload == b"kept":
            raise RuntimeError("index is down")

    with (
        caplog.at_level(logging.ERROR, logger="stemedb.journal"),
        Journal(tmp_path, on_durable=on_durable) as journal,
    ):
        with pytest.raises(Unavailable):
            journal.append([b"kept"])
        assert journal.read_only_reason is None
        assert [r.payload for r in journal.read()] == [b"kept"]
        assert journal.append([b"next"])[0].lsn == 2
    assert any("on_durable failed" in r.getMessage() for r in caplog.records)


def test_on_commit_stats(tmp_path: Path) -> None:
    stats: list[tuple[int, float, int]] = []
    with Journal(tmp_path, on_commit_stats=lambda *a: stats.append(a)) as journal:
        journal.append([b"abc", b"de"])
    ((count, seconds, size),) = stats
    assert count == 2 and seconds >= 0 and size == 2 * 48 + 5


def test_fsync_failure_makes_the_journal_read_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fsync = CountingFsync()
    fsync.gate = threading.Event()
    with caplog.at_level(logging.ERROR, logger="stemedb.journal"):
        journal = Journal(tmp_path, fsync=fsync)
        journal.append([b"good"])
        fsync.fail = True
        failing = journal.submit([b"lost?"])
        assert fsync.entered.wait(5)
        queued = [journal.submit([b"queued"]) for _ in range(3)]
        calls = fsync.calls
        fsync.gate.set()
        for future in [failing, *queued]:
            with pytest.raises(JournalReadOnly):
                future.result(5)
        assert journal.read_only_reason == "fsync failed: [Errno 5] Input/output error"
        with pytest.raises(JournalReadOnly) as raised:
            journal.submit([b"later"])
        assert raised.value.status == 503
        with pytest.raises(JournalReadOnly):
            journal.append([b"later"])
        journal.close()
    assert fsync.calls == calls  # never retried
    assert any("read-only" in r.getMessage() for r in caplog.records)
    with Journal(tmp_path) as reopened:  # written but never acknowledged: may survive
        assert reopened.last_lsn in (1, 2)
        assert reopened.read_only_reason is None


class FillingDisk(OsFiles):
    """The real file layer until ``full`` is set; then every write fails with ENOSPC."""

    full = False

    def write(self, fd: int, data: memoryview) -> int:
        if self.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(fd, data)


def test_write_failure_makes_the_journal_read_only(tmp_path: Path) -> None:
    files = FillingDisk()
    with Journal(tmp_path, files=files) as journal:
        journal.append([b"good"])
        files.full = True
        with pytest.raises(JournalReadOnly):
            journal.append([b"bad"])
        assert (journal.read_only_reason or "").startswith("write failed: [Errno 28]")
        assert journal.last_lsn == 1


def test_rollover_failure_makes_the_journal_read_only(tmp_path: Path) -> None:
    with Journal(tmp_path, segment_bytes=100) as journal:
        journal.append([b"x" * 100])
        (tmp_path / f"{2:020d}.wal").mkdir()  # the next segment's name is taken
        with pytest.raises(JournalReadOnly):
            journal.append([b"y"])
        assert (journal.read_only_reason or "").startswith("segment rollover failed")


def test_write_all_loops_on_short_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:3])))
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        write_all(fd, b"0123456789")
    finally:
        os.close(fd)
        monkeypatch.undo()
    assert (tmp_path / "f").read_bytes() == b"0123456789"


def test_every_fsync_of_a_rollover_is_visible(tmp_path: Path) -> None:
    kinds: list[str] = []

    def recording_fsync(fd: int) -> None:
        mode = os.fstat(fd).st_mode
        kinds.append("dir" if stat.S_ISDIR(mode) else os.readlink(f"/proc/self/fd/{fd}")[-8:])
        os.fsync(fd)

    with Journal(tmp_path / "new" / "wal", segment_bytes=60, fsync=recording_fsync) as journal:
        assert kinds == ["dir", "0001.wal", "dir"]  # parent entry, first header, its entry
        journal.append([b"a" * 20])
        journal.append([b"b"])
    assert kinds[3:] == ["0001.wal", "0002.wal", "dir", "0002.wal"]


def test_close_drains_then_refuses(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    futures = [journal.submit([b"%d" % i]) for i in range(200)]
    journal.close()
    assert all(f.done() for f in futures)
    assert [f.result()[0].lsn for f in futures] == list(range(1, 201))
    with pytest.raises(JournalError):
        journal.submit([b"late"])
    journal.close()


def test_close_from_on_durable_does_not_deadlock(tmp_path: Path) -> None:
    holder: list[Journal] = []
    journal = Journal(tmp_path, on_durable=lambda records, contexts: holder[0].close())
    holder.append(journal)
    assert journal.append([b"x"])[0].lsn == 1
    journal.close()
    with pytest.raises(JournalError):
        journal.submit([b"y"])


def test_cancelled_request_is_not_written(tmp_path: Path) -> None:
    fsync = HeldFsync()
    with Journal(tmp_path, fsync=fsync) as journal:
        fsync.hold = True
        held = journal.submit([b"held"])
        assert fsync.entered.wait(5)
        cancelled = journal.submit([b"never"])
        assert cancelled.cancel()
        kept = journal.submit([b"kept"])
        fsync.release.set()
        assert held.result()[0].lsn == 1
        assert kept.result()[0].lsn == 2
        assert [r.payload for r in journal.read()] == [b"held", b"kept"]


def test_asyncio_callers(tmp_path: Path) -> None:
    async def main(journal: Journal) -> list[list[Record]]:
        calls = [asyncio.wrap_future(journal.submit([b"%d" % i])) for i in range(20)]
        return await asyncio.gather(*calls)

    with Journal(tmp_path) as journal:
        results = asyncio.run(main(journal))
    assert sorted(rs[0].lsn for rs in results) == list(range(1, 21))


def test_submit_contract(tmp_path: Path) -> None:
    with Journal(tmp_path) as journal:
        assert journal.submit([]).result() == []
        with pytest.raises(ValueError):
            journal.submit([b"a"], ["one", "two"])
        with pytest.raises(TypeError):
            journal.submit(["text"])  # type: ignore[list-item]
        buffer = bytearray(b"mutable")
        future = journal.submit([buffer, memoryview(b"view")])
        buffer[:] = b"changed"
        assert [r.payload for r in future.result()] == [b"mutable", b"view"]
    with pytest.raises(ValueError):
        Journal(tmp_path, max_batch=0)
