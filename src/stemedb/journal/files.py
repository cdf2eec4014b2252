"""The file layer under the journal: every call that changes what is on disk or makes it
durable.

The journal creates, writes, fsyncs, truncates and renames its files only through a
:class:`FileOps`. :class:`OsFiles` is the real one, each method one syscall; tests put a
layer here that records these calls and leaves what a power loss would (tests/crash/).
Reads (``read_bytes``, ``stat``, ``scandir``) go straight to the files: a file layer
decides what becomes durable, never what the process sees.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

Fsync = Callable[[int], None]


class FileOps(Protocol):
    """The calls the journal makes that a power loss can undo.

    A file's bytes and size are durable only after ``fsync`` of that file; a create,
    rename or mkdir only after ``fsync`` of its directory (opened ``O_RDONLY``).
    """

    def open(self, path: Path, flags: int, mode: int = 0o644) -> int: ...

    def write(self, fd: int, data: memoryview) -> int: ...

    def fsync(self, fd: int) -> None: ...

    def ftruncate(self, fd: int, length: int) -> None: ...

    def rename(self, src: Path, dst: Path) -> None: ...

    def mkdir(self, path: Path) -> None:
        """Creates ``path`` and any missing parents; an existing directory is fine."""
        ...

    def close(self, fd: int) -> None: ...


class OsFiles:
    """The real syscalls. ``fsync`` replaces ``os.fsync`` (tests of a failing fsync)."""

    def __init__(self, fsync: Fsync = os.fsync) -> None:
        self._fsync = fsync

    def open(self, path: Path, flags: int, mode: int = 0o644) -> int:
        return os.open(path, flags, mode)

    def write(self, fd: int, data: memoryview) -> int:
        return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        self._fsync(fd)

    def ftruncate(self, fd: int, length: int) -> None:
        os.ftruncate(fd, length)

    def rename(self, src: Path, dst: Path) -> None:
        os.rename(src, dst)

    def mkdir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)

    def close(self, fd: int) -> None:
        os.close(fd)


OS_FILES = OsFiles()
