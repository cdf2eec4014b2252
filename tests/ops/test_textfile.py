"""Metrics for node_exporter's textfile collector on a host where they cannot be written:
the writer raises an ``OpsError`` with a hint, never a bare ``OSError``, and the jobs only
warn, so that their own result decides the exit code.

Every directory here is real and refuses writes for real, root included: permission
bits do not stop root, so as root the "directory of another user" case runs the job as
``nobody`` (the stock Debian case: ``/var/lib/prometheus/node-exporter`` is root:root
0755 and the job runs as ``stemedb``), and the read-only case bind-mounts the directory
read-only in a private mount namespace (``unshare``), which refuses root too (EROFS). A
regular file where the directory is expected fails for everyone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from stemedb.cli import main
from stemedb.errors import OpsError
from stemedb.ops.textfile import (
    write_archive_metrics,
    write_backup_metrics,
    write_drill_metrics,
    write_verify_metrics,
)
from tests.helpers import ROOT
from tests.ops.conftest import JournalBuilder

NOBODY = 65534
ROOT_USER = os.geteuid() == 0
WRITERS: list[Callable[..., Path]] = [write_backup_metrics, write_archive_metrics,
                                      write_drill_metrics, write_verify_metrics]


def metrics(path: Path) -> dict[str, float]:
    return {s.name: s.value for f in text_string_to_metric_families(path.read_text())
            for s in f.samples}


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user can traverse (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="stemedb-textfile-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run_as_other_user(fn: Callable[[], object]) -> tuple[int, str]:
    """``fn()`` in a forked child without write access to a root-owned 0755 directory:
    as ``nobody`` when we are root, as ourselves otherwise (the caller made the directory
    0555). Returns the child's exit code (0, or 3 for an ``OpsError``) and what ``fn``
    returned or the error said."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        os.close(read)
        code, message = 0, ""
        try:
            if ROOT_USER:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            message = str(fn() or "")
        except OpsError as e:
            code, message = 3, f"{e.detail}\n{e.hint}"
        except BaseException as e:  # noqa: BLE001 -- anything else is the failure we test for
            code, message = 4, f"{type(e).__name__}: {e}"
        os.write(write, message.encode())
        os._exit(code)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode()


def others_cannot_write(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755 if ROOT_USER else 0o555)


@pytest.mark.parametrize("write", WRITERS, ids=lambda w: w.__name__)
def test_a_directory_of_another_user_is_an_ops_error_with_a_hint(shared_dir: Path,
                                                                 write: Callable[..., Path]
                                                                 ) -> None:  # fmt: skip
    collector = shared_dir / "node-exporter"
    others_cannot_write(collector)
    code, report = run_as_other_user(lambda: write(collector, success=True))
    assert code == 3, report
    detail, hint = report.split("\n", 1)
    assert str(collector) in detail and "Permission denied" in detail
    assert "install -d -o stemedb -g stemedb" in hint and "not affected" in hint
    assert os.listdir(collector) == []  # no temporary file left behind


def test_a_missing_directory_is_created_or_reported(shared_dir: Path, tmp_path: Path) -> None:
    created = tmp_path / "missing" / "collector"
    path = write_backup_metrics(created, success=True, duration_s=1.0, size_bytes=2, lsn=3)
    assert metrics(path)["stemedb_backup_last_lsn"] == 3
    # Missing, in a directory the job's user cannot write (Debian: the stemedb
    # subdirectory was never created in root's node-exporter directory).
    parent = shared_dir / "node-exporter"
    others_cannot_write(parent)
    code, report = run_as_other_user(lambda: write_backup_metrics(parent / "stemedb",
                                                                  success=True))
    assert code == 3 and "Permission denied" in report, report
    assert not (parent / "stemedb").exists()


@pytest.mark.parametrize("where", ["the directory", "a parent"])
def test_a_file_in_the_way_fails_for_every_user(tmp_path: Path, where: str) -> None:
    blocker = tmp_path / "collector"
    blocker.write_text("not a directory\n")
    directory = blocker if where == "the directory" else blocker / "stemedb"
    with pytest.raises(OpsError) as e:
        write_verify_metrics(directory, success=True, duration_s=1.0, lsn=1)
    assert str(directory) in e.value.detail and "not a directory" in e.value.hint
    assert blocker.read_text() == "not a directory\n"


def _unshare() -> str:
    exe = shutil.which("unshare")
    if exe is None:
        pytest.skip("unshare (util-linux) is not installed")
    flags = [] if ROOT_USER else ["-r"]  # a user namespace lets a non-root user mount
    probe = subprocess.run([exe, *flags, "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a mount namespace here: {probe.stderr.decode().strip()}")
    return " ".join([exe, *flags, "-m", "--propagation", "private"])


def test_a_read_only_mount_refuses_even_root(tmp_path: Path) -> None:
    unshare = _unshare()
    collector = tmp_path / "collector"
    collector.mkdir()
    code = ("import pathlib, sys\n"
            "from stemedb.errors import OpsError\n"
            "from stemedb.ops.textfile import write_drill_metrics\n"
            "try:\n"
            "    write_drill_metrics(pathlib.Path(sys.argv[1]), success=True, rto_s=1.0)\n"
            "except OpsError as e:\n"
            "    print(e.detail); print(e.hint); sys.exit(3)\n")
    script = (f'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && '
              f'exec "{sys.executable}" -c "$2" "$1"')
    out = subprocess.run([*unshare.split(), "sh", "-c", script, "sh", str(collector), code],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    if "mount:" in out.stderr:
        pytest.skip(f"cannot mount here: {out.stderr.strip()}")
    assert out.returncode == 3, out.stdout + out.stderr
    assert "Read-only file system" in out.stdout and "install -d -o stemedb" in out.stdout
    assert os.listdir(collector) == []


# -- the jobs, through the real CLI ----------------------------------------------------------


def stemedb(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEMEDB_")}
    return subprocess.run([sys.executable, "-m", "stemedb", *args], capture_output=True,
                          text=True, timeout=180, cwd=ROOT, env=env, **kw)  # type: ignore[call-overload]


def test_jobs_succeed_and_warn_when_their_metrics_cannot_be_written(tmp_path: Path) -> None:
    src = JournalBuilder(tmp_path / "data").add(200)
    target = tmp_path / "backups"
    (tmp_path / "node-exporter").write_text("")  # a file in the way fails for root too
    blocked = tmp_path / "node-exporter" / "stemedb"
    jobs = [
        ["backup", "create", "--to", str(target), "--data-dir", str(src.data_dir)],
        ["wal", "archive", "--to", str(target), "--data-dir", str(src.data_dir)],
        ["verify", "--data-dir", str(src.data_dir)],
        ["dr-drill", "--from", str(target), "--sample", "3"],
    ]
    for argv in jobs:
        out = stemedb(*argv, "--textfile-dir", str(blocked), "--json")
        assert out.returncode == 0, (argv, out.stdout, out.stderr)
        json.loads(out.stdout)  # stdout stays one JSON document
        lines = out.stderr.splitlines()
        assert lines[0].startswith("warning: cannot write textfile metrics"), (argv, lines)
        assert lines[1].startswith("hint: the job's result is not affected"), (argv, lines)
        assert "Traceback" not in out.stderr
    assert list((target / "backups").iterdir()) and list((target / "wal").glob("*.wal"))
    # a failed job still fails, and still only warns about its metrics
    out = stemedb("backup", "create", "--to", str(target), "--data-dir",
                  str(tmp_path / "nothing"), "--textfile-dir", str(blocked))
    assert out.returncode == 1 and "warning: cannot write textfile metrics" in out.stderr
    assert "error: no journal" in out.stderr and "Traceback" not in out.stderr


def test_as_the_service_user_on_a_stock_collector_directory(shared_dir: Path) -> None:
    """The Debian case end to end: node_exporter's directory belongs to root, 0755; the
    backup runs as the data directory's owner, succeeds, and says how to fix the
    metrics; with the directory the docs create (owned by the job's user) they land.

    The job runs in a forked child as ``nobody`` (the interpreter itself may live where
    ``nobody`` cannot execute it), through click's runner, after a first run as root has
    imported every module it needs."""
    if not ROOT_USER:
        pytest.skip("needs root to run the job as another user")
    src = JournalBuilder(shared_dir / "data").add(100)
    target = shared_dir / "backups"
    argv = ["backup", "create", "--to", str(target), "--data-dir", str(src.data_dir)]
    warm = CliRunner().invoke(main, [*argv, "--textfile-dir", str(shared_dir / "warm")])
    assert warm.exit_code == 0, warm.output
    for path in (shared_dir, *shared_dir.rglob("*")):
        os.chown(path, NOBODY, NOBODY)
    collector = shared_dir / "node-exporter"
    collector.mkdir(mode=0o755)  # root:root 0755, as Debian's package ships it

    def job(textfile_dir: Path) -> Callable[[], object]:
        def run() -> str:
            res = CliRunner().invoke(main, [*argv, "--textfile-dir", str(textfile_dir)])
            return json.dumps([res.exit_code, res.stdout, res.stderr])
        return run

    code, report = run_as_other_user(job(collector))
    assert code == 0, report
    exit_code, stdout, stderr = json.loads(report)
    assert exit_code == 0 and stdout.startswith("backup "), (stdout, stderr)
    assert stderr.startswith(f"warning: cannot write textfile metrics {collector}/"), stderr
    assert "Permission denied" in stderr and "hint: the job's result is not affected" in stderr
    own = collector / "stemedb"
    own.mkdir()
    os.chown(own, NOBODY, NOBODY)  # install -d -o stemedb -g stemedb …/node-exporter/stemedb
    code, report = run_as_other_user(job(own))
    exit_code, stdout, stderr = json.loads(report)
    assert (code, exit_code, stderr) == (0, 0, ""), report
    assert metrics(own / "stemedb_backup.prom")["stemedb_backup_last_run_success"] == 1
    assert (own / "stemedb_backup.prom").stat().st_uid == NOBODY


def test_verify_writes_the_series_the_alerts_read(tmp_path: Path) -> None:
    src = JournalBuilder(tmp_path / "data").add(120)
    collector = tmp_path / "collector"
    started = time.time()
    out = stemedb("verify", "--data-dir", str(src.data_dir), "--textfile-dir", str(collector))
    assert out.returncode == 0, out.stderr
    m = metrics(collector / "stemedb_verify.prom")
    assert m["stemedb_verify_last_run_success"] == 1 and m["stemedb_verify_last_lsn"] == 120
    assert m["stemedb_verify_last_duration_seconds"] > 0
    success = m["stemedb_verify_last_success_timestamp_seconds"]
    assert started - 1 <= success <= time.time() + 1
    assert m["stemedb_verify_last_run_timestamp_seconds"] >= success
    # alerts.yml: StemeDBJobFailed reads stemedb_<task>_last_run_success, task "verify"
    alerts = (ROOT / "deploy" / "prometheus" / "alerts.yml").read_text()
    assert "verify)_last_run_success" in alerts

    segment = sorted((src.data_dir / "journal").glob("*.wal"))[0]
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0x01
    segment.write_bytes(bytes(data))
    out = stemedb("verify", "--data-dir", str(src.data_dir), "--textfile-dir", str(collector))
    assert out.returncode == 1, out.stdout + out.stderr
    m = metrics(collector / "stemedb_verify.prom")
    assert m["stemedb_verify_last_run_success"] == 0
    assert m["stemedb_verify_last_success_timestamp_seconds"] == success  # kept
