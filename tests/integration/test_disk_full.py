"""Disk full on a real small filesystem (a size-limited tmpfs the test mounts): writes
stop at ``min_free_bytes`` with 503 and Retry-After, /readyz says why, reads go on,
nothing acknowledged is lost, and writing resumes when space is freed, without a
restart. Skipped, with the reason, only where this process may not mount."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stemedb.signing import AgentKey
from tests.helpers import ServerProcess, assertion_body, signed_headers

pytestmark = pytest.mark.integration

SIZE_MB = 48
MIN_FREE = 8 << 20


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({r.stderr.strip() or r.returncode})")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(path: Path, leave: int) -> None:
    """A filler file leaving about ``leave`` bytes free on its filesystem."""
    free = os.statvfs(path.parent).f_bavail * os.statvfs(path.parent).f_frsize
    with open(path, "wb") as f:
        f.write(b"\0" * max(0, free - leave))


def test_writes_stop_before_the_disk_is_full_and_resume_when_space_is_freed(
        small_fs: Path) -> None:
    srv = ServerProcess(small_fs / "data", env={"STEMEDB_MIN_FREE_BYTES": str(MIN_FREE)})
    srv.log_path = small_fs.parent / "server.log"  # the log must not fill the small disk
    srv.start()
    try:
        filler = small_fs / "filler"
        _fill(filler, MIN_FREE + (2 << 20))
        key = AgentKey.generate()
        acked: list[str] = []
        refused = None
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            for i in range(20_000):
                body = assertion_body(key, subject=f"river gauge {i}",
                                      object=f"water level {i} centimetres")
                r = c.post("/v1/assert", content=body, headers=signed_headers(key, body))
                if r.status_code in (200, 201, 202):
                    acked.append(r.json()["id"])
                    continue
                refused = r
                break
            assert refused is not None, "the disk never filled"
            assert refused.status_code == 503 and refused.headers.get("retry-after")
            assert refused.headers["content-type"].startswith("application/problem+json")
            ready = c.get("/readyz")
            assert ready.status_code == 503 and "disk low" in ready.json()["reason"]
            assert len(acked) > 10
            for wid in acked:  # reads go on, and every acknowledged write is there
                assert c.get(f"/v1/assertions/{wid}").status_code == 200
            filler.unlink()  # space freed: writing resumes by itself
            deadline = time.monotonic() + 15
            while c.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, c.get("/readyz").text
                time.sleep(0.2)
            body = assertion_body(key, subject="after the disk was freed")
            assert c.post("/v1/assert", content=body,
                          headers=signed_headers(key, body)).status_code == 201
        assert srv.stop() == 0
    finally:
        srv.stop()
    srv.start()  # and after a restart, everything acknowledged is still there
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            assert all(c.get(f"/v1/assertions/{w}").status_code == 200 for w in acked)
    finally:
        srv.stop()
