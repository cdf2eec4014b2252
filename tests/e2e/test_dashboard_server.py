"""``stemedb serve`` runs the API and the dashboard in one process: a busy dashboard port
fails the start clearly. (SIGTERM stopping both servers is checked when the scenario
server of test_dashboard_e2e.py stops.)"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, free_port

pytestmark = pytest.mark.integration


def test_a_busy_dashboard_port_fails_the_start_with_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "stemedb", "serve", "--port", str(free_port()),
             "--dashboard-port", str(port), "--data-dir", str(tmp_path / "data")],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
        )  # fmt: skip
    assert out.returncode == 1
    assert f"127.0.0.1:{port}" in out.stderr and "dashboard" in out.stderr
    assert "Traceback" not in out.stderr
