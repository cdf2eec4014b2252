"""Local file steps the ops commands share: digests, fsyncs, atomic writes."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from ..datadir import fsync_path

PARTIAL = ".partial"
CHUNK = 1 << 20
Tick = Callable[[int], None]  # called with a number of bytes just transferred


def sha256_file(path: Path, tick: Tick | None = None) -> tuple[str, int]:
    """(hex SHA-256, size) of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
            if tick is not None:
                tick(len(chunk))
    return h.hexdigest(), size


def write_file_atomic(path: Path, data: bytes) -> None:
    """``path`` holds ``data`` or its old content, never a mix (tmp + fsync + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + PARTIAL)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_path(path.parent)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
