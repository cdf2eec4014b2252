"""``stemedb storage copy``: the journal moves record by record, checked, into an empty
store that rebuilds the same index (embedded to embedded here; PostgreSQL in
tests/cluster)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from stemedb import records
from stemedb.datadir import JOURNAL_DIR
from stemedb.embedded import EmbeddedStore
from stemedb.engine import Database
from stemedb.errors import OpsError
from stemedb.journal import Journal
from stemedb.ops.copy import copy_store
from stemedb.settings import load_settings
from stemedb.signing import AgentKey
from tests.helpers import assertion_body


def fill(data_dir: Path, n: int = 30) -> str:
    """A data directory with signed writes, a quarantined one and admin records; returns
    its index digest."""
    db = Database(load_settings(env={}, overrides={"server.data_dir": str(data_dir)}))
    try:
        key = AgentKey.generate()

        async def go() -> None:
            for i in range(n):
                body = assertion_body(key, subject=f"city {i}", object=f"country {i % 4}")
                await db.write("assert", body, key.sign_b64(body))
            junk = assertion_body(key, subject="asdfasdf", predicate="qwerty",
                                  object="!!!!!!!!!!!!!!!!")
            await db.write("assert", junk, key.sign_b64(junk))
            await db.admin.set_thresholds({"quality_threshold": 0.55}, "admin:test")

        asyncio.run(go())
        return db.store.digest()
    finally:
        db.close()


def test_a_copy_has_the_same_journal_and_the_same_index(tmp_path: Path) -> None:
    digest = fill(tmp_path / "src")
    report = copy_store(str(tmp_path / "src"), str(tmp_path / "dst"))
    assert report.records == 32 and report.signed == 31 and report.digest == digest
    src, dst = (EmbeddedStore(tmp_path / p) for p in ("src", "dst"))
    try:
        assert [(r.lsn, r.hash) for r in src.records()] == \
            [(r.lsn, r.hash) for r in dst.records()]
        assert dst.digest() == digest
    finally:
        src.close()
        dst.close()


def test_a_copy_refuses_a_destination_with_data_and_a_live_source(tmp_path: Path) -> None:
    fill(tmp_path / "src", 3)
    fill(tmp_path / "other", 2)
    with pytest.raises(OpsError, match="not empty"):
        copy_store(str(tmp_path / "src"), str(tmp_path / "other"))
    live = EmbeddedStore(tmp_path / "src")  # holds the lock, as a server does
    try:
        with pytest.raises(OpsError, match="server is running"):
            copy_store(str(tmp_path / "src"), str(tmp_path / "dst"))
    finally:
        live.close()
    with pytest.raises(OpsError, match="no journal"):
        copy_store(str(tmp_path / "nothing"), str(tmp_path / "dst2"))


def test_a_record_whose_signature_does_not_verify_stops_the_copy(tmp_path: Path) -> None:
    key = AgentKey.generate()
    body = assertion_body(key)
    forged = assertion_body(key, subject="forged")
    with Journal(tmp_path / "src" / JOURNAL_DIR) as j:
        j.append([records.SignedWrite(records.ASSERT, body, key.sign_b64(body), 1).encode(),
                  records.SignedWrite(records.ASSERT, forged, key.sign_b64(body), 2).encode()])
    with pytest.raises(OpsError, match="LSN 2"):
        copy_store(str(tmp_path / "src"), str(tmp_path / "dst"))


def test_the_command_prints_the_report(tmp_path: Path) -> None:
    digest = fill(tmp_path / "src", 3)
    out = subprocess.run([sys.executable, "-m", "stemedb", "storage", "copy", "--from",
                          str(tmp_path / "src"), "--to", str(tmp_path / "dst"), "--json"],
                         capture_output=True, text=True, check=True).stdout
    report = orjson.loads(out)
    assert report["ok"] and report["records"] == 5 and report["digest"] == digest
    again = subprocess.run([sys.executable, "-m", "stemedb", "storage", "copy", "--from",
                            str(tmp_path / "src"), "--to", str(tmp_path / "dst")],
                           capture_output=True, text=True)
    assert again.returncode == 1 and "not empty" in again.stderr
    assert "Traceback" not in again.stderr
