"""``[backup] target`` from the config file is the target of every ops command that is
not given ``--to``/``--from``, run as an operator runs them: the real ``stemedb`` in a
child process, with ``--config``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.ops.conftest import JournalBuilder

pytestmark = pytest.mark.integration


def stemedb(*args: str, env: dict[str, str] | None = None, timeout: float = 120
            ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STEMEDB_")}
    return subprocess.run([sys.executable, "-m", "stemedb", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env={**clean, **(env or {})})


def _config(path: Path, **sections: dict[str, str]) -> Path:
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f'{k} = "{v}"' for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_every_ops_command_uses_the_configured_target(tmp_path: Path) -> None:
    src = JournalBuilder(tmp_path / "data").add(300)
    target = tmp_path / "backups"
    cfg = _config(tmp_path / "config.toml", server={"data_dir": str(src.data_dir)},
                  backup={"target": str(target)})

    out = stemedb("backup", "create", "--config", str(cfg), "--json")
    assert out.returncode == 0, out.stderr
    backup_id = json.loads(out.stdout)["id"]
    assert (target / "backups" / backup_id).is_dir()

    out = stemedb("wal", "archive", "--config", str(cfg), "--json")
    assert out.returncode == 0, out.stderr
    assert list((target / "wal").glob("*.wal")), "sealed segments archived into the target"

    out = stemedb("wal", "status", "--config", str(cfg), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["target"] == str(target)

    out = stemedb("backup", "list", "--config", str(cfg), "--json")
    assert out.returncode == 0, out.stderr
    assert [b["id"] for b in json.loads(out.stdout)] == [backup_id]

    out = stemedb("backup", "verify", "--config", str(cfg), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["backup_id"] == backup_id

    restored = tmp_path / "restored"
    out = stemedb("restore", "--config", str(cfg), "--data-dir", str(restored), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["lsn"] == 300

    out = stemedb("dr-drill", "--config", str(cfg), "--sample", "5", "--json", timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["backup_id"] == backup_id


def test_flag_over_env_over_file(tmp_path: Path) -> None:
    src = JournalBuilder(tmp_path / "data").add(50)
    cfg = _config(tmp_path / "config.toml", server={"data_dir": str(src.data_dir)},
                  backup={"target": str(tmp_path / "from-file")})
    env = {"STEMEDB_BACKUP_TARGET": str(tmp_path / "from-env")}
    out = stemedb("backup", "create", "--config", str(cfg), "--json", env=env)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "from-env" / "backups").is_dir()
    out = stemedb("backup", "create", "--config", str(cfg), "--to", str(tmp_path / "from-flag"),
                  "--json", env=env)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "from-flag" / "backups").is_dir()
    assert not (tmp_path / "from-file").exists()


@pytest.mark.parametrize("argv, flag", [
    (["backup", "create"], "--to TARGET"),
    (["backup", "list"], "--from TARGET"),
    (["backup", "verify"], "--from TARGET"),
    (["wal", "archive"], "--to TARGET"),
    (["wal", "status"], "--to TARGET"),
    (["restore", "--data-dir", "new"], "--from TARGET"),
    (["dr-drill"], "--from TARGET"),
])
def test_no_target_anywhere_is_one_usage_line(tmp_path: Path, argv: list[str], flag: str
                                             ) -> None:  # fmt: skip
    cfg = _config(tmp_path / "config.toml", server={"data_dir": str(tmp_path / "data")})
    out = stemedb(*argv, "--config", str(cfg))
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: backup.target from default: must be set"), lines
    assert flag in lines[0] and "[backup] target" in lines[0]
    assert "STEMEDB_BACKUP_TARGET" in lines[0]


def test_a_bad_target_or_endpoint_is_a_config_error(tmp_path: Path) -> None:
    cfg = _config(tmp_path / "config.toml", backup={"target": "ftp://host/x"})
    out = stemedb("backup", "list", "--config", str(cfg))
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert f"backup.target from {cfg}:" in out.stderr and "s3://bucket/prefix" in out.stderr
    out = stemedb("backup", "list", "--from", "s3://bucket/x", "--s3-endpoint-url", "minio:9000")
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "backup.s3_endpoint_url from --s3-endpoint-url: must be an http://" in out.stderr
