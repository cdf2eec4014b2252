"""An index failure is never a success: the batch is durable but answered 503, the
store refuses writes while its index is behind, and catches up from the journal by
itself once the cause clears, after which a retry is answered with the original
outcome. The failure here is a real one of SQLite (a trigger that aborts)."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from pathlib import Path

import pytest

from stemedb.datadir import INDEX_FILE
from stemedb.engine import Database
from stemedb.errors import StemeError, Unavailable
from stemedb.settings import load_settings
from stemedb.signing import AgentKey
from tests.helpers import assertion_body

BOOM = ("CREATE TRIGGER boom BEFORE INSERT ON assertions WHEN NEW.subject = 'poison'"
        " BEGIN SELECT RAISE(ABORT, 'injected index failure'); END")


def _write(db: Database, key: AgentKey, body: bytes) -> tuple[int, dict[str, object]]:
    result = asyncio.run(db.write("assert", body, key.sign_b64(body)))
    return result.status, result.body


def test_a_failed_apply_is_refused_then_healed_without_restart(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = Database(load_settings(env={}, overrides={"server.data_dir": str(tmp_path / "d")}))
    key = AgentKey.generate()
    try:
        assert _write(db, key, assertion_body(key, subject="before"))[0] == 201
        with sqlite3.connect(tmp_path / "d" / INDEX_FILE) as c:
            c.execute(BOOM)
        poison = assertion_body(key, subject="poison")
        with pytest.raises(Unavailable) as refused:
            _write(db, key, poison)
        assert refused.value.status == 503 and "injected index failure" in refused.value.detail
        assert "injected index failure" in caplog.text  # the cause, logged unmasked
        ready, why = db.readiness()
        assert not ready and "injected index failure" in why
        with pytest.raises(StemeError) as later:  # writes wait for the index to catch up
            _write(db, key, assertion_body(key, subject="later"))
        assert later.value.status == 503
        assert db.reads.assertion(hashlib.sha256(poison).hexdigest()) is None  # not served
        with sqlite3.connect(tmp_path / "d" / INDEX_FILE) as c:
            c.execute("DROP TRIGGER boom")  # the cause clears
        deadline = time.monotonic() + 10
        while not db.readiness()[0]:
            assert time.monotonic() < deadline, db.readiness()
            time.sleep(0.05)
        status, body = _write(db, key, poison)  # the retry: the original outcome
        assert status == 200 and body["status"] == "accepted"
        assert db.get_assertion(str(body["id"]))["subject"] == "poison"
        assert _write(db, key, assertion_body(key, subject="after"))[0] == 201
        payloads = [r.payload for r in db.store.records()]
        assert sum(b"poison" in p for p in payloads) == 1  # journaled once
        assert db.reads.applied_lsn == db.store.last_lsn
    finally:
        db.close()
