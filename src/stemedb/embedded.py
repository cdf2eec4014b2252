"""The embedded store: the file journal and the SQLite index in one data directory.

The default backend behind ``store.Store``. It owns the data directory (its LOCK), the
journal (``journal/``: segmented, hash-chained, group commit) and the index
(``index/``). The journal's commit thread applies every durable batch to the index
before the batch's futures resolve, so a caller is answered only after its records are
durable and applied (the contract in ``store.py``).

At open, the index is caught up from the journal; an index that does not match it (ahead
of the journal, or a different chain hash at its applied LSN) is rebuilt from scratch.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from . import records
from .datadir import DataDirLock, index_path, journal_dir, remove_index
from .index import Entry, IndexStore, entries_from
from .index.reads import IndexReads
from .journal import Journal, Record, RecoveryReport
from .settings import JournalSettings

log = logging.getLogger("stemedb.store")

OnCommit = Callable[[int, float, int], None]  # records, fsync seconds, bytes


class EmbeddedStore:
    """``store.Store`` over a data directory. ``on_commit`` is called on the commit
    thread after every group commit; ``fsync`` is injectable for fault tests."""

    def __init__(self, data_dir: Path, config: JournalSettings | None = None, *,
                 fsync: Callable[[int], None] = os.fsync, on_commit: OnCommit | None = None
                 ) -> None:
        self.data_dir = Path(data_dir)
        self.config = config if config is not None else JournalSettings()
        self._lock = DataDirLock(self.data_dir)
        self._apply_error: str | None = None
        self._disk_checked = 0.0
        self._disk_low: str | None = None
        try:
            c = self.config
            self.journal = Journal(journal_dir(self.data_dir), segment_bytes=c.segment_bytes,
                                   max_batch=c.group_commit_max_batch,
                                   max_wait_us=c.group_commit_max_wait_us, fsync=fsync,
                                   on_durable=self._apply, on_commit_stats=on_commit)
            try:
                self.index = IndexStore(index_path(self.data_dir))
                self._catch_up()
                self.index.start_checkpointer()
            except BaseException:
                self.journal.close()
                raise
        except BaseException:
            self._lock.release()
            raise
        self.reads = IndexReads(self.index)
        rec = self.journal.recovery
        if rec.truncated_bytes:
            log.warning("cut a torn tail of %d bytes off the journal; the cut bytes are kept "
                        "in %s", rec.truncated_bytes, rec.broken_copy)

    # -- opening ------------------------------------------------------------------------

    def _catch_up(self) -> None:
        applied, applied_hash = self.index.applied()
        last = self.journal.last_lsn
        if applied > last or (applied and not self._hash_matches(applied, applied_hash)):
            log.warning("index does not match the journal (index at LSN %d, journal at %d); "
                        "rebuilding it from the journal", applied, last)
            self.index.close()
            remove_index(self.data_dir)
            self.index = IndexStore(index_path(self.data_dir))
            applied = 0
        if applied < last:
            n = self.index.rebuild_from(entries_from(self.journal.read(applied + 1)))
            log.info("index caught up with the journal: %d records applied (LSN %d)", n, last)

    def _hash_matches(self, lsn: int, expected: bytes) -> bool:
        for r in self.journal.read(lsn, lsn):
            return r.hash == expected
        return False

    @property
    def recovery(self) -> RecoveryReport:
        """What opening the journal found (a torn tail cut off, …)."""
        return self.journal.recovery

    # -- the commit thread ------------------------------------------------------------------

    def _apply(self, recs: list[Record], contexts: list[Any]) -> None:
        """Applies a durable batch to the index (commit thread, before its futures
        resolve). A failure fails the batch's futures; appends stop until a restart
        catches the index up from the journal."""
        entries = [_entry(r, c) for r, c in zip(recs, contexts, strict=True)]
        try:
            self.index.apply(entries)
        except Exception as e:  # the records are durable; the index is behind until restart
            self._apply_error = f"index apply failed at LSN {entries[0].lsn}: {type(e).__name__}"
            log.exception("index apply failed; writes stop until restart catches up")
            raise

    # -- store.Store ------------------------------------------------------------------------

    def submit(self, payloads: Sequence[bytes], contexts: Sequence[Any] | None = None
               ) -> concurrent.futures.Future[list[Record]]:
        return self.journal.submit(payloads, contexts)

    @property
    def last_lsn(self) -> int:
        return self.journal.last_lsn

    @property
    def read_only_reason(self) -> str | None:
        return self.journal.read_only_reason

    def records(self, from_lsn: int = 1, to_lsn: int | None = None) -> Iterator[Record]:
        return self.journal.read(from_lsn, to_lsn)

    def readiness(self) -> tuple[bool, str]:
        if self.journal.read_only_reason:
            return False, f"journal is read-only: {self.journal.read_only_reason}"
        if self._apply_error:
            return False, self._apply_error
        low = self._check_disk()
        if low:
            return False, low
        return True, "ready"

    def _check_disk(self) -> str | None:
        """Whether free space is below ``min_free_bytes`` (looked at once a second)."""
        now = time.monotonic()
        if now - self._disk_checked >= 1.0:
            self._disk_checked = now
            free = shutil.disk_usage(self.data_dir).free
            floor = self.config.min_free_bytes
            self._disk_low = (f"disk low: {free} bytes free, below min_free_bytes={floor}"
                              if free < floor else None)
        return self._disk_low

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.data_dir).free

    def digest(self) -> str:
        return self.index.digest()

    def close(self) -> None:
        self.journal.close()
        self.index.close()
        self._lock.release()


def _entry(r: Record, context: Any) -> Entry:
    """The entry to apply for a durable record. A write from the live path hands over
    what it already has (its payload as a dict, its parsed body and id), so nothing is
    decoded, parsed or hashed again; anything else is decoded from the payload."""
    data = getattr(context, "record", None)
    if data is None:
        return Entry(r.lsn, r.hash, records.decode(r.payload))
    return Entry(r.lsn, r.hash, data, context.parsed, context.id)
