"""Start-up of a real server on damaged journals: torn tail cut, corruption refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from stemedb.signing import AgentKey
from tests.helpers import ROOT, ServerProcess, assertion_body, signed_headers

pytestmark = pytest.mark.integration


def _fill(srv: ServerProcess, key: AgentKey, n: int, start: int = 0) -> list[str]:
    ids = []
    for i in range(start, start + n):
        b = assertion_body(key, subject=f"s{i}")
        r = httpx.post(srv.url + "/v1/assert", content=b, headers=signed_headers(key, b))
        assert r.status_code == 201
        ids.append(r.json()["id"])
    return ids


def _serve_once(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stemedb", "serve", "--port", "1",
                           "--data-dir", str(data_dir)], capture_output=True, text=True,
                          timeout=30, cwd=ROOT)


def test_torn_tail_is_cut_and_kept_aside(tmp_path: Path, key: AgentKey) -> None:
    srv = ServerProcess(tmp_path / "data").start()
    ids = _fill(srv, key, 5)
    srv.stop()
    seg = sorted((tmp_path / "data" / "journal").glob("*.wal"))[-1]
    with open(seg, "ab") as f:
        f.write(b"\x10\x00\x00\x00partial-frame")  # a write the crash interrupted
    srv.start()
    broken = list(seg.parent.glob("*.broken*"))
    assert len(broken) == 1 and broken[0].read_bytes() == b"\x10\x00\x00\x00partial-frame"
    for aid in ids:
        assert httpx.get(f"{srv.url}/v1/assertions/{aid}").status_code == 200
    _fill(srv, key, 1, start=100)  # and the chain continues
    srv.stop()
    out = subprocess.run([sys.executable, "-m", "stemedb", "verify", "--data-dir",
                          str(tmp_path / "data")], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def test_mid_log_corruption_refuses_to_start_naming_file_and_offset(tmp_path: Path,
                                                                    key: AgentKey) -> None:
    srv = ServerProcess(tmp_path / "data").start()
    _fill(srv, key, 10)
    srv.stop()
    seg = sorted((tmp_path / "data" / "journal").glob("*.wal"))[-1]
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0x01
    seg.write_bytes(bytes(data))
    out = _serve_once(tmp_path / "data")
    assert out.returncode != 0
    assert seg.name in out.stderr and "offset" in out.stderr
    assert "server-wont-start" in out.stderr  # the hint points to the runbook
    assert "Traceback" not in out.stderr
    verify = subprocess.run([sys.executable, "-m", "stemedb", "verify", "--data-dir",
                             str(tmp_path / "data")], capture_output=True, text=True, cwd=ROOT)
    assert verify.returncode == 1 and seg.name in verify.stdout
