"""An index built by the previous schema (version 1, before ``enrollments``, ``tokens``,
the valid-time instants and the quarantine severity) is deleted when opened and rebuilt
from the journal: it ends as the journal says, with or without records only version 2
applies."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from stemedb import records
from stemedb.embedded import EmbeddedStore
from stemedb.settings import JournalSettings
from stemedb.signing import AgentKey
from tests.helpers import assertion_body


def _open(path: Path) -> EmbeddedStore:
    return EmbeddedStore(path, JournalSettings(min_free_bytes=0))


def _write(path: Path, with_revocation: bool) -> str:
    key = AgentKey.generate()
    body = assertion_body(key)
    payloads = [records.SignedWrite(records.ASSERT, body, key.sign_b64(body), 1_000).encode()]
    if with_revocation:
        payloads.append(records.admin_record("agent.revoke", "admin:test", at=2_000,
                                             agent_id=key.agent_id, reason="leaked"))
    store = _open(path)
    try:
        store.submit(payloads).result(timeout=30)
        return store.digest()
    finally:
        store.close()


def _make_version_1(path: Path) -> None:
    conn = sqlite3.connect(path / "index.sqlite3")
    try:
        conn.execute("DROP TABLE enrollments")
        conn.execute("DROP TABLE tokens")
        conn.execute("ALTER TABLE assertions DROP COLUMN valid_from_us")
        conn.execute("ALTER TABLE assertions DROP COLUMN valid_until_us")
        conn.execute("PRAGMA user_version=1")
        conn.commit()
    finally:
        conn.close()


def _version(path: Path) -> int:
    conn = sqlite3.connect(path / "index.sqlite3")
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def test_a_version_1_index_is_rebuilt(tmp_path: Path) -> None:
    digest = _write(tmp_path, with_revocation=False)
    _make_version_1(tmp_path)
    store = _open(tmp_path)
    try:
        assert store.digest() == digest
        assert store.reads.enrollments() == []
    finally:
        store.close()
    assert _version(tmp_path) == 2


def test_a_version_1_index_that_missed_enrollment_records_is_rebuilt(tmp_path: Path) -> None:
    digest = _write(tmp_path, with_revocation=True)
    _make_version_1(tmp_path)
    store = _open(tmp_path)
    try:
        assert store.digest() == digest
        assert [e["reason"] for e in store.reads.enrollments()] == ["leaked"]
    finally:
        store.close()
    assert _version(tmp_path) == 2
