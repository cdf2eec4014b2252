"""The target interface: where backups and archived WAL go.

A target is a flat key space addressed by relative keys (``backups/<id>/manifest.json``,
``wal/<segment>``). Every implementation keeps this contract:

- A write is all-or-nothing: an interrupted upload never leaves an object that looks
  complete, and a listing never shows one.
- After ``put_file`` returns, the stored object has been checked against the digest it
  was given; a mismatch raises :class:`~stemedb.errors.TargetError`, never passes.
- Reads of a missing key raise :class:`~stemedb.errors.MissingObject` (``head`` answers
  None instead); every other failure raises :class:`~stemedb.errors.TargetError`.
- ``tick`` callbacks receive byte counts as they move, for progress reports.

One module per implementation sits beside this one (``local``, ``s3``);
:func:`stemedb.ops.targets.open_target` picks one from a URL.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from ..files import Tick


@dataclass(frozen=True)
class ObjectInfo:
    key: str  # relative to the target's root
    size: int
    sha256: str | None = None  # as recorded at upload, when the listing carries it


class Target(ABC):
    """A place holding backups and archived segments, addressed by relative keys."""

    url: str

    def describe(self, key: str) -> str:
        return f"{self.url.rstrip('/')}/{key}"

    @abstractmethod
    def put_file(self, key: str, path: Path, sha256: str, tick: Tick | None = None) -> None:
        """Uploads ``path`` (whose digest is ``sha256``) to ``key`` atomically, then checks
        what was stored; raises TargetError when the stored object does not match."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Writes a small object atomically."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """Reads a whole object; MissingObject when absent."""

    @abstractmethod
    def download(self, key: str, dest: Path, tick: Tick | None = None) -> tuple[str, int]:
        """Copies ``key`` to ``dest``; returns (sha256, size) of the bytes written."""

    @abstractmethod
    def head(self, key: str) -> ObjectInfo | None:
        """Size (and recorded sha256, if any) of ``key``, or None when absent."""

    @abstractmethod
    def list(self, prefix: str) -> list[ObjectInfo]:
        """Every complete object whose key starts with ``prefix``, sorted by key."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Removes ``key`` if present."""

    def cleanup_partial(self, prefix: str, older_than_s: float) -> int:
        """Removes leftovers of interrupted uploads under ``prefix`` older than the age
        given; returns how many. Never touches complete objects."""
        return 0
