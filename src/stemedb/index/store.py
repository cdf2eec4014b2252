"""The SQLite index: derived state, a deterministic function of the journal.

``apply`` takes journal records in LSN order and writes their rows and the applied LSN
in ONE transaction, so the index is always exactly "the journal up to applied_lsn".
One writer connection (used by the journal's commit thread and at start-up) and one
read connection per reading thread (WAL mode lets them run beside the writer).
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .. import records
from ..model import (
    Assertion,
    Retraction,
    quarantine_id,
    trusted_assertion,
    trusted_retraction,
    write_id,
)
from .schema import DDL, SCHEMA_VERSION

log = logging.getLogger("stemedb.index")


@dataclass(frozen=True, slots=True)
class Entry:
    """One journal record to apply: its LSN, chain hash, decoded payload, and (on the
    live path) the already-parsed write so it need not be parsed twice."""

    lsn: int
    hash: bytes
    data: dict[str, Any]
    parsed: Any = None


_SECONDARY = re.compile(r"CREATE INDEX IF NOT EXISTS (\w+)")


class IndexStore:
    """``bulk=True`` is for building a fresh index file that is swapped in only when
    complete (reindex, restore): no rollback journal, no syncs, and secondary indexes
    built once at ``finish_bulk()`` instead of row by row."""

    def __init__(self, path: str | Path, *, bulk: bool = False) -> None:
        self.path = Path(path)
        self.bulk = bulk
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._write = self._connect()
        self._write_lock = threading.Lock()
        self._migrate()
        if bulk:
            self._write.execute("PRAGMA journal_mode=OFF")
            self._write.execute("PRAGMA synchronous=OFF")
            for name in _SECONDARY.findall(DDL):
                self._write.execute(f"DROP INDEX IF EXISTS {name}")

    def finish_bulk(self) -> None:
        """Build the secondary indexes and return to the normal, crash-safe mode."""
        if not self.bulk:
            return
        self._write.executescript(DDL)
        self._write.execute("PRAGMA journal_mode=WAL")
        self._write.execute("PRAGMA synchronous=NORMAL")
        self.bulk = False

    # -- connections ----------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                               cached_statements=256)
        conn.execute("PRAGMA journal_mode=WAL")
        # The index is derived: the journal is durable, the applied LSN is in the same
        # transaction as its rows, so losing the last index transactions on power loss
        # only means catching up again from the journal at start-up.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA mmap_size=268435456")
        conn.row_factory = sqlite3.Row
        return conn

    @property
    def reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._write_lock:
                self._readers.append(conn)
        return conn

    def _migrate(self) -> None:
        version = self._write.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise RuntimeError(f"index schema {version} is not {SCHEMA_VERSION}")
        self._write.executescript(DDL)
        self._write.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        with self._write_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
            self._write.close()

    # -- meta -------------------------------------------------------------------------

    def _meta(self, conn: sqlite3.Connection, key: str) -> str | None:
        row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def applied(self) -> tuple[int, bytes]:
        """(applied LSN, chain hash of that record) as committed in the index."""
        lsn = self._meta(self._write, "applied_lsn")
        h = self._meta(self._write, "applied_hash")
        return (int(lsn) if lsn else 0, bytes.fromhex(h) if h else b"")

    @property
    def applied_lsn(self) -> int:
        lsn = self._meta(self.reader, "applied_lsn")
        return int(lsn) if lsn else 0

    # -- apply ------------------------------------------------------------------------

    def apply(self, entries: Sequence[Entry]) -> None:
        """Apply records in LSN order in one transaction, recording the applied LSN."""
        if not entries:
            return
        with self._write_lock:
            c = self._write
            c.execute("BEGIN IMMEDIATE")
            try:
                c.executemany("INSERT OR REPLACE INTO lsn_time (lsn, at) VALUES (?, ?)",
                              [(e.lsn, int(e.data["at"])) for e in entries])
                for e in entries:
                    _APPLY[e.data["t"]](c, e)
                last = entries[-1]
                c.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                              [("applied_lsn", str(last.lsn)), ("applied_hash", last.hash.hex())])
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    def rebuild_from(self, entries: Iterable[Entry], batch: int = 2000) -> int:
        """Apply a stream of entries in transactions of ``batch`` records."""
        n = 0
        chunk: list[Entry] = []
        for e in entries:
            chunk.append(e)
            if len(chunk) >= batch:
                self.apply(chunk)
                n += len(chunk)
                chunk = []
        self.apply(chunk)
        return n + len(chunk)

    # -- reads ------------------------------------------------------------------------

    def get_write(self, wid: str) -> dict[str, Any] | None:
        row = self.reader.execute(
            "SELECT agent_id, nonce, kind, lsn, outcome FROM writes WHERE id=?", (wid,)
        ).fetchone()
        return None if row is None else dict(row)

    def nonce_owner(self, agent_id: str, nonce: str) -> str | None:
        row = self.reader.execute(
            "SELECT id FROM writes WHERE agent_id=? AND nonce=?", (agent_id, nonce)
        ).fetchone()
        return None if row is None else str(row[0])

    def get_assertion_row(self, aid: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.reader.execute(
            "SELECT * FROM assertions WHERE id=?", (aid,)
        ).fetchone()
        return row

    def lsn_at(self, at_us: int) -> int:
        """Greatest LSN recorded at or before ``at_us`` (0 if none)."""
        row = self.reader.execute(
            "SELECT max(lsn) FROM lsn_time WHERE at <= ?", (at_us,)
        ).fetchone()
        return int(row[0] or 0)

    def query(self, sql: str, params: Sequence[Any]) -> list[sqlite3.Row]:
        return self.reader.execute(sql, params).fetchall()

    def count(self, table: str) -> int:
        assert table in ("assertions", "retractions", "writes")
        return int(self.reader.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def canonical_dump(self) -> Iterator[bytes]:
        """Every row of every base table in a fixed order: what ``digest`` hashes."""
        conn = self.reader
        for table, order in (("meta", "key"), ("lsn_time", "lsn"), ("writes", "id"),
                             ("assertions", "id"), ("retractions", "id"), ("quarantine", "id"),
                             ("allowlist", "agent_id"), ("state", "key"), ("audit", "lsn"),
                             ("breakers", "agent_id"), ("agents", "agent_id")):
            for row in conn.execute(f"SELECT * FROM {table} ORDER BY {order}"):
                yield orjson.dumps([table, *tuple(row)])
        # The FTS index is part of the state a reader sees.
        for row in conn.execute(
            "SELECT rowid, subject, predicate, object_text FROM assertions_fts ORDER BY rowid"
        ):
            yield orjson.dumps(["fts", *tuple(row)])

    def digest(self) -> str:
        h = hashlib.sha256()
        for line in self.canonical_dump():
            h.update(line)
            h.update(b"\n")
        return h.hexdigest()


# -- record appliers (pure functions of the record and the current rows) --------------


def _apply_assert(c: sqlite3.Connection, e: Entry) -> None:
    w = records.signed_write(e.data)
    a: Assertion = e.parsed if isinstance(e.parsed, Assertion) else trusted_assertion(w.body)
    aid = write_id(w.body)
    v = w.verdict
    if v is None:
        outcome = orjson.dumps({"id": aid, "status": "accepted", "lsn": e.lsn}).decode()
    else:
        outcome = orjson.dumps({"id": aid, "status": "quarantined", "lsn": e.lsn,
                                "quarantine_id": quarantine_id(aid),
                                "reason": v["reason"]}).decode()
    cur = c.execute(
        "INSERT OR IGNORE INTO writes (id, agent_id, nonce, kind, lsn, outcome) "
        "VALUES (?, ?, ?, 'assert', ?, ?)",
        (aid, a.agent_id, a.nonce, e.lsn, outcome),
    )
    if cur.rowcount == 0:  # the same write, or its nonce, was journaled before: no-op
        return
    object_text = a.object_text
    cur = c.execute(
        "INSERT INTO assertions (id, lsn, agent_id, subject, predicate, object_json, object_text,"
        " object_raw, context, confidence, evidence, valid_from, valid_until, supersedes,"
        " timestamp, nonce, recorded_at, status, active_lsn, body, signature)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (aid, e.lsn, a.agent_id, a.subject_key, a.predicate_key, a.object_json, object_text,
         orjson.dumps(a.object).decode(), a.context_key, a.confidence,
         orjson.dumps(a.evidence).decode(), a.valid_from, a.valid_until, a.supersedes,
         a.timestamp, a.nonce, w.at, "active" if v is None else "quarantined",
         e.lsn if v is None else None, w.body.decode("utf-8"), w.signature),
    )
    c.execute(
        "INSERT INTO assertions_fts (rowid, subject, predicate, object_text) VALUES (?,?,?,?)",
        (cur.lastrowid, a.subject_key, a.predicate_key, object_text),
    )
    if v is not None:
        c.execute(
            "INSERT INTO quarantine (id, assertion_id, agent_id, reason, score, verdict, status,"
            " lsn, created_at) VALUES (?,?,?,?,?,?,'pending',?,?)",
            (quarantine_id(aid), aid, a.agent_id, v["reason"], float(v.get("score", 0.0)),
             orjson.dumps(v).decode(), e.lsn, w.at),
        )
        count_agent(c, a.agent_id, "quarantined", w.at)
        return
    count_agent(c, a.agent_id, "accepted", w.at)
    if a.supersedes:
        end_assertion(c, a.supersedes, a.agent_id, "superseded", e.lsn, aid)


def _apply_retract(c: sqlite3.Connection, e: Entry) -> None:
    w = records.signed_write(e.data)
    r: Retraction = e.parsed if isinstance(e.parsed, Retraction) else trusted_retraction(w.body)
    rid = write_id(w.body)
    outcome = orjson.dumps(
        {"id": rid, "status": "retracted", "retracts": r.retracts, "lsn": e.lsn}
    ).decode()
    cur = c.execute(
        "INSERT OR IGNORE INTO writes (id, agent_id, nonce, kind, lsn, outcome) "
        "VALUES (?, ?, ?, 'retract', ?, ?)",
        (rid, r.agent_id, r.nonce, e.lsn, outcome),
    )
    if cur.rowcount == 0:
        return
    c.execute(
        "INSERT INTO retractions (id, lsn, agent_id, retracts, reason, recorded_at, body,"
        " signature) VALUES (?,?,?,?,?,?,?,?)",
        (rid, e.lsn, r.agent_id, r.retracts, r.reason, w.at, w.body.decode("utf-8"), w.signature),
    )
    if end_assertion(c, r.retracts, r.agent_id, "retracted", e.lsn, rid):
        count_agent(c, r.agent_id, "retracted", w.at)


def end_assertion(c: sqlite3.Connection, aid: str, agent_id: str | None, status: str, lsn: int,
                  by: str) -> bool:
    """End an active assertion (of ``agent_id`` when given); no-op otherwise, so replay
    is deterministic. True when it took effect."""
    cur = c.execute(
        "UPDATE assertions SET status=?, ended_lsn=?, ended_by=? "
        "WHERE id=? AND (? IS NULL OR agent_id=?) AND status='active'",
        (status, lsn, by, aid, agent_id, agent_id),
    )
    return cur.rowcount > 0


_COUNTERS = ("accepted", "quarantined", "approved", "rejected", "retracted")


def count_agent(c: sqlite3.Connection, agent_id: str, counter: str, at: int) -> None:
    assert counter in _COUNTERS
    c.execute(
        f"INSERT INTO agents (agent_id, {counter}, first_seen, last_seen) VALUES (?, 1, ?, ?) "
        f"ON CONFLICT (agent_id) DO UPDATE SET {counter} = {counter} + 1, "
        "last_seen = max(last_seen, excluded.last_seen)",
        (agent_id, at, at),
    )


def _apply_admin(c: sqlite3.Connection, e: Entry) -> None:
    from .admin import apply_admin

    apply_admin(c, e)


_APPLY = {records.ASSERT: _apply_assert, records.RETRACT: _apply_retract,
          records.ADMIN: _apply_admin}
