"""The embedded data directory as a noun: its layout, its lock, and what can be read
from it without opening it for writing.

Layout::

    <data_dir>/LOCK                 flock'ed by the one process that owns the directory
    <data_dir>/journal/*.wal        the journal (the truth; format in journal/)
    <data_dir>/index.sqlite3[-wal]  the index (derived; rebuilt from the journal at will)
    <data_dir>/admin.token          the generated admin token (mode 0600), if any

The read-only helpers (``is_live``, ``read_applied``, ``durable_lsn``) are what the
ops commands use on a directory a server may be serving: they never take the lock and
never write. (``read_applied`` is the index's own, re-exported here.)
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .errors import JournalError, Unavailable
from .index.store import INDEX_SUFFIXES, JOURNAL_DIR, read_applied
from .journal import list_segments, scan

INDEX_FILE = "index.sqlite3"
LOCK_FILE = "LOCK"

__all__ = [
    "INDEX_FILE", "JOURNAL_DIR", "LOCK_FILE", "DataDirLock", "durable_lsn", "fsync_path",
    "index_files", "index_path", "is_live", "journal_dir", "read_applied", "rebuild_path",
    "remove_index", "replace_index", "segment_files",
]


class DataDirLock:
    """An exclusive flock on <data_dir>/LOCK: one process owns a data directory."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / LOCK_FILE
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise Unavailable(
                f"data directory {data_dir} is in use by another StemeDB process",
                hint="stop the server (systemctl stop stemedb-api) before running this command",
            ) from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())

    def release(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1


def journal_dir(data_dir: Path) -> Path:
    return Path(data_dir) / JOURNAL_DIR


def index_path(data_dir: Path) -> Path:
    return Path(data_dir) / INDEX_FILE


def index_files(data_dir: Path) -> list[Path]:
    """The index file and its WAL and shared-memory files, those that exist."""
    base = index_path(data_dir)
    return [p for p in (Path(str(base) + s) for s in INDEX_SUFFIXES) if p.exists()]


def remove_index(data_dir: Path) -> None:
    """Delete the index (and its WAL files): it is rebuilt from the journal."""
    for p in index_files(data_dir):
        p.unlink()


def rebuild_path(data_dir: Path) -> Path:
    """Where a new index is built before ``replace_index`` swaps it in."""
    return Path(data_dir) / (INDEX_FILE + ".rebuild")


def replace_index(data_dir: Path, built: Path) -> None:
    """Swap a fully built index file in for the data directory's index, durably."""
    remove_index(data_dir)
    os.replace(built, index_path(data_dir))
    fsync_path(data_dir)


def fsync_path(path: Path) -> None:
    """Makes a file's data, or a directory's entries, durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def segment_files(journal: Path) -> list[int]:
    """First LSNs of the segment files in a journal directory, ascending (other files are
    ignored; a missing directory has none)."""
    return list_segments(journal) if journal.is_dir() else []


def is_live(data_dir: Path) -> bool:
    """True when a server holds the data directory's lock. Probes with a shared lock,
    released at once, so the LOCK file is left as it is."""
    try:
        fd = os.open(Path(data_dir) / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock we got
    return False


def durable_lsn(data_dir: Path) -> int:
    """An LSN every record up to which is durable: the index's applied LSN (the index
    applies a batch only after its fsync), else the end of the valid journal."""
    applied = read_applied(index_path(data_dir))
    if applied is not None and applied[0] > 0:
        return applied[0]
    last = 0
    try:
        for r in scan(journal_dir(data_dir)):
            last = r.lsn
    except JournalError:
        pass
    return last
