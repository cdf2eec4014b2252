"""A directory target: ``<key>.partial`` is written, fsynced, read back and checked, then
renamed over ``<key>`` and the directory fsynced. Listings ignore ``*.partial`` files."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from ...errors import MissingObject, TargetError
from ..files import CHUNK, PARTIAL, Tick, fsync_path, sha256_file, write_file_atomic
from .base import ObjectInfo, Target


class LocalTarget(Target):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    def path(self, key: str) -> Path:
        if key.startswith("/") or ".." in Path(key).parts:
            raise TargetError(f"bad key {key!r}")
        return self.root / key

    def describe(self, key: str) -> str:
        return str(self.path(key))

    def put_file(self, key: str, path: Path, sha256: str, tick: Tick | None = None) -> None:
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + PARTIAL)
        try:
            with open(path, "rb") as src, open(tmp, "wb") as out:
                while chunk := src.read(CHUNK):
                    out.write(chunk)
                    if tick is not None:
                        tick(len(chunk))
                out.flush()
                os.fsync(out.fileno())
            written, _ = sha256_file(tmp)
            if written != sha256:
                raise TargetError(
                    f"{dest}: copy does not match its source (sha256 {written}, "
                    f"expected {sha256}); the source changed or the disk is bad"
                )
            os.replace(tmp, dest)
            fsync_path(dest.parent)
        except OSError as e:
            raise TargetError(f"cannot write {dest}: {e}") from e

    def put_bytes(self, key: str, data: bytes) -> None:
        try:
            write_file_atomic(self.path(key), data)
        except OSError as e:
            raise TargetError(f"cannot write {self.path(key)}: {e}") from e

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise MissingObject(self.describe(key)) from None
        except OSError as e:
            raise TargetError(f"cannot read {self.path(key)}: {e}") from e

    def download(self, key: str, dest: Path, tick: Tick | None = None) -> tuple[str, int]:
        src = self.path(key)
        h = hashlib.sha256()
        size = 0
        try:
            with open(src, "rb") as f, open(dest, "wb") as out:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                    if tick is not None:
                        tick(len(chunk))
        except FileNotFoundError:
            raise MissingObject(self.describe(key)) from None
        except OSError as e:
            raise TargetError(f"cannot copy {src} to {dest}: {e}") from e
        return h.hexdigest(), size

    def head(self, key: str) -> ObjectInfo | None:
        try:
            return ObjectInfo(key, self.path(key).stat().st_size)
        except FileNotFoundError:
            return None

    def list(self, prefix: str) -> list[ObjectInfo]:
        base = self.path(prefix) if prefix else self.root
        start = base if base.is_dir() else base.parent
        if not start.is_dir():
            return []
        out = []
        for dirpath, _, names in os.walk(start):
            for name in names:
                full = Path(dirpath) / name
                key = full.relative_to(self.root).as_posix()
                if key.startswith(prefix) and not name.endswith(PARTIAL):
                    try:
                        out.append(ObjectInfo(key, full.stat().st_size))
                    except FileNotFoundError:
                        continue
        return sorted(out, key=lambda o: o.key)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def cleanup_partial(self, prefix: str, older_than_s: float) -> int:
        base = self.path(prefix) if prefix else self.root
        start = base if base.is_dir() else base.parent
        removed = 0
        cutoff = time.time() - older_than_s
        for p in start.rglob("*" + PARTIAL) if start.is_dir() else ():
            try:
                if p.stat().st_mtime < cutoff:
                    p.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
