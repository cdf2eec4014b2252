"""An index built by an earlier schema (version 1, before ``enrollments``, ``tokens``,
the valid-time instants and the quarantine severity; version 2, with the write answers
as JSON text and the five-column duplicate index) is deleted when opened and rebuilt
from the journal: it ends as the journal says, with or without records only a later
version applies. And the schema cannot change without a new version number."""

from __future__ import annotations

import base64
import hashlib
import sqlite3
from collections.abc import Callable
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


# What each earlier schema lacked, or had instead, undone on a current index.
DOWNGRADES = {
    1: ["DROP TABLE enrollments", "DROP TABLE tokens",
        "ALTER TABLE assertions DROP COLUMN valid_from_us",
        "ALTER TABLE assertions DROP COLUMN valid_until_us"],
    2: ["DROP VIEW writes", "DROP INDEX assertions_dup",
        "ALTER TABLE assertions DROP COLUMN dup_key",
        "CREATE TABLE writes (id TEXT PRIMARY KEY, agent_id TEXT NOT NULL,"
        " nonce TEXT NOT NULL, kind TEXT NOT NULL, lsn INTEGER NOT NULL,"
        " outcome TEXT NOT NULL, UNIQUE (agent_id, nonce)) STRICT"],
    3: [statement for table in ("assertions", "retractions") for statement in (
        f"ALTER TABLE {table} ADD COLUMN body TEXT NOT NULL DEFAULT ''",
        f"ALTER TABLE {table} ADD COLUMN signature TEXT NOT NULL DEFAULT ''")],
}


def _version(path: Path) -> int:
    conn = sqlite3.connect(path / "index.sqlite3")
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def _rebuilt(path: Path, version: int, with_revocation: bool,
             check: Callable[[EmbeddedStore], object]) -> None:
    """Writes, makes the index look like ``version``'s, reopens: the index is rebuilt
    to the same digest and the current version, and ``check`` holds on it."""
    digest = _write(path, with_revocation)
    conn = sqlite3.connect(path / "index.sqlite3")
    try:
        for statement in DOWNGRADES[version]:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version={version}")
        conn.commit()
    finally:
        conn.close()
    store = _open(path)
    try:
        assert store.digest() == digest
        check(store)
    finally:
        store.close()
    assert _version(path) == SCHEMA_VERSION


def test_a_version_1_index_is_rebuilt(tmp_path: Path) -> None:
    def no_enrollments(store: EmbeddedStore) -> None:
        assert store.reads.enrollments() == []

    _rebuilt(tmp_path, 1, False, no_enrollments)


def test_a_version_1_index_that_missed_enrollment_records_is_rebuilt(tmp_path: Path) -> None:
    def the_revocation(store: EmbeddedStore) -> None:
        assert [e["reason"] for e in store.reads.enrollments()] == ["leaked"]

    _rebuilt(tmp_path, 1, True, the_revocation)


def test_a_version_2_index_is_rebuilt(tmp_path: Path) -> None:
    def nonces_answer(store: EmbeddedStore) -> None:
        assert store.reads.writes_by_nonce([("nobody", "none")]) == {}

    _rebuilt(tmp_path, 2, True, nonces_answer)


def test_a_version_3_index_is_rebuilt_and_reads_bodies_from_the_journal(tmp_path: Path
                                                                       ) -> None:
    def bodies_from_the_journal(store: EmbeddedStore) -> None:
        (row,) = store.index.query("SELECT id, body, signature FROM assertions", [])
        assert hashlib.sha256(row["body"].encode()).hexdigest() == row["id"]
        assert len(base64.b64decode(row["signature"])) == 64

    _rebuilt(tmp_path, 3, False, bodies_from_the_journal)


# The schema each version number stands for: an index of the same number is opened as
# it is, so a change to the DDL must come with a new number (and a new line here).
DDL_SHA256 = {3: "090fcf4fb08f8df5e6821949ebfe4a88640be2ce7718c6a342db34303410e246",
              4: "00e7f12a73ad4a1cdb99f81132dd532d1ce336abad698fa757d1b2485b97767e"}


def test_the_schema_has_not_changed_without_a_new_version() -> None:
    assert hashlib.sha256(DDL.encode()).hexdigest() == DDL_SHA256[SCHEMA_VERSION]
