"""``stemedb reindex``: rebuild the index from the journal into a new file, then swap."""

from __future__ import annotations

import os
from pathlib import Path

from rich.progress import Progress

from ..datadir import INDEX_FILE, JOURNAL_DIR, DataDirLock, remove_index
from ..index import IndexStore, entries_from
from ..journal import Journal
from .files import fsync_path


def rebuild_index(journal: Journal, target: Path, progress: bool = False,
                  digest: bool = False) -> tuple[int, str | None]:
    """Build a fresh index at ``target`` from every journal record: (records, the new
    index's digest when asked for, else None)."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    store = IndexStore(target, bulk=True)
    try:
        last = journal.last_lsn
        if progress:
            with Progress(transient=True) as bar:
                task = bar.add_task("replaying journal", total=last or 1)

                def tick(entries):  # type: ignore[no-untyped-def]
                    for e in entries:
                        yield e
                        if e.lsn % 1000 == 0:
                            bar.update(task, completed=e.lsn)

                n = store.rebuild_from(tick(entries_from(journal.read(1))), batch=10_000)
        else:
            n = store.rebuild_from(entries_from(journal.read(1)), batch=10_000)
        return n, store.finish_bulk(digest=digest)
    finally:
        store.close()


def reindex(data_dir: Path, progress: bool = False, digest: bool = False
            ) -> tuple[int, str | None]:
    """Rebuild ``<data_dir>``'s index from its journal into a new file, then swap it in:
    (records, the new index's digest when asked for)."""
    lock = DataDirLock(data_dir)
    try:
        journal = Journal(data_dir / JOURNAL_DIR)
        try:
            tmp = data_dir / (INDEX_FILE + ".rebuild")
            n, found = rebuild_index(journal, tmp, progress, digest)
        finally:
            journal.close()
        remove_index(data_dir)
        os.replace(tmp, data_dir / INDEX_FILE)
        fsync_path(data_dir)
        return n, found
    finally:
        lock.release()
