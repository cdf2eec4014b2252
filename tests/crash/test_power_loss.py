"""Simulated power loss under the journal: nothing acknowledged is lost, and the journal
opens or refuses exactly as docs/journal-format.md's recovery rules say.

Each seed draws a workload (segment size, group-commit limit, single and grouped
requests of 0 B to 9 KiB) and runs it on tests/crash/powerloss.py's file layer twice: once
to count its calls, then with the power going out before a call drawn at random (or
after the last). What the disk would hold is written to a fresh directory; for some
seeds the power goes out again during recovery there. Then the journal is opened as the
server opens it.

``STEMEDB_CRASH_POINTS`` sets how many seeds run (200; ``make soak``: 2,000);
``STEMEDB_CRASH_SEED=N`` runs seed N alone, as a failure's message says.
"""

from __future__ import annotations

import os
import random
import shutil
from concurrent.futures import Future, wait
from dataclasses import dataclass
from pathlib import Path

import pytest

from stemedb.errors import JournalCorrupt, JournalError, JournalReadOnly
from stemedb.journal import Journal, Record, chain_hash, list_segments, scan, segment_name
from stemedb.journal.record import ZERO_HASH
from tests.crash.powerloss import Image, PowerLossFiles

pytestmark = pytest.mark.crash

POINTS = int(os.environ.get("STEMEDB_CRASH_POINTS", "200"))
ONE_SEED = os.environ.get("STEMEDB_CRASH_SEED")
SEEDS = [int(ONE_SEED)] if ONE_SEED else list(range(POINTS))


@dataclass(frozen=True)
class Plan:
    segment_bytes: int
    max_batch: int
    steps: list[list[list[bytes]]]  # step -> requests -> payloads; 2+ requests: one group
    crash_in_recovery: bool

    @classmethod
    def draw(cls, seed: int) -> Plan:
        rng = random.Random(seed)
        steps = []
        for _ in range(rng.randint(1, 12)):
            requests = rng.choice((1, 1, 2, 3, 5))
            steps.append([[_payload(rng) for _ in range(rng.choice((1, 1, 2, 4)))]
                          for _ in range(requests)])
        return cls(segment_bytes=rng.choice((120, 400, 1500, 9000, 1 << 20)),
                   max_batch=rng.choice((1, 3, 8, 1024)), steps=steps,
                   crash_in_recovery=rng.random() < 0.4)


def _payload(rng: random.Random) -> bytes:
    size = rng.choice((0, rng.randint(1, 60), rng.randint(100, 900), rng.randint(2000, 9000)))
    return rng.randbytes(size)


@dataclass
class Run:
    files: PowerLossFiles
    payloads: list[bytes]  # in submission order: record n holds payloads[n - 1]
    futures: list[Future[list[Record]]]

    def acknowledged(self) -> list[Record]:
        done = [f for f in self.futures if f.done() and f.exception() is None]
        return sorted((r for f in done for r in f.result()), key=lambda r: r.lsn)


def run_plan(plan: Plan, root: Path, files: PowerLossFiles) -> Run:
    """The plan's steps, one at a time; a group's requests are queued while the writer
    holds in the fsync before them, so they commit together, the same way every run."""
    run = Run(files, [], [])
    try:
        journal = Journal(root / "journal", segment_bytes=plan.segment_bytes,
                          max_batch=plan.max_batch, files=files)
    except JournalError:
        assert files.crashed, "the journal failed to open with the power on"
        return run
    try:
        for step in plan.steps:
            if files.crashed:
                break
            if len(step) > 1:
                files.hold_next_fsync()
            pending = [_submit(journal, run, step[0])]
            if len(step) > 1:
                files.wait_until_held()
                pending += [_submit(journal, run, request) for request in step[1:]]
                files.release()
            not_done = wait([f for f in pending if f is not None], timeout=30).not_done
            assert not not_done, "a request was never settled"
    finally:
        files.release()
        journal.close()
    return run


def _submit(journal: Journal, run: Run, payloads: list[bytes]) -> Future[list[Record]] | None:
    try:
        future = journal.submit(payloads)
    except JournalReadOnly:  # the power is out
        return None
    run.payloads += payloads
    run.futures.append(future)
    return future


def power_loss(plan: Plan, seed: int, work: Path) -> tuple[Run, Image]:
    """Counts the plan's calls, then runs it again losing power at a random one."""
    counted = PowerLossFiles(_fresh(work / "count"), None, random.Random(seed))
    run_plan(plan, work / "count", counted)
    rng = random.Random(f"{seed}:crash")
    files = PowerLossFiles(_fresh(work / "crash"), rng.randrange(len(counted.ops) + 1), rng)
    run = run_plan(plan, work / "crash", files)
    assert files.ops == counted.ops[: len(files.ops)], "the plan's calls are not repeatable"
    return run, files.power_off()


def power_loss_in_recovery(seed: int, image_dir: Path, work: Path) -> tuple[Path, Image] | None:
    """Opens the journal on a copy to count recovery's calls, then again on the image
    losing power at one of them; None when recovery makes no call (or refuses)."""
    shutil.copytree(image_dir, work / "recount")
    counted = PowerLossFiles(work / "recount", None, random.Random(seed))
    try:
        Journal(work / "recount" / "journal", files=counted).close()
    except JournalCorrupt:
        return None
    if not counted.ops:
        return None
    rng = random.Random(f"{seed}:recovery")
    files = PowerLossFiles(image_dir, rng.randrange(len(counted.ops)), rng)
    with pytest.raises(JournalError):
        Journal(image_dir / "journal", files=files).close()
    image = files.power_off()
    image.write_to(work / "after-recovery")
    return work / "after-recovery", image


def _fresh(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


@pytest.mark.parametrize("seed", SEEDS)
def test_power_loss_keeps_every_acknowledged_write(seed: int, tmp_path: Path) -> None:
    plan = Plan.draw(seed)
    run, image = power_loss(plan, seed, tmp_path)
    images = [image]
    disk = tmp_path / "after"
    image.write_to(disk)
    if plan.crash_in_recovery:
        again = power_loss_in_recovery(seed, disk, tmp_path)
        if again is not None:
            disk, second = again
            images.append(second)
    acked = run.acknowledged()
    crash = run.files.ops[-1] if run.files.ops else None
    why = (f"seed {seed} (rerun: STEMEDB_CRASH_SEED={seed} pytest {__file__}); power lost "
           f"after {crash} in mode {'/'.join(i.mode for i in images)}, "
           f"{len(acked)} of {len(run.payloads)} records acknowledged")
    assert [r.lsn for r in acked] == list(range(1, len(acked) + 1)), why
    assert all(r.payload == run.payloads[r.lsn - 1] for r in acked), why
    check_recovery(disk / "journal", images[-1], run.payloads, len(acked), why)


def check_recovery(directory: Path, image: Image, payloads: list[bytes], acked: int,
                   why: str) -> None:
    """Opening keeps records 1..acked intact, in order, chained; or, only where a torn
    write reached the disk out of order, refuses as the rules say."""
    try:
        journal = Journal(directory)
    except JournalCorrupt as refused:
        check_refusal(refused, directory, image, payloads, acked, why)
        return
    with journal:
        records = list(journal.read())
        check_chain(records, payloads, why)
        assert acked <= len(records) <= len(payloads), why
        assert journal.last_lsn == len(records), why
        if journal.recovery.broken_copy is not None:
            check_nothing_cut_was_lost(directory, image, Path(journal.recovery.broken_copy), why)
        journal.append([b"after the power loss"])
    assert [r.lsn for r in scan(directory)] == list(range(1, len(records) + 2)), why


def check_chain(records: list[Record], payloads: list[bytes], why: str) -> None:
    prev = ZERO_HASH
    for lsn, record in enumerate(records, start=1):
        assert record.lsn == lsn, why
        assert record.payload == payloads[lsn - 1], f"record {lsn} differs; {why}"
        assert record.hash == chain_hash(prev, lsn, record.payload), why
        prev = record.hash


def check_nothing_cut_was_lost(directory: Path, image: Image, broken: Path,
                               why: str) -> None:
    """A cut tail's ``.broken`` copy and what is left of the segment, or a set-aside
    segment, are the bytes the disk held."""
    segment = broken.name.split(".broken")[0]
    before = image.entries.get(f"journal/{segment}")
    assert before is not None, why
    kept = broken.read_bytes()
    if kept != before:  # a tail was cut, not the whole file set aside
        now = (directory / segment).read_bytes()
        assert now + kept == before, f"recovery lost cut bytes; {why}"


def check_refusal(refused: JournalCorrupt, directory: Path, image: Image,
                  payloads: list[bytes], acked: int, why: str) -> None:
    """Refusing is right only for damage in bytes never fsynced, with a good frame after
    it: the recovery rules cannot tell that from mid-log damage. Records 1..acked are
    still there for the operator."""
    why = f"refused ({refused}); {why}"
    last = directory / segment_name(list_segments(directory)[-1])
    assert image.mode == "pages" and image.torn == f"journal/{last.name}", why
    assert "a good record follows" in refused.what, why
    assert Path(refused.file) == last, why
    assert refused.offset >= image.durable_size[image.torn], why
    check_chain(list(scan(directory, to_lsn=acked)) if acked else [], payloads, why)
