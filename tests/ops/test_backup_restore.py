"""backup create → list → verify → restore, through the CLI, to a directory and to S3."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from stemedb.cli import main
from stemedb.datadir import INDEX_FILE, JOURNAL_DIR
from stemedb.journal import Journal, scan
from tests.ops.conftest import JournalBuilder, S3Server, index_digest, reference_digest


def run(*args: str, ok: bool = True, env: dict[str, str] | None = None) -> dict | list:
    result = CliRunner().invoke(main, [*args, "--json"], env=env)
    if ok:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code != 0, result.output
    return json.loads(result.stdout)


def _target(kind: str, tmp_path: Path, s3_server: S3Server) -> tuple[str, list[str]]:
    if kind == "dir":
        return str(tmp_path / "backups"), []
    return f"s3://{s3_server.new_bucket()}/prod", ["--s3-endpoint-url", s3_server.url]


@pytest.mark.parametrize("kind", ["dir", "s3"])
def test_backup_verify_restore_equals_source(
    kind: str, tmp_path: Path, s3_server: S3Server
) -> None:
    builder = JournalBuilder(tmp_path / "src")
    src = builder.add(900)
    target, ep = _target(kind, tmp_path, s3_server)
    m = run("backup", "create", "--to", target, "--data-dir", str(src.data_dir), *ep)
    assert (m["first_lsn"], m["last_lsn"], m["records"]) == (1, 900, 900)
    assert m["last_hash"] == src.records[-1].hash.hex()
    assert m["index_digest"] == index_digest(src.data_dir)
    assert m["first_at"] == src.ats[0] and m["last_at"] == src.ats[-1]
    assert {f["path"] for f in m["files"]} >= {INDEX_FILE, f"{JOURNAL_DIR}/{'1'.zfill(20)}.wal"}

    listed = run("backup", "list", "--from", target, *ep)
    assert [(b["id"], b["complete"], b["last_lsn"]) for b in listed] == [(m["id"], True, 900)]

    report = run("backup", "verify", "--from", target, *ep)
    assert report["ok"] and report["digest"] == m["index_digest"], report
    assert report["records"] == 900 and report["files"] == len(m["files"])

    restored = tmp_path / "restored"
    r = run("restore", "--from", target, "--data-dir", str(restored), "--digest", *ep)
    assert (r["lsn"], r["backup_id"], r["replayed"], r["index_from"]) == (900, m["id"], 0, 900)
    assert r["digest"] == index_digest(src.data_dir) == index_digest(restored)
    assert [x.hash for x in scan(restored / JOURNAL_DIR)] == [x.hash for x in src.records]
    with Journal(restored / JOURNAL_DIR) as j:
        assert j.last_lsn == 900 and j.recovery.truncated_bytes == 0

    # more writes, a second backup; restoring the first by id still gives the first
    builder.add(300)
    m2 = run("backup", "create", "--to", target, "--data-dir", str(src.data_dir), *ep)
    assert m2["last_lsn"] == 1200 and m2["id"] > m["id"]
    r = run(
        "restore",
        "--from",
        target,
        "--backup",
        m["id"],
        "--to-lsn",
        "900",
        "--data-dir",
        str(tmp_path / "first"),
        "--digest",
        *ep,
    )
    assert r["lsn"] == 900 and r["digest"] == m["index_digest"]
    # a target inside the second backup without any WAL: the earlier backup + its journal
    r = run(
        "restore",
        "--from",
        target,
        "--to-lsn",
        "1100",
        "--data-dir",
        str(tmp_path / "mid"),
        "--digest",
        *ep,
    )
    assert (r["lsn"], r["backup_id"]) == (1100, m2["id"])
    assert r["digest"] == reference_digest(src, 1100, tmp_path)


def test_restore_refusals(tmp_path: Path) -> None:
    src = JournalBuilder(tmp_path / "src").add(300)
    target = str(tmp_path / "t")
    run("backup", "create", "--to", target, "--data-dir", str(src.data_dir))

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "something").write_text("x")
    out = run("restore", "--from", target, "--data-dir", str(busy), ok=False)
    assert "is not empty" in out["error"]
    assert (busy / "something").exists()

    out = run(
        "restore", "--from", target, "--to-lsn", "301", "--data-dir", str(tmp_path / "n1"), ok=False
    )
    assert "latest restorable LSN is 300 at time" in out["error"]
    assert not (tmp_path / "n1").exists()

    from stemedb.ops.backup import us_to_time

    late = us_to_time(src.ats[-1] + 1)
    out = run(
        "restore", "--from", target, "--to-time", late, "--data-dir", str(tmp_path / "n2"), ok=False
    )
    assert "latest restorable LSN is 300 at time" in out["error"]
    early = us_to_time(src.ats[0] - 1)
    out = run(
        "restore",
        "--from",
        target,
        "--to-time",
        early,
        "--data-dir",
        str(tmp_path / "n3"),
        ok=False,
    )
    assert "no record was recorded at or before" in out["error"]

    out = run(
        "restore", "--from", str(tmp_path / "empty"), "--data-dir", str(tmp_path / "n4"), ok=False
    )
    assert "no complete backup" in out["error"]

    # an exact time keeps the record recorded at that very microsecond
    r = run(
        "restore",
        "--from",
        target,
        "--to-time",
        us_to_time(src.ats[99]),
        "--data-dir",
        str(tmp_path / "n5"),
    )
    assert r["lsn"] == 100


def test_backup_of_a_stopped_server_with_a_torn_tail(tmp_path: Path) -> None:
    src = JournalBuilder(tmp_path / "src").add(200)
    last = sorted((src.journal_dir).glob("*.wal"))[-1]
    with open(last, "ab") as f:
        f.write(b"\x10\x00\x00\x00partial frame")  # a crash in the middle of a write
    m = run("backup", "create", "--to", str(tmp_path / "t"), "--data-dir", str(src.data_dir))
    assert m["last_lsn"] == 200
    assert run("backup", "verify", "--from", str(tmp_path / "t"))["ok"]


def test_human_output(tmp_path: Path) -> None:
    src = JournalBuilder(tmp_path / "src").add(50)
    target = str(tmp_path / "t")
    runner = CliRunner()
    res = runner.invoke(main, ["backup", "create", "--to", target, "--data-dir", str(src.data_dir)])
    assert res.exit_code == 0 and "LSN 1..50" in res.stdout, res.output
    res = runner.invoke(main, ["backup", "list", "--from", target])
    assert res.exit_code == 0 and "complete" in res.stdout and "1..50" in res.stdout
    res = runner.invoke(main, ["backup", "verify", "--from", target])
    assert res.exit_code == 0 and "OK" in res.stdout
    res = runner.invoke(main, ["restore", "--from", target, "--data-dir", str(tmp_path / "r")])
    assert res.exit_code == 0 and "restored" in res.stdout


def test_a_backup_from_before_an_index_schema_change_verifies_and_restores(
    tmp_path: Path,
) -> None:
    """A backup whose index snapshot and digest come from an older index schema: verify
    checks its files and journal and notes that the index is not compared; restore
    rebuilds the index from the journal."""
    builder = JournalBuilder(tmp_path / "src")
    src = builder.add(300)
    target = tmp_path / "backups"
    m = run("backup", "create", "--to", str(target), "--data-dir", str(src.data_dir))
    assert m["source"]["index_schema"] >= 2
    # what the previous version wrote: an index of schema 1, its own digest, a manifest
    # without index_schema
    folder = target / "backups" / m["id"]
    snapshot = folder / INDEX_FILE
    conn = sqlite3.connect(snapshot)
    conn.execute("DROP INDEX quarantine_severity")
    conn.execute("ALTER TABLE quarantine DROP COLUMN severity")
    conn.execute("ALTER TABLE quarantine DROP COLUMN top_signal")
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    manifest = orjson.loads((folder / "manifest.json").read_bytes())
    del manifest["source"]["index_schema"]
    manifest["index_digest"] = "0" * 64
    for f in manifest["files"]:
        if f["path"] == INDEX_FILE:
            f["sha256"] = hashlib.sha256(snapshot.read_bytes()).hexdigest()
            f["size"] = snapshot.stat().st_size
    manifest["size"] = sum(f["size"] for f in manifest["files"])
    (folder / "manifest.json").write_bytes(orjson.dumps(manifest))

    report = run("backup", "verify", "--from", str(target), "--no-wal")
    assert report["ok"], report
    assert any("schema 1" in n for n in report["notes"]), report["notes"]
    restored = tmp_path / "restored"
    r = run("restore", "--from", str(target), "--data-dir", str(restored), "--digest")
    assert r["lsn"] == 300 and r["index_from"] == 0
    assert r["digest"] == index_digest(src.data_dir) == index_digest(restored)
