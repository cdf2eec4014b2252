"""Every command in docs/runbooks/dr-drill.md, run as written against a real server, a
real S3-compatible server, and real backups (only paths, the URL and the env file are
substituted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stemedb.ops.archive import archive_once
from stemedb.ops.backup import create_backup
from stemedb.ops.targets import open_target
from tests.helpers import ROOT, ServerProcess, sh_blocks
from tests.ops.conftest import JournalBuilder, S3Server

pytestmark = pytest.mark.integration

RUNBOOK = ROOT / "docs" / "runbooks" / "dr-drill.md"


def test_runbook_commands_run_as_written(tmp_path: Path, s3_server: S3Server) -> None:
    blocks = sh_blocks(RUNBOOK)
    assert len(blocks) >= 4
    builder = JournalBuilder(tmp_path / "data")
    builder.add(900)
    url = f"s3://{s3_server.new_bucket()}/prod"
    target = open_target(url, s3_server.url)
    create_backup(builder.source.data_dir, target)
    src = builder.add(400)
    archive_once(src.data_dir, target)

    srv = ServerProcess(src.data_dir).start()
    try:
        env_file = tmp_path / "backup.env"
        env_file.write_text(
            f"STEMEDB_BACKUP_TARGET={url}\n"
            f"STEMEDB_S3_ENDPOINT_URL={s3_server.url}\n"
            + "".join(f"{k}={v}\n" for k, v in s3_server.env.items() if k != "AWS_ENDPOINT_URL_S3")
        )
        scratch = tmp_path / "var-tmp"
        scratch.mkdir()
        script = "\n".join(blocks)
        for old, new in (
            ("/etc/stemedb/backup.env", str(env_file)),
            ("/var/lib/stemedb-pitr", str(tmp_path / "pitr")),
            ("/var/lib/stemedb", str(src.data_dir)),
            ("/var/tmp", str(scratch)),
            ("http://127.0.0.1:18180", srv.url),
        ):
            script = script.replace(old, new)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STEMEDB_"))}
        env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
        env["TMPDIR"] = str(scratch)
        out = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stdout + out.stderr
    finally:
        srv.stop()
    drill = json.loads((scratch / "dr-drill.json").read_text())
    assert drill["ok"] and drill["lsn"] > 900
    assert "OK" in out.stdout and "1..900" in out.stdout  # verify, and the backup list
    assert not (tmp_path / "pitr").exists()
    assert [p.name for p in scratch.iterdir()] == ["dr-drill.json"]  # the drill cleaned up
