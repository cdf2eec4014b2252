"""Backup, restore and DR-drill benchmarks.

``run()``: ~100k signed assertions in a data directory (journal and index written as
the server writes them); ``backup.rate`` is records per second into a full backup (copy,
check every record, catch the index snapshot up, digest), ``restore.rate`` records per
second replayed by a restore that rebuilds the index from the journal.

``run_scale()``: ``drill.rto_s_1m``, the RTO a DR drill measures on one million
assertions (restore of the latest backup plus archived WAL, then a server started on it
until ``/readyz`` answers 200).

Both use a local directory target, so they measure StemeDB, not a network. Scratch
space is under ``$TMPDIR`` and removed at the end.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from stemedb import records
from stemedb.datadir import INDEX_FILE, JOURNAL_DIR
from stemedb.index import IndexStore, entries_from
from stemedb.journal import Journal
from stemedb.ops.archive import archive_once
from stemedb.ops.backup import create_backup
from stemedb.ops.drill import run_drill
from stemedb.ops.restore import restore
from stemedb.ops.targets import open_target

from .context import log
from .signer import Signer

RECORDS = 100_000
SCALE_RECORDS = 1_000_000
SEGMENT_BYTES = 64 * 1024 * 1024
BATCH = 1000


def build_data_dir(data_dir: Path, n: int, segment_bytes: int = SEGMENT_BYTES) -> None:
    """n signed assertions journaled in group-commit-sized batches, then indexed."""
    signer = Signer()
    at = time.time_ns() // 1000 - n * 1000
    try:
        with Journal(data_dir / JOURNAL_DIR, segment_bytes=segment_bytes) as journal:
            batch: list[bytes] = []
            for body, sig in signer.iter_signed(n):
                at += 1000
                batch.append(records.SignedWrite(records.ASSERT, body, sig, at).encode())
                if len(batch) == BATCH:
                    journal.append(batch)
                    batch = []
            if batch:
                journal.append(batch)
            store = IndexStore(data_dir / INDEX_FILE)
            try:
                store.rebuild_from(entries_from(journal.read(1)), batch=5000)
            finally:
                store.close()
    finally:
        signer.close()


def run() -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="stemedb-ops-bench-"))
    try:
        data = work / "data"
        started = time.perf_counter()
        build_data_dir(data, RECORDS)
        log(f"  built {RECORDS:,} records in {time.perf_counter() - started:.1f} s")
        target = open_target(str(work / "target"))
        started = time.perf_counter()
        manifest = create_backup(data, target)
        backup_s = time.perf_counter() - started
        log(
            f"  backup: {manifest.records:,} records, {manifest.size / 1e6:.0f} MB "
            f"in {backup_s:.2f} s"
        )
        started = time.perf_counter()
        # one record short of the backup's end: the index is rebuilt from the journal
        report = restore(target, work / "restored", to_lsn=manifest.last_lsn - 1)
        restore_s = time.perf_counter() - started
        log(f"  restore: {report.replayed:,} records replayed in {restore_s:.2f} s")
        return {
            "backup.rate": round(manifest.records / backup_s, 1),
            "restore.rate": round(report.replayed / restore_s, 1),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_scale() -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="stemedb-ops-bench-scale-"))
    try:
        data = work / "data"
        started = time.perf_counter()
        build_data_dir(data, SCALE_RECORDS)
        log(f"  built {SCALE_RECORDS:,} records in {time.perf_counter() - started:.1f} s")
        target = open_target(str(work / "target"))
        started = time.perf_counter()
        manifest = create_backup(data, target)
        log(f"  backup: {manifest.size / 1e6:.0f} MB in {time.perf_counter() - started:.1f} s")
        archive_once(data, target)
        report = run_drill(target, scratch_dir=work, sample=100)
        if not report.ok:
            raise RuntimeError(f"DR drill failed: {report.checks}")
        assert report.rto_seconds is not None
        log(
            f"  drill: RTO {report.rto_seconds:.1f} s (restore {report.restore_seconds} s, "
            f"start {report.startup_seconds} s)"
        )
        return {
            "drill.rto_s_1m": round(report.rto_seconds, 2),
            "drill.restore_s_1m": round(report.restore_seconds or 0.0, 2),
            "drill.startup_s_1m": round(report.startup_seconds or 0.0, 2),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    import sys

    print(run_scale() if "--scale" in sys.argv else run())
