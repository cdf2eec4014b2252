"""An index built by an earlier schema (version 1, before ``enrollments``, ``tokens``,
the valid-time instants and the quarantine severity; version 2, with the write answers
as JSON text and the five-column duplicate index) is deleted when opened and rebuilt
from the journal: it ends as the journal says, with or without records only a later
version applies. And the schema cannot change without a new version number."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from stemedb import records
from stemedb.embedded import EmbeddedStore
from stemedb.index.schema import DDL, SCHEMA_VERSION
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
    assert _version(tmp_path) == SCHEMA_VERSION


def test_a_version_1_index_that_missed_enrollment_records_is_rebuilt(tmp_path: Path) -> None:
    digest = _write(tmp_path, with_revocation=True)
    _make_version_1(tmp_path)
    store = _open(tmp_path)
    try:
        assert store.digest() == digest
        assert [e["reason"] for e in store.reads.enrollments()] == ["leaked"]
    finally:
        store.close()
    assert _version(tmp_path) == SCHEMA_VERSION


def _make_version_2(path: Path) -> None:
    conn = sqlite3.connect(path / "index.sqlite3")
    try:
        conn.execute("DROP INDEX assertions_dup")
        conn.execute("ALTER TABLE assertions DROP COLUMN dup_key")
        conn.execute("DROP TABLE writes")
        conn.execute("CREATE TABLE writes (id TEXT PRIMARY KEY, agent_id TEXT NOT NULL,"
                     " nonce TEXT NOT NULL, kind TEXT NOT NULL, lsn INTEGER NOT NULL,"
                     " outcome TEXT NOT NULL, UNIQUE (agent_id, nonce)) STRICT")
        conn.execute("PRAGMA user_version=2")
        conn.commit()
    finally:
        conn.close()


def test_a_version_2_index_is_rebuilt(tmp_path: Path) -> None:
    digest = _write(tmp_path, with_revocation=True)
    _make_version_2(tmp_path)
    store = _open(tmp_path)
    try:
        assert store.digest() == digest
        assert store.reads.writes_by_nonce([("nobody", "none")]) == {}
    finally:
        store.close()
    assert _version(tmp_path) == SCHEMA_VERSION


# The schema each version number stands for: an index of the same number is opened as
# it is, so a change to the DDL must come with a new number (and a new line here).
DDL_SHA256 = {3: "090fcf4fb08f8df5e6821949ebfe4a88640be2ce7718c6a342db34303410e246"}


def test_the_schema_has_not_changed_without_a_new_version() -> None:
    assert hashlib.sha256(DDL.encode()).hexdigest() == DDL_SHA256[SCHEMA_VERSION]
