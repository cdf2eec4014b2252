"""``stemedb reindex``: rebuild the index from the journal into a new file, then swap."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..datadir import JOURNAL_DIR, DataDirLock, rebuild_path, replace_index
from ..index import Entry, build_index, entries_from
from ..journal import Journal
from .progress import Meter, Progress


def rebuild_index(journal: Journal, target: Path, progress: Progress | None = None,
                  digest: bool = False) -> tuple[int, str | None]:
    """Build a fresh index at ``target`` from every journal record: (records, the new
    index's digest when asked for, else None)."""
    entries = entries_from(journal.read(1))
    if progress is not None:
        entries = _metered(entries, Meter(progress, "replaying journal", journal.last_lsn or 1,
                                          "records"))
    return build_index(entries, target, digest=digest)


def _metered(entries: Iterator[Entry], meter: Meter) -> Iterator[Entry]:
    # Every 1000th record: a report per record would cost more than the replay.
    for e in entries:
        yield e
        if e.lsn % 1000 == 0:
            meter.update(e.lsn)


def reindex(data_dir: Path, progress: Progress | None = None, digest: bool = False
            ) -> tuple[int, str | None]:
    """Rebuild ``<data_dir>``'s index from its journal into a new file, then swap it in:
    (records, the new index's digest when asked for)."""
    lock = DataDirLock(data_dir)
    try:
        journal = Journal(data_dir / JOURNAL_DIR)
        try:
            tmp = rebuild_path(data_dir)
            n, found = rebuild_index(journal, tmp, progress, digest)
        finally:
            journal.close()
        replace_index(data_dir, tmp)
        return n, found
    finally:
        lock.release()
