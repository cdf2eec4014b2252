"""Damage in a target is found and named: a flipped byte, a truncated object, a missing
segment, a backup without its manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from stemedb.cli import main
from stemedb.errors import OpsError
from stemedb.ops.archive import archive_once, load_state
from stemedb.ops.backup import create_backup, list_backups
from stemedb.ops.restore import restore, verify_backup
from stemedb.ops.targets import open_target
from tests.ops.conftest import JournalBuilder, S3Server


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The same data directory at LSN 600 (for the backup) and at LSN 1500."""
    root = tmp_path_factory.mktemp("damage")
    builder = JournalBuilder(root / "src")
    builder.add(600)
    shutil.copytree(builder.source.data_dir, root / "at600")
    return root / "at600", builder.add(900)


@pytest.fixture
def archived(sources, s3_server: S3Server):  # type: ignore[no-untyped-def]
    at600, src = sources
    bucket = s3_server.new_bucket()
    target = open_target(f"s3://{bucket}/db", s3_server.url)
    m = create_backup(at600, target)
    archive_once(src.data_dir, target)
    return src, target, m, s3_server.client(), bucket


def _cli_verify(target_url: str, endpoint: str) -> tuple[int, dict]:
    res = CliRunner().invoke(
        main, ["backup", "verify", "--from", target_url, "--s3-endpoint-url", endpoint, "--json"]
    )
    return res.exit_code, json.loads(res.stdout)


def test_flipped_byte_in_a_backup_segment_is_named(
    archived, s3_server: S3Server, tmp_path: Path
) -> None:
    src, target, m, s3, bucket = archived
    seg = m.files[1].path
    key = f"db/backups/{m.id}/{seg}"
    data = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[len(data) // 2] ^= 0x40
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(data))
    code, report = _cli_verify(target.url, s3_server.url)
    assert code == 1 and not report["ok"]
    assert report["faults"] == [f"{target.url}/backups/{m.id}/{seg}: SHA-256 mismatch (corrupt)"]
    with pytest.raises(OpsError, match=f"backups/{m.id}/{seg}: SHA-256 mismatch"):
        restore(target, tmp_path / "r")


def test_truncated_archived_segment_is_named(archived, s3_server: S3Server, tmp_path: Path) -> None:
    src, target, m, s3, bucket = archived
    seg = load_state(target).ordered()[-2]
    key = f"db/wal/{seg.name}"
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=key, Body=data[: len(data) - 100])
    code, report = _cli_verify(target.url, s3_server.url)
    assert code == 1
    assert (
        f"{target.url}/wal/{seg.name}: {seg.size - 100} bytes, expected {seg.size} "
        "(truncated or replaced)" in report["faults"]
    )
    with pytest.raises(OpsError, match=f"wal/{seg.name}: {seg.size - 100} bytes, expected"):
        restore(target, tmp_path / "r")
    # a target before the damaged segment still restores
    r = restore(target, tmp_path / "ok", to_lsn=seg.first_lsn - 1)
    assert r.lsn == seg.first_lsn - 1


def test_flipped_byte_in_the_index_snapshot_is_named(
    archived, s3_server: S3Server, tmp_path: Path
) -> None:
    src, target, m, s3, bucket = archived
    key = f"db/backups/{m.id}/index.sqlite3"
    data = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[-10] ^= 1
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(data))
    code, report = _cli_verify(target.url, s3_server.url)
    assert code == 1
    assert (
        f"{target.url}/backups/{m.id}/index.sqlite3: SHA-256 mismatch (corrupt)" in report["faults"]
    )


def test_missing_archived_segment_is_named(archived, s3_server: S3Server, tmp_path: Path) -> None:
    src, target, m, s3, bucket = archived
    segs = load_state(target).ordered()
    gone = segs[len(segs) // 2 + 1]
    assert gone.first_lsn > m.last_lsn
    s3.delete_object(Bucket=bucket, Key=f"db/wal/{gone.name}")
    code, report = _cli_verify(target.url, s3_server.url)
    assert code == 1
    assert f"{target.url}/wal/{gone.name}: missing" in report["faults"]
    # the latest restore refuses and names the gap; up to the gap it works
    with pytest.raises(OpsError, match=f"gap: segment {gone.name} is missing"):
        restore(target, tmp_path / "r")
    with pytest.raises(
        OpsError,
        match=f"latest restorable LSN is {gone.first_lsn - 1} at time"
        f".*gap: segment {gone.name} is missing",
    ):
        restore(target, tmp_path / "r", to_lsn=gone.last_lsn + 1)
    r = restore(target, tmp_path / "ok", to_lsn=gone.first_lsn - 1)
    assert r.lsn == gone.first_lsn - 1
    # the archive is made whole again by the next archive run
    archive_once(src.data_dir, target)
    assert verify_backup(target).ok
    assert verify_backup(target).wal.segments == len(segs)


def test_missing_backup_segment_and_missing_manifest(
    archived, s3_server: S3Server, tmp_path: Path
) -> None:
    src, target, m, s3, bucket = archived
    seg = m.files[0].path
    s3.delete_object(Bucket=bucket, Key=f"db/backups/{m.id}/{seg}")
    code, report = _cli_verify(target.url, s3_server.url)
    assert code == 1 and f"{target.url}/backups/{m.id}/{seg}: missing" in report["faults"]

    s3.delete_object(Bucket=bucket, Key=f"db/backups/{m.id}/manifest.json")
    infos = list_backups(target)
    assert [(b.id, b.complete) for b in infos] == [(m.id, False)]
    code, report = _cli_verify(target.url, s3_server.url)
    assert code == 1 and report["faults"][0] == f"no complete backup at {target.url}"
    res = CliRunner().invoke(
        main,
        [
            "backup",
            "verify",
            "--from",
            target.url,
            "--backup",
            m.id,
            "--s3-endpoint-url",
            s3_server.url,
            "--json",
        ],
    )
    assert res.exit_code == 1 and "has no manifest.json" in res.stdout
    with pytest.raises(OpsError, match="no complete backup"):
        restore(target, tmp_path / "r")
