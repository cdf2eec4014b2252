"""The simulated disk itself: what it keeps and drops at a power loss."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.crash.powerloss import PowerLoss, PowerLossFiles

FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND


class Rng(random.Random):
    """Draws the given mode, and keeps (or drops) every unsynced directory change."""

    def __init__(self, mode: str, keep_entries: bool = False, cut: int | None = None) -> None:
        super().__init__(0)
        self.mode, self.keep_entries, self.cut = mode, keep_entries, cut

    def choice(self, seq):  # type: ignore[no-untyped-def, override]
        return self.mode if self.mode in seq else super().choice(seq)

    def random(self) -> float:
        return 0.0 if self.keep_entries else 0.99

    def randint(self, a: int, b: int) -> int:
        return a + self.cut if self.cut is not None else super().randint(a, b)


def _create(files: PowerLossFiles, path: Path, data: bytes, *, sync: bool, sync_dir: bool) -> int:
    fd = files.open(path, FLAGS)
    files.write(fd, memoryview(data))
    if sync:
        files.fsync(fd)
    if sync_dir:
        dfd = files.open(path.parent, os.O_RDONLY)
        files.fsync(dfd)
        files.close(dfd)
    return fd


def test_a_file_whose_directory_was_not_fsynced_vanishes(tmp_path: Path) -> None:
    files = PowerLossFiles(tmp_path, None, Rng("drop"))
    files.close(_create(files, tmp_path / "a", b"data", sync=True, sync_dir=False))
    assert files.power_off().entries == {}


def test_unsynced_bytes_are_dropped_and_synced_ones_kept(tmp_path: Path) -> None:
    files = PowerLossFiles(tmp_path, None, Rng("drop"))
    fd = _create(files, tmp_path / "a", b"synced", sync=True, sync_dir=True)
    files.write(fd, memoryview(b" and not"))
    files.close(fd)
    assert (tmp_path / "a").read_bytes() == b"synced and not"  # what the process saw
    assert files.power_off().entries == {"a": b"synced"}


def test_a_torn_write_keeps_a_prefix_of_the_unsynced_tail(tmp_path: Path) -> None:
    files = PowerLossFiles(tmp_path, None, Rng("prefix", cut=3))
    fd = _create(files, tmp_path / "a", b"synced", sync=True, sync_dir=True)
    files.write(fd, memoryview(b"-torn"))
    files.close(fd)
    assert files.power_off().entries == {"a": b"synced-to"}


def test_pages_reach_the_disk_in_any_order(tmp_path: Path) -> None:
    rng = Rng("pages")
    files = PowerLossFiles(tmp_path, None, rng)
    fd = _create(files, tmp_path / "a", b"", sync=True, sync_dir=True)
    files.write(fd, memoryview(b"x" * 3 * 4096))
    files.close(fd)
    rng.random = iter([0.99, 0.99, 0.99, 0.0]).__next__  # type: ignore[method-assign]
    image = files.power_off()  # synced entries; pages 1 and 2 lost, 3 kept
    assert image.entries == {"a": bytes(2 * 4096) + b"x" * 4096}
    assert image.durable_size == {"a": 0}


def test_a_rename_survives_whole_or_not_at_all(tmp_path: Path) -> None:
    (tmp_path / "old").write_bytes(b"kept")
    for keep, name in ((False, "old"), (True, "new")):
        files = PowerLossFiles(tmp_path, None, Rng("prefix", keep_entries=keep))
        files.rename(tmp_path / "old", tmp_path / "new")
        assert files.power_off().entries == {name: b"kept"}
        os.rename(tmp_path / "new", tmp_path / "old")


def test_after_the_power_loss_every_call_fails(tmp_path: Path) -> None:
    files = PowerLossFiles(tmp_path, 1, Rng("drop"))
    fd = files.open(tmp_path / "a", FLAGS)
    with pytest.raises(PowerLoss):
        files.write(fd, memoryview(b"never"))
    with pytest.raises(PowerLoss):
        files.fsync(fd)
    files.close(fd)
    assert [str(op) for op in files.ops] == ["#0 create a"]
    assert files.power_off().entries == {}
