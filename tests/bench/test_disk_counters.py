"""bench.servers.disk_counters: the write counters the soak reports per minute, read from
/proc/diskstats for the device holding a path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.servers import disk_counters


def test_a_synced_write_shows_in_its_devices_counters(tmp_path: Path) -> None:
    before = disk_counters(tmp_path)
    if before is None:
        pytest.skip("the test directory is on no block device the kernel lists")
    path = tmp_path / "data"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.write(fd, os.urandom(4 << 20))
        os.fsync(fd)
    finally:
        os.close(fd)
    after = disk_counters(tmp_path)
    assert after is not None
    assert after.writes > before.writes
    assert after.sectors - before.sectors >= (4 << 20) // 512
    assert after.write_ms >= before.write_ms


def test_no_counters_for_a_path_on_no_listed_device() -> None:
    assert disk_counters(Path("/proc/self")) is None
