"""Fill a data directory fast: valid signed assertions appended straight to the journal.

The records are exactly what the server journals for ``POST /v1/assert`` (a signed body,
its signature, the recorded time), so ``stemedb verify`` accepts them and the index is
built from them - by ``stemedb reindex`` or by the server catching up at start. Only the
write path's checks are skipped; the server must not be running on the directory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from stemedb import records
from stemedb.datadir import JOURNAL_DIR, DataDirLock
from stemedb.journal import Journal

from .signer import Signer

APPEND_BATCH = 5000  # records per journal append (one write + one fsync)


def journal_records(data_dir: Path) -> int:
    """How many records the data directory's journal holds (opens and recovers it)."""
    if not (data_dir / JOURNAL_DIR).exists():
        return 0
    lock = DataDirLock(data_dir)
    try:
        with Journal(data_dir / JOURNAL_DIR) as j:
            return j.last_lsn
    finally:
        lock.release()


def fill(data_dir: Path, signer: Signer, count: int,
         progress: Callable[[int, float], None] | None = None) -> float:
    """Appends ``count`` signed assertions to the journal; returns records/s."""
    lock = DataDirLock(data_dir)
    started = time.perf_counter()
    last_report = started
    try:
        with Journal(data_dir / JOURNAL_DIR) as j:
            pending: list[bytes] = []
            done = 0
            for body, sig in signer.iter_signed(count):
                pending.append(records.SignedWrite(records.ASSERT, body, sig,
                                                   records.now_us()).encode())
                if len(pending) >= APPEND_BATCH:
                    j.append(pending)
                    done += len(pending)
                    pending = []
                    now = time.perf_counter()
                    if progress is not None and now - last_report >= 10:
                        last_report = now
                        progress(done, now - started)
            if pending:
                j.append(pending)
    finally:
        lock.release()
    return count / (time.perf_counter() - started)
