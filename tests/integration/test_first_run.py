"""What a new user sees on the first `make run`: each start line once, no packaging
warnings from the project's own metadata."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import orjson
import pytest

from tests.helpers import ROOT, ServerProcess, free_port

pytestmark = pytest.mark.integration


def test_each_start_line_is_printed_once(tmp_path: Path) -> None:
    """The API and the dashboard are two uvicorn servers in one process: the process
    and application start and stop lines are printed once, not once per server."""
    srv = ServerProcess(tmp_path / "data", env={"STEMEDB_LOG_LEVEL": "INFO"})
    with open(srv.log_path, "ab") as log:
        srv.proc = subprocess.Popen(
            [sys.executable, "-m", "stemedb", "serve", "--port", str(srv.port),
             "--data-dir", str(srv.data_dir), "--dashboard-port", str(free_port())],
            env=srv.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    srv.wait_ready()
    assert srv.stop() == 0
    msgs = [orjson.loads(line)["msg"] for line in srv.log().splitlines()
            if line.startswith("{")]
    assert msgs.count("listening") == 1 and msgs.count("dashboard listening") == 1
    for start in ("Started server process", "Application startup complete",
                  "Application shutdown complete"):
        assert sum(m.startswith(start) for m in msgs) == 1, (start, msgs)


def test_the_license_is_an_spdx_expression() -> None:
    """setuptools warns about a license table ({text = ...}): PEP 639 wants a string."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
