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
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from . import records
from .datadir import (
    DataDirLock,
    index_path,
    journal_dir,
    rebuild_path,
    remove_index,
    replace_index,
)
from .errors import Unavailable
from .index import Entry, IndexStore, build_index, entries_from
from .index.reads import IndexReads
from .journal import Journal, Record, RecoveryReport
from .settings import JournalSettings

log = logging.getLogger("stemedb.store")

OnCommit = Callable[[int, float, int], None]  # records, fsync seconds, bytes
HEAL_EVERY_S = 1.0  # how often a behind index tries to catch up with the journal
# The index (rows, secondary and full-text indexes) and its WAL take up to this many
# bytes per journal byte before a checkpoint (docs/operations/sizing.md: ~3.3 for the
# rows, twice that while the WAL holds them).
INDEX_BYTES_PER_JOURNAL_BYTE = 7
RESUME_MARGIN_BYTES = 4 << 20  # free above min_free_bytes before writes are taken again


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
        self._apply_lock = threading.Lock()
        self._healer: threading.Thread | None = None
        self._closing = threading.Event()
        self._disk_checked = 0.0
        self._disk_low: str | None = None
        try:
            c = self.config
            self.journal = Journal(journal_dir(self.data_dir), segment_bytes=c.segment_bytes,
                                   max_batch=c.group_commit_max_batch,
                                   max_wait_us=c.group_commit_max_wait_us, fsync=fsync,
                                   on_durable=self._apply, on_commit_stats=on_commit,
                                   before_commit=self._before_commit)
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
        mismatch = applied > last or bool(
            applied and not self._hash_matches(applied, applied_hash))
        if mismatch:
            log.warning("index does not match the journal (index at LSN %d, journal at %d); "
                        "rebuilding it from the journal", applied, last)
        if (mismatch or applied == 0) and last > 0:
            # From nothing (a new schema version, a lost or mismatched index): built in
            # bulk into a file of its own and swapped in (the old one with it), like
            # ``stemedb reindex``: about twice as fast as applying every record to the
            # live index.
            self.index.close()
            built = rebuild_path(self.data_dir)
            n, _ = build_index(entries_from(self.journal.read(1)), built)
            replace_index(self.data_dir, built)
            self.index = IndexStore(index_path(self.data_dir))
            log.info("index rebuilt from the journal: %d records (LSN %d)", n, last)
        elif mismatch:  # ahead of an empty journal: nothing to rebuild from
            self.index.close()
            remove_index(self.data_dir)
            self.index = IndexStore(index_path(self.data_dir))
        elif applied < last:
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
        resolve). If the index is behind (an earlier batch failed to apply), it first
        catches up from the journal. A failure fails the batch's futures with 503 (the
        records are durable: a retry is answered once the index has caught up), refuses
        appends (``readiness``) and starts the healer, which catches the index up from
        the journal once the cause clears (disk space freed, …): no restart."""
        with self._apply_lock:
            try:
                if self._apply_error is not None:
                    self._catch_up_live(recs[0].lsn - 1)
                self.index.apply([_entry(r, c) for r, c in zip(recs, contexts, strict=True)])
            except Exception as e:
                self._fell_behind(recs[0].lsn, e)
                raise Unavailable(f"records {recs[0].lsn}..{recs[-1].lsn} are durable but "
                                  f"not yet readable: {self._apply_error}") from None
            self._apply_error = None

    def _catch_up_live(self, upto: int) -> None:
        """Applies the journal's records after the index's applied LSN, up to ``upto``
        (caller holds ``_apply_lock``)."""
        applied = self.index.applied()[0]
        if applied < upto:
            self.index.rebuild_from(entries_from(self.journal.read(applied + 1, upto)))

    def _fell_behind(self, lsn: int, e: Exception) -> None:
        self._apply_error = f"index apply failed at LSN {lsn}: {type(e).__name__}: {e}"
        log.error("index apply failed; writes are refused until it has caught up with the "
                  "journal: %s", self._apply_error, exc_info=e)
        if self._healer is None or not self._healer.is_alive():
            self._healer = threading.Thread(target=self._heal, name="stemedb-index-heal",
                                            daemon=True)
            self._healer.start()

    def _heal(self) -> None:
        """Tries to catch the index up with the whole journal every ``HEAL_EVERY_S``
        until it succeeds (or the store closes)."""
        while not self._closing.wait(HEAL_EVERY_S):
            with self._apply_lock:
                if self._apply_error is None:
                    return
                try:
                    self._catch_up_live(self.journal.last_lsn)
                except Exception as e:  # still failing: the reason may have changed
                    self._apply_error = (f"index apply failed at LSN "
                                         f"{self.index.applied()[0] + 1}: {type(e).__name__}: {e}")
                    continue
                self._apply_error = None
                log.warning("index caught up with the journal again (LSN %d); accepting "
                            "writes", self.journal.last_lsn)
                return

    def _before_commit(self, nbytes: int) -> None:
        """Before each batch is written (commit thread): refuse it while the index is
        behind, or when writing it, and the index rows and index WAL it brings, would
        leave less than ``min_free_bytes`` free, so writes stop there, not at ENOSPC."""
        if self._apply_error is not None:
            raise Unavailable(self._apply_error)
        free = shutil.disk_usage(self.data_dir).free
        after = free - nbytes * (1 + INDEX_BYTES_PER_JOURNAL_BYTE)
        floor = self.config.min_free_bytes
        if after < floor:
            self._disk_low = (f"disk low: {free} bytes free, a batch of {nbytes} bytes would "
                              f"leave less than min_free_bytes={floor}")
            self._disk_checked = time.monotonic()
            raise Unavailable(self._disk_low)

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
            if free < floor:
                self._disk_low = f"disk low: {free} bytes free, below min_free_bytes={floor}"
            elif self._disk_low is not None and free >= floor + RESUME_MARGIN_BYTES:
                self._disk_low = None  # resumes with some room, not at the very edge
        return self._disk_low

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.data_dir).free

    def digest(self) -> str:
        return self.index.digest()

    def close(self) -> None:
        self._closing.set()
        if self._healer is not None:
            self._healer.join()
        self.journal.close()
        self.index.close()
        self._lock.release()


def _entry(r: Record, context: Any) -> Entry:
    """The entry to apply for a durable record. A write from the live path hands over
    what it already has (its payload as a dict, its parsed body and id), so nothing is
    decoded, parsed or hashed again; anything else is decoded from the payload."""
    data = getattr(context, "record", None)
    if data is None:
        return Entry(r.lsn, r.hash, records.decode(r.payload), pos=r.offset)
    return Entry(r.lsn, r.hash, data, context.parsed, context.id, r.offset)
