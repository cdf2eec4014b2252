"""The ops units on a stock host: they read ``[backup] target`` through ``--config``, write
their metrics into a directory of the ``stemedb`` user inside node_exporter's (which
belongs to root), and the API unit loads the env file its archive-lag check needs. The
node_exporter set-up in the docs is run as written and read back as node_exporter
reads it."""

from __future__ import annotations

import grp
import os
import pwd
import re
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from stemedb.ops.textfile import (
    write_archive_metrics,
    write_backup_metrics,
    write_drill_metrics,
    write_verify_metrics,
)
from tests.helpers import ROOT
from tests.ops.test_systemd_units import INSTALLED, UNITS, _systemd_analyze, _verify

TEXTFILE_DIR = "/var/lib/prometheus/node-exporter/stemedb"
BACKUP_DR = ROOT / "docs" / "operations" / "backup-dr.md"
JOBS = ("stemedb-backup", "stemedb-wal-archive", "stemedb-verify", "stemedb-dr-drill")


def exec_lines(name: str) -> list[list[str]]:
    text = (UNITS / f"{name}.service").read_text()
    return [line.split("=", 1)[1].split() for line in text.splitlines()
            if line.startswith("ExecStart=")]


def directives(name: str, key: str) -> list[str]:
    text = (UNITS / name).read_text()
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(f"{key}=")]


def test_every_job_reads_the_config_and_writes_metrics_it_may_write() -> None:
    for name in JOBS:
        for argv in exec_lines(name):
            assert argv[0] == INSTALLED
            assert argv[argv.index("--config") + 1] == "/etc/stemedb/config.toml", argv
            assert "--to" not in argv and "--from" not in argv, argv  # [backup] target
            if "--textfile-dir" in argv:
                assert argv[argv.index("--textfile-dir") + 1] == TEXTFILE_DIR, argv
        textfile = [a for argv in exec_lines(name) for a in argv if a == "--textfile-dir"]
        assert textfile, f"{name} writes no metrics"
        writable = " ".join(directives(f"{name}.service", "ReadWritePaths")).split()
        # "-": a missing directory is no reason to fail the unit; the job only warns
        assert f"-{TEXTFILE_DIR}" in writable, (name, writable)
        assert "/var/lib/prometheus/node-exporter" not in " ".join(writable).replace(
            TEXTFILE_DIR, ""), (name, writable)
        assert "/etc/stemedb/backup.env" in directives(f"{name}.service", "EnvironmentFile")
    verify = exec_lines("stemedb-verify")
    assert [argv[1] for argv in verify] == ["verify", "backup"]


def test_the_api_unit_loads_the_env_file_of_the_archive_check(tmp_path: Path) -> None:
    env_files = directives("stemedb-api.service", "EnvironmentFile")
    assert env_files == ["-/etc/stemedb/stemedb.env", "-/etc/stemedb/backup.env"]
    exe = _systemd_analyze()
    stemedb = str(Path(sys.executable).with_name("stemedb"))
    copy = tmp_path / "stemedb-api.service"
    copy.write_text((UNITS / "stemedb-api.service").read_text().replace(INSTALLED, stemedb))
    out = _verify(exe, [copy])
    assert out.returncode == 0 and not out.complaints, out.text


def test_the_docs_create_the_directory_the_units_write() -> None:
    text = BACKUP_DR.read_text()
    assert f"install -d -o stemedb -g stemedb -m 0755 {TEXTFILE_DIR}" in text
    assert "backup.env" in text and "stemedb-api.service" in text
    for name in ("stemedb_backup", "stemedb_wal_archive", "stemedb_dr_drill", "stemedb_verify"):
        assert f"`{name}" in text, name


def _link_script() -> str:
    blocks = re.findall(r"^```\n(.*?)^```", BACKUP_DR.read_text(), re.S | re.M)
    [script] = [b for b in blocks if "ln -sfn" in b]
    return script


def test_the_documented_links_let_node_exporter_read_the_jobs_files(tmp_path: Path) -> None:
    """The set-up block of backup-dr.md §Metrics, run as written (the collector directory
    and the user substituted), then every job writes its file and node_exporter's view
    (the *.prom files directly in its directory, links followed) holds every series."""
    collector = tmp_path / "node-exporter"
    own = collector / "stemedb"
    own.mkdir(parents=True)
    user = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    script = (_link_script().replace("/var/lib/prometheus/node-exporter", str(collector))
              .replace("-o stemedb -g stemedb", f"-o {user} -g {group}"))
    for _ in range(2):  # run twice: the second run keeps what is there
        out = subprocess.run(["sh", "-eu", "-c", script], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr

    def node_exporter_view() -> dict[str, float]:
        return {s.name: s.value for path in sorted(collector.glob("*.prom"))
                for f in text_string_to_metric_families(path.read_text()) for s in f.samples}

    assert node_exporter_view() == {}  # empty files, no dangling links, no error
    write_backup_metrics(own, success=True, duration_s=1.0, size_bytes=2, lsn=3)
    write_archive_metrics(own, success=True, lag_seconds=0.0, lag_segments=0,
                          last_archived_lsn=3)
    write_drill_metrics(own, success=True, rto_s=1.0, rpo_s=1.0)
    write_verify_metrics(own, success=False)
    seen = node_exporter_view()
    assert seen["stemedb_backup_last_lsn"] == 3
    assert seen["stemedb_wal_archive_last_run_success"] == 1
    assert seen["stemedb_dr_drill_rto_seconds"] == 1
    assert seen["stemedb_verify_last_run_success"] == 0
    write_backup_metrics(own, success=True, duration_s=1.0, size_bytes=2, lsn=4)
    assert node_exporter_view()["stemedb_backup_last_lsn"] == 4  # a rename, links follow
    for link in collector.glob("*.prom"):
        assert link.is_symlink() and link.resolve().parent == own.resolve()
