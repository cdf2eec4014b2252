"""A local mirror of a cluster's journal, for the ops commands that work on files.

Backups, WAL archival and DR drills read journal segment files. In cluster mode the
journal lives in PostgreSQL, so ``--database-url`` first brings a local mirror up to date
(``mirror_journal``): the journal directory of a data directory, appended with exactly
the database's payloads, which gives exactly its LSNs and chain hashes (checked for every
record; the mirror's last record must match the database's before anything is added).
Segments roll at the default segment size, so two hosts mirroring one database write
byte-identical segment files, and an archive filled from either is the same.

The mirror is then an ordinary (stopped) data directory: a backup taken from it has the
same format as one taken from an embedded server, and restores into either backend.
"""

from __future__ import annotations

from pathlib import Path

from ..backends import open_location
from ..datadir import DataDirLock, journal_dir
from ..errors import OpsError
from ..journal import Journal, Record
from .progress import Meter, Progress

BATCH = 1000


def mirror_journal(database_url: str, data_dir: Path, progress: Progress | None = None
                   ) -> int:
    """Append the records the mirror in ``data_dir`` lacks; returns the last LSN."""
    lock = DataDirLock(Path(data_dir))
    try:
        store = open_location(database_url)
        try:
            with Journal(journal_dir(data_dir)) as journal:
                _check_same_history(journal, store.records(journal.last_lsn,
                                                           journal.last_lsn))
                meter = Meter(progress, "mirroring journal", None, "records")
                batch: list[Record] = []
                for r in store.records(journal.last_lsn + 1):
                    batch.append(r)
                    if len(batch) >= BATCH:
                        _append(journal, batch, meter)
                if batch:
                    _append(journal, batch, meter)
                return journal.last_lsn
        finally:
            store.close()
    finally:
        lock.release()


def _check_same_history(journal: Journal, theirs: object) -> None:
    """The mirror's last record must be the database's record at that LSN."""
    if journal.last_lsn == 0:
        return
    for r in theirs:  # type: ignore[attr-defined]
        if r.hash == journal.last_hash:
            return
        break
    raise OpsError(f"the mirror's journal (up to LSN {journal.last_lsn}) is not a prefix of "
                   "the database's", hint="point --data-dir at an empty directory, or at "
                   "the mirror of this database")


def _append(journal: Journal, batch: list[Record], meter: Meter) -> None:
    got = journal.append([r.payload for r in batch])
    for want, have in zip(batch, got, strict=True):
        if (want.lsn, want.hash) != (have.lsn, have.hash):
            raise OpsError(f"the mirror gave LSN {have.lsn} another chain hash than the "
                           f"database's LSN {want.lsn}")
    meter.advance(len(batch))
    batch.clear()
