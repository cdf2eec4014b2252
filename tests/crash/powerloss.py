"""A file layer that simulates power loss, after RocksDB's FaultInjectionTestFS and LazyFS.

The real files under ``root`` play the page cache: the journal reads and writes them as
usual. Beside them this layer keeps what the disk holds: each file's bytes as of its last
``fsync``, and each directory's entries as of the last ``fsync`` of that directory. Every
call is counted; at call number ``crash_at`` the power goes out before the call runs: the
layer records the state the disk would be left in (:class:`Image`), and from then on
every call fails with EIO, as if the machine were gone. ``close`` alone still releases the
real descriptor.

What a power loss leaves, chosen by a seeded ``random.Random``:

- ``drop``: every byte not yet fsynced is gone, and so is every create, rename and mkdir
  whose directory was not fsynced afterwards;
- ``prefix``: as ``drop``, but the unsynced tail of the file written last survives up to
  a random byte (a write torn mid-way, the pages reaching the disk in order);
- ``pages``: as ``drop``, but each 4 KiB page of that tail survives or not on its own,
  lost pages reading as zeros (writeback keeps no order);

and in ``prefix`` and ``pages``, a directory with unsynced changes keeps either all of
them or none (a rename is atomic: the old name or the new one).

No real ``fsync`` is made: durability here is the model, so the simulation is fast.
"""

from __future__ import annotations

import errno
import os
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path

PAGE = 4096
MODES = ("drop", "prefix", "pages")


@dataclass(eq=False)
class Inode:
    path: Path  # its live name
    durable: bytes  # as of its last fsync


@dataclass(eq=False)
class Directory:
    path: Path
    live: dict[str, Inode | Directory] = field(default_factory=dict)
    durable: dict[str, Inode | Directory] = field(default_factory=dict)


Node = Inode | Directory


@dataclass(frozen=True)
class Op:
    index: int
    kind: str  # open, create, write, fsync, ftruncate, rename, mkdir
    path: str  # relative to the root
    size: int = 0  # bytes written, or the new length

    def __str__(self) -> str:
        return f"#{self.index} {self.kind} {self.path}" + (f" {self.size}" if self.size else "")


@dataclass
class Image:
    """The disk after the power loss: relative path -> file bytes (None for a directory)."""

    entries: dict[str, bytes | None]
    mode: str
    torn: str | None  # the file whose unsynced tail partly survived
    durable_size: dict[str, int]  # each file's fsynced length when the power went out

    def write_to(self, dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        for rel, data in sorted(self.entries.items()):
            target = dest / rel
            if data is None:
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.write_bytes(data)


class PowerLoss(OSError):
    def __init__(self) -> None:
        super().__init__(errno.EIO, "simulated power loss")


class PowerLossFiles:
    """A ``stemedb.journal.FileOps`` that loses power at call ``crash_at`` (never if None).

    Requires: everything under ``root`` at construction is durable (it is taken as the
    disk's state), and every path the journal touches is under ``root``.
    """

    def __init__(self, root: Path, crash_at: int | None, rng: random.Random) -> None:
        self.root = root.resolve()
        self.crash_at = crash_at
        self.rng = rng
        self.ops: list[Op] = []
        self.image: Image | None = None
        self._lock = threading.RLock()
        self._fds: dict[int, Node] = {}
        self._last_written: Inode | None = None
        self._top = self._load(self.root)
        self._gate: threading.Event | None = None
        self._held = threading.Event()

    @property
    def crashed(self) -> bool:
        return self.image is not None

    # -- the FileOps protocol -----------------------------------------------------------

    def open(self, path: Path, flags: int, mode: int = 0o644) -> int:
        path = Path(os.path.abspath(path))
        with self._lock:
            existing = self._find(path)
            creating = existing is None and bool(flags & os.O_CREAT)
            self._step("create" if creating else "open", path)
            fd = os.open(path, flags, mode)
            if existing is None:
                existing = Inode(path, b"")
                self._dir(path.parent).live[path.name] = existing
            self._fds[fd] = existing
            return fd

    def write(self, fd: int, data: memoryview) -> int:
        with self._lock:
            node = self._file(fd)
            self._step("write", node.path, len(data))
            self._last_written = node
            return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        self._wait_at_gate()
        with self._lock:
            node = self._fds[fd]
            self._step("fsync", node.path)
            if isinstance(node, Directory):
                node.durable = dict(node.live)
            else:
                node.durable = node.path.read_bytes()

    def ftruncate(self, fd: int, length: int) -> None:
        with self._lock:
            node = self._file(fd)
            self._step("ftruncate", node.path, length)
            self._last_written = node
            os.ftruncate(fd, length)

    def rename(self, src: Path, dst: Path) -> None:
        src, dst = Path(os.path.abspath(src)), Path(os.path.abspath(dst))
        with self._lock:
            self._step("rename", src)
            os.rename(src, dst)
            node = self._dir(src.parent).live.pop(src.name)
            self._dir(dst.parent).live[dst.name] = node
            node.path = dst

    def mkdir(self, path: Path) -> None:
        path = Path(os.path.abspath(path))
        with self._lock:
            missing = []
            while self._find(path) is None:
                missing.append(path)
                path = path.parent
            for new in reversed(missing):
                self._step("mkdir", new)
                os.mkdir(new)
                self._dir(new.parent).live[new.name] = Directory(new)

    def close(self, fd: int) -> None:
        with self._lock:
            self._fds.pop(fd, None)
        os.close(fd)

    # -- holding the writer (deterministic group commits) ------------------------------

    def hold_next_fsync(self) -> None:
        """The next fsync waits for :meth:`release` before it runs."""
        self._held.clear()
        self._gate = threading.Event()

    def wait_until_held(self, timeout: float = 10.0) -> None:
        """Returns once an fsync waits at the gate, or the power is out."""
        if not self._held.wait(timeout):
            raise TimeoutError("no fsync reached the gate")

    def release(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.set()

    def _wait_at_gate(self) -> None:
        gate = self._gate
        if gate is not None and not self.crashed:
            self._held.set()
            gate.wait(10.0)

    # -- the power loss -----------------------------------------------------------------

    def power_off(self) -> Image:
        """Loses power now (if it is still on) and returns what the disk holds."""
        with self._lock:
            if self.image is None:
                self.image = self._crash_image()
                self._held.set()
            return self.image

    def _step(self, kind: str, path: Path, size: int = 0) -> None:
        """Counts a call; the power goes out before call number ``crash_at`` runs."""
        if self.image is not None:
            raise PowerLoss()
        op = Op(len(self.ops), kind, self._rel(path), size)
        if op.index == self.crash_at:
            self.power_off()
            raise PowerLoss()
        self.ops.append(op)

    def _crash_image(self) -> Image:
        mode = self.rng.choice(MODES)
        entries: dict[str, bytes | None] = {}
        durable_size: dict[str, int] = {}
        torn = self._last_written if mode != "drop" else None
        stack = [self._top]
        while stack:
            directory = stack.pop()
            keep_live = mode != "drop" and self.rng.random() < 0.5
            for name, node in sorted((directory.live if keep_live else directory.durable).items()):
                rel = self._rel(directory.path / name)
                if isinstance(node, Directory):
                    entries[rel] = None
                    stack.append(node)
                else:
                    durable_size[rel] = len(node.durable)
                    entries[rel] = self._survivor(node, mode) if node is torn else node.durable
        torn_name = self._rel(torn.path) if torn is not None else None
        return Image(entries, mode, torn_name, durable_size)

    def _survivor(self, node: Inode, mode: str) -> bytes:
        """What survives of a file's unsynced change. An append (the journal's only
        kind of write) survives in part; any other change wholly or not at all."""
        live = node.path.read_bytes() if node.path.exists() else node.durable
        old = node.durable
        if not live.startswith(old) or len(live) == len(old):
            return self.rng.choice((old, live))
        if mode == "prefix":
            return live[: self.rng.randint(len(old), len(live))]
        out = bytearray(live)
        start = len(old)
        kept_end = len(old)
        for page in range(start // PAGE * PAGE, len(live), PAGE):
            lo, hi = max(page, start), min(page + PAGE, len(live))
            if self.rng.random() < 0.5:
                kept_end = hi
            else:
                out[lo:hi] = bytes(hi - lo)
        return bytes(out[:kept_end])

    # -- the model ----------------------------------------------------------------------

    def _load(self, path: Path) -> Directory:
        """The tree as it stands, all of it durable."""
        directory = Directory(path)
        for entry in os.scandir(path):
            child = Path(entry.path)
            node: Node
            if entry.is_dir(follow_symlinks=False):
                node = self._load(child)
            else:
                node = Inode(child, child.read_bytes())
            directory.live[entry.name] = directory.durable[entry.name] = node
        return directory

    def _find(self, path: Path) -> Node | None:
        if path == self.root:
            return self._top
        if self.root not in path.parents:
            raise ValueError(f"{path} is outside {self.root}")
        parent = self._find(path.parent)
        return parent.live.get(path.name) if isinstance(parent, Directory) else None

    def _dir(self, path: Path) -> Directory:
        node = self._find(path)
        assert isinstance(node, Directory), path
        return node

    def _file(self, fd: int) -> Inode:
        node = self._fds[fd]
        assert isinstance(node, Inode), node
        return node

    def _rel(self, path: Path) -> str:
        return os.path.relpath(path, self.root)
