"""``stemedb wal archive``: idempotent, resumable after a kill, verified, never deleting,
refusing to mix histories; lag and textfile metrics."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from stemedb import records
from stemedb.cli import main
from stemedb.errors import OpsError
from stemedb.journal import Journal
from stemedb.ops.archive import archive_once, archive_status, load_state, verify_archive
from stemedb.ops.restore import restore
from stemedb.ops.targets import open_target
from tests.helpers import ROOT
from tests.ops.conftest import JournalBuilder, S3Server


def _big_journal(data_dir: Path, segments: int, segment_bytes: int = 256 * 1024) -> None:
    """A journal of ``segments`` sealed segments of large (unsigned) records: what the
    archiver reads is only the framing and each payload's recorded time."""
    per = 8
    pad = "x" * (segment_bytes // per)
    at = time.time_ns() // 1000 - 10_000_000
    with Journal(data_dir / "journal", segment_bytes=segment_bytes) as j:
        for _ in range(segments + 1):
            payloads = []
            for _ in range(per):
                at += 1000
                payloads.append(orjson.dumps({"t": "note", "at": at, "pad": pad}))
            j.append(payloads)


def _objects(s3, bucket: str, prefix: str) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    out = {}
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        out[obj["Key"]] = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


def _local_segments(data_dir: Path) -> dict[str, bytes]:
    paths = sorted((data_dir / "journal").glob("*.wal"))
    return {p.name: p.read_bytes() for p in paths[:-1]}  # the last one is active


def test_archive_is_idempotent_and_never_deletes(tmp_path: Path, s3_server: S3Server) -> None:
    src = JournalBuilder(tmp_path / "src").add(900)
    target = open_target(f"s3://{s3_server.new_bucket()}/a", s3_server.url)
    before = archive_status(src.data_dir, target)
    sealed = before["sealed_segments"]
    assert sealed >= 5 and before["lag_segments"] == sealed and before["lag_seconds"] > 0
    assert before["last_archived_lsn"] == 0
    local = sorted(p.name for p in src.journal_dir.iterdir())

    first = archive_once(src.data_dir, target)
    assert len(first.archived) == sealed and first.skipped == 0
    second = archive_once(src.data_dir, target)
    assert (second.archived, second.adopted, second.skipped) == ([], [], sealed)
    assert sorted(p.name for p in src.journal_dir.iterdir()) == local
    status = archive_status(src.data_dir, target)
    assert (status["lag_segments"], status["lag_seconds"]) == (0, 0.0)
    state = load_state(target)
    assert status["last_archived_lsn"] == max(s.last_lsn for s in state.segments.values())
    assert status["rpo_seconds"] > 0
    for name, data in _local_segments(src.data_dir).items():
        seg = state.segments[name]
        assert (seg.size, seg.sha256) == (len(data), hashlib.sha256(data).hexdigest())


def test_archive_resumes_after_being_killed_mid_run(tmp_path: Path, s3_server: S3Server) -> None:
    data_dir = tmp_path / "src"
    _big_journal(data_dir, segments=40, segment_bytes=128 * 1024)
    bucket = s3_server.new_bucket()
    url = f"s3://{bucket}/k"
    s3 = s3_server.client()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stemedb",
            "wal",
            "archive",
            "--to",
            url,
            "--data-dir",
            str(data_dir),
        ],
        env={**os.environ, **s3_server.env},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if s3.list_objects_v2(Bucket=bucket, Prefix="k/wal/").get("KeyCount", 0) >= 3:
            break
        time.sleep(0.01)
    assert proc.poll() is None, proc.communicate()[0]
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    uploaded = s3.list_objects_v2(Bucket=bucket, Prefix="k/wal/").get("KeyCount", 0)
    assert 3 <= uploaded < 40

    target = open_target(url, s3_server.url)
    report = archive_once(data_dir, target)
    assert len(report.archived) + len(report.adopted) + report.skipped == 40
    assert len(report.archived) + len(report.adopted) > 0
    check = verify_archive(target, tmp_path / "scratch")
    assert not check.faults and check.segments == 40, check
    stored = _objects(s3, bucket, "k/wal/0")
    assert {k.rsplit("/", 1)[1]: v for k, v in stored.items()} == _local_segments(data_dir)


def test_leftovers_of_interrupted_uploads_never_count(tmp_path: Path, s3_server: S3Server) -> None:
    src = JournalBuilder(tmp_path / "src").add(700)
    segments = _local_segments(src.data_dir)
    names = sorted(segments)
    # S3: an interrupted multipart upload, and a short object that no run recorded
    bucket = s3_server.new_bucket()
    s3 = s3_server.client()
    upload = s3.create_multipart_upload(Bucket=bucket, Key=f"p/wal/{names[0]}")
    s3.upload_part(
        Bucket=bucket,
        Key=f"p/wal/{names[0]}",
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=segments[names[0]][:1000],
    )
    s3.put_object(Bucket=bucket, Key=f"p/wal/{names[1]}", Body=segments[names[1]][:-7])
    target = open_target(f"s3://{bucket}/p", s3_server.url)
    report = archive_once(src.data_dir, target)
    assert sorted(report.archived) == names
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")  # stale: aborted
    assert not verify_archive(target, tmp_path / "s1").faults

    # a directory: a .partial file from a killed copy, and a short file not recorded
    root = tmp_path / "dir-target"
    (root / "wal").mkdir(parents=True)
    partial = root / "wal" / (names[0] + ".partial")
    partial.write_bytes(segments[names[0]][:500])
    (root / "wal" / names[1]).write_bytes(segments[names[1]][:100])
    old = time.time() - 7200
    os.utime(partial, (old, old))
    local = open_target(str(root))
    assert [o.key for o in local.list("wal/")] == [f"wal/{names[1]}"]
    report = archive_once(src.data_dir, local)
    assert sorted(report.archived) == names and not partial.exists()
    for name in names:
        assert (root / "wal" / name).read_bytes() == segments[name]
    assert not verify_archive(local, tmp_path / "s2").faults
    # an object already there and identical is adopted, not uploaded again
    state = root / "wal" / "archive-state.json"
    state.unlink()
    report = archive_once(src.data_dir, local)
    assert (report.archived, sorted(report.adopted)) == ([], names)


def test_a_diverged_history_is_refused(tmp_path: Path) -> None:
    builder = JournalBuilder(tmp_path / "src")
    src = builder.add(900)
    target = open_target(str(tmp_path / "t"))
    from stemedb.ops.backup import create_backup

    create_backup(src.data_dir, target)
    archive_once(src.data_dir, target)
    # restore to an earlier point, then write new records there: another history
    restored = restore(target, tmp_path / "old", to_lsn=500)
    fork = JournalBuilder(Path(restored.data_dir), seed=99)
    fork.add(600)
    with pytest.raises(OpsError, match="diverged from the archive"):
        archive_once(Path(restored.data_dir), target)
    report = archive_once(Path(restored.data_dir), open_target(str(tmp_path / "t2")))
    assert report.archived


def _metrics(path: Path) -> dict[str, float]:
    return {
        s.name: s.value for f in text_string_to_metric_families(path.read_text()) for s in f.samples
    }


def test_cli_textfile_metrics_and_watch(tmp_path: Path) -> None:
    builder = JournalBuilder(tmp_path / "src")
    src = builder.add(400)
    target = str(tmp_path / "t")
    textfile = tmp_path / "textfile"
    res = CliRunner().invoke(
        main,
        [
            "wal",
            "archive",
            "--to",
            target,
            "--data-dir",
            str(src.data_dir),
            "--textfile-dir",
            str(textfile),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    m = _metrics(textfile / "stemedb_wal_archive.prom")
    assert m["stemedb_wal_archive_lag_segments"] == 0 == out["status"]["lag_segments"]
    assert m["stemedb_wal_archive_lag_seconds"] == 0
    assert m["stemedb_wal_archive_last_archived_lsn"] == out["status"]["last_archived_lsn"]
    assert m["stemedb_wal_archive_last_run_success"] == 1
    success = m["stemedb_wal_archive_last_success_timestamp_seconds"]
    assert abs(success - time.time()) < 60

    res = CliRunner().invoke(
        main,
        [
            "backup",
            "create",
            "--to",
            target,
            "--data-dir",
            str(src.data_dir),
            "--textfile-dir",
            str(textfile),
        ],
    )
    assert res.exit_code == 0, res.output
    b = _metrics(textfile / "stemedb_backup.prom")
    assert b["stemedb_backup_last_lsn"] == 400 and b["stemedb_backup_last_size_bytes"] > 0
    assert b["stemedb_backup_last_duration_seconds"] > 0
    assert b["stemedb_backup_last_success_timestamp_seconds"] > 0

    # a failed run keeps the last success and says it failed
    res = CliRunner().invoke(
        main,
        [
            "wal",
            "archive",
            "--to",
            target,
            "--data-dir",
            str(tmp_path / "nothing"),
            "--textfile-dir",
            str(textfile),
        ],
    )
    assert res.exit_code == 1 and "no journal" in res.output
    m = _metrics(textfile / "stemedb_wal_archive.prom")
    assert m["stemedb_wal_archive_last_run_success"] == 0
    assert m["stemedb_wal_archive_last_success_timestamp_seconds"] == success
    assert not list(textfile.glob("*.prom.*"))  # written by tmp + rename, nothing left

    # --watch picks up segments sealed while it runs, and stops cleanly on SIGTERM
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stemedb",
            "wal",
            "archive",
            "--to",
            target,
            "--data-dir",
            str(src.data_dir),
            "--watch",
            "--interval",
            "0.2",
            "--json",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(1.0)
        builder.add(600)
        want = sorted(_local_segments(src.data_dir))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = load_state(open_target(target))
            if sorted(state.segments) == want:
                break
            time.sleep(0.1)
        assert sorted(state.segments) == want
    finally:
        proc.send_signal(signal.SIGTERM)
        out_bytes, err_bytes = proc.communicate(timeout=30)
    assert proc.returncode == 0, err_bytes.decode()
    rounds = [json.loads(line) for line in out_bytes.decode().splitlines() if line.strip()]
    assert any(r.get("archived") for r in rounds)
    assert records.ASSERT  # the payloads archived above are real signed writes
