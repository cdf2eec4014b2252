"""The PostgreSQL schema: the journal, its tip, and the derived tables beside them.

The derived tables mirror the embedded index (``index/schema.py``) column for column, in
the same order and with the same meaning, so that the canonical dump (``digest``) of the
same journal is the same on both backends: INTEGER is ``bigint``, REAL ``double
precision``, TEXT ``text COLLATE "C"`` (SQLite compares text byte by byte; so does the C
collation, whatever the database's default). What SQLite keeps in its FTS5 table lives in
``assertions_fts`` (see ``fts.py``).

Where PostgreSQL differs from SQLite, the schema says so:

- a btree entry holds at most ~2.7 kB, and subjects, predicates and objects may be longer
  (objects up to 16 kB): their indexes are on ``md5(...)`` of the text, and the queries
  that use them compare both the md5 and the text;
- the journal and its ``tip`` row are here too: one transaction writes a batch's records,
  their rows and the new tip, so the derived state is always "the journal up to the tip".

``migrate`` creates or upgrades the schema under a transaction-scoped advisory lock, so
any number of nodes may start at once: the first creates, the others wait and find it
done. A database whose schema is newer than this code is refused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import orjson
import psycopg

from ..errors import ConfigError
from ..index.schema import DDL as INDEX_DDL
from ..index.store import DUMP_TABLES, dump_columns
from ..journal.record import ZERO_HASH
from ..model import instant_us
from ..severity import severity_of

SCHEMA_VERSION = 3
# pg_advisory_xact_lock key: "STEMEDB\0" as a big-endian integer.
MIGRATION_LOCK = 0x5354454D45444200

_T = 'text COLLATE "C"'

_V1 = f"""
CREATE TABLE journal (
    lsn     bigint PRIMARY KEY,
    hash    bytea  NOT NULL,            -- sha256(prev hash || lsn || payload)
    payload bytea  NOT NULL             -- the record, exactly as the embedded journal frames it
);

-- The serialization point: every batch locks this one row (SELECT ... FOR UPDATE), takes
-- the next LSNs after it and moves it, in the transaction that writes the batch.
CREATE TABLE tip (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    lsn  bigint  NOT NULL,              -- last committed LSN (0: empty journal)
    hash bytea   NOT NULL               -- its chain hash (32 zero bytes when empty)
);
INSERT INTO tip (lsn, hash) VALUES (0, '\\x{ZERO_HASH.hex()}');

CREATE TABLE lsn_time (
    lsn bigint PRIMARY KEY,
    at  bigint NOT NULL
);
CREATE INDEX lsn_time_at ON lsn_time (at);

CREATE TABLE writes (
    id       {_T} PRIMARY KEY,
    agent_id {_T} NOT NULL,
    nonce    {_T} NOT NULL,
    kind     {_T} NOT NULL,
    lsn      bigint NOT NULL,
    outcome  {_T} NOT NULL,
    UNIQUE (agent_id, nonce)
);

CREATE TABLE assertions (
    rowid       bigint PRIMARY KEY,     -- as SQLite assigns it: max(rowid) + 1
    id          {_T} NOT NULL UNIQUE,
    lsn         bigint NOT NULL,
    agent_id    {_T} NOT NULL,
    subject     {_T} NOT NULL,
    predicate   {_T} NOT NULL,
    object_json {_T} NOT NULL,
    object_text {_T} NOT NULL,
    object_raw  {_T} NOT NULL,
    context     {_T} NOT NULL,
    confidence  double precision NOT NULL,
    evidence    {_T} NOT NULL,
    valid_from  {_T},
    valid_until {_T},
    supersedes  {_T},
    timestamp   {_T} NOT NULL,
    nonce       {_T} NOT NULL,
    recorded_at bigint NOT NULL,
    status      {_T} NOT NULL,
    active_lsn  bigint,
    ended_lsn   bigint,
    ended_by    {_T},
    body        {_T} NOT NULL,
    signature   {_T} NOT NULL
);
CREATE INDEX assertions_lsn ON assertions (lsn);
CREATE INDEX assertions_sp ON assertions (md5(subject), md5(predicate), lsn);
CREATE INDEX assertions_agent ON assertions (agent_id, lsn);
CREATE INDEX assertions_pred ON assertions (md5(predicate), lsn);
CREATE INDEX assertions_dup ON assertions (agent_id, md5(object_json), recorded_at);

CREATE TABLE retractions (
    id          {_T} PRIMARY KEY,
    lsn         bigint NOT NULL,
    agent_id    {_T} NOT NULL,
    retracts    {_T} NOT NULL,
    reason      {_T} NOT NULL,
    recorded_at bigint NOT NULL,
    body        {_T} NOT NULL,
    signature   {_T} NOT NULL
);

CREATE TABLE quarantine (
    id              {_T} PRIMARY KEY,
    assertion_id    {_T} NOT NULL UNIQUE,
    agent_id        {_T} NOT NULL,
    reason          {_T} NOT NULL,
    score           double precision NOT NULL,
    verdict         {_T} NOT NULL,
    status          {_T} NOT NULL,
    lsn             bigint NOT NULL,
    created_at      bigint NOT NULL,
    decided_at      bigint,
    decided_by      {_T},
    decision_reason {_T},
    decided_lsn     bigint,
    notes           {_T} NOT NULL DEFAULT '[]'
);
CREATE INDEX quarantine_status ON quarantine (status, lsn);
CREATE INDEX quarantine_agent ON quarantine (status, agent_id, lsn);
CREATE INDEX quarantine_reason ON quarantine (status, reason, lsn);

CREATE TABLE allowlist (
    agent_id   {_T} PRIMARY KEY,
    expires_at {_T} NOT NULL,
    expires_us bigint NOT NULL,
    reason     {_T} NOT NULL,
    added_by   {_T} NOT NULL,
    added_at   bigint NOT NULL,
    lsn        bigint NOT NULL
);

CREATE TABLE state (
    key   {_T} PRIMARY KEY,
    value {_T} NOT NULL,
    lsn   bigint NOT NULL
);

CREATE TABLE audit (
    lsn    bigint PRIMARY KEY,
    at     bigint NOT NULL,
    by     {_T} NOT NULL,
    action {_T} NOT NULL,
    target {_T},
    detail {_T} NOT NULL
);
CREATE INDEX audit_target ON audit (target, lsn);

CREATE TABLE breakers (
    agent_id  {_T} PRIMARY KEY,
    state     {_T} NOT NULL,
    reason    {_T} NOT NULL,
    opened_at bigint,
    until_us  bigint,
    lsn       bigint NOT NULL
);

CREATE TABLE agents (
    agent_id    {_T} PRIMARY KEY,
    accepted    bigint NOT NULL DEFAULT 0,
    quarantined bigint NOT NULL DEFAULT 0,
    approved    bigint NOT NULL DEFAULT 0,
    rejected    bigint NOT NULL DEFAULT 0,
    retracted   bigint NOT NULL DEFAULT 0,
    first_seen  bigint NOT NULL,
    last_seen   bigint NOT NULL
);

-- Full-text search (what SQLite's assertions_fts holds): each assertion's distinct
-- tokens as the unicode61 tokenizer makes them, and how many tokens it has.
CREATE TABLE assertions_fts (
    rowid  bigint  PRIMARY KEY,
    doc    tsvector NOT NULL,
    tokens integer NOT NULL
);
CREATE INDEX assertions_fts_doc ON assertions_fts USING gin (doc);

-- BM25's collection figures, kept with the rows they count.
CREATE TABLE fts_stats (
    one    boolean PRIMARY KEY DEFAULT true CHECK (one),
    rows   bigint NOT NULL,
    tokens bigint NOT NULL
);
INSERT INTO fts_stats (rows, tokens) VALUES (0, 0);
"""

# Version 2: the valid-time bounds as instants (unix microseconds; NULL: open), so that
# ``valid_at`` compares times, not texts signed with different offsets (the values of
# existing rows are filled in by ``_backfill_valid_time``: Python parses the times); and
# the agent keys enrolled or revoked by admins and the scoped API tokens (``index/schema.py``'s
# ``enrollments`` and ``tokens``); and the quarantine severity (``severity.py``): two columns
# at the end of the table, as in the embedded index; rows of an existing database get them
# from their stored verdicts (``_fill_severity``) before the column becomes NOT NULL.
_V2 = f"""
ALTER TABLE assertions ADD COLUMN valid_from_us bigint;
ALTER TABLE assertions ADD COLUMN valid_until_us bigint;
CREATE TABLE enrollments (
    agent_id     {_T} PRIMARY KEY,
    namespaces   {_T} NOT NULL,
    note         {_T} NOT NULL,
    enrolled_by  {_T},
    enrolled_at  bigint,
    enrolled_lsn bigint,
    revoked_lsn  bigint,
    revoked_at   bigint,
    revoked_by   {_T},
    reason       {_T}
);
CREATE INDEX enrollments_revoked ON enrollments (revoked_lsn);
CREATE TABLE tokens (
    hash          {_T} PRIMARY KEY,
    name          {_T} NOT NULL,
    scope         {_T} NOT NULL,
    namespaces    {_T} NOT NULL,
    expires_at    {_T},
    expires_us    bigint,
    created_at    bigint NOT NULL,
    created_by    {_T} NOT NULL,
    lsn           bigint NOT NULL,
    revoked_at    bigint,
    revoked_by    {_T},
    revoke_reason {_T},
    revoked_lsn   bigint
);
CREATE INDEX tokens_name ON tokens (name, lsn);
ALTER TABLE quarantine ADD COLUMN severity {_T};
ALTER TABLE quarantine ADD COLUMN top_signal {_T};
"""

# Version 3: each write's ``detail`` (the quarantine reason, or the id a retraction
# retracts), the column the embedded index keeps instead of the answer's JSON text
# (``index.apply.write_outcome``), so that both dump the same ``writes`` rows. Here the
# ``outcome`` column stays: the nodes read it, and the id and nonce constraints stay as
# they are. Existing rows take their detail from their outcome.
_V3 = """
ALTER TABLE writes ADD COLUMN detail text COLLATE "C";
UPDATE writes SET detail = CASE
    WHEN kind = 'retract' THEN outcome::jsonb ->> 'retracts'
    WHEN outcome::jsonb ->> 'status' = 'quarantined' THEN outcome::jsonb ->> 'reason' END;
"""

# Columns kept here beyond the embedded index's (not in the dump), by table.
PG_ONLY = {"writes": ("outcome",)}

# version -> the statements that bring the schema from version - 1 to it
MIGRATIONS: dict[int, str] = {1: _V1, 2: _V2, 3: _V3}


def _backfill_valid_time(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute("SELECT id, valid_from, valid_until FROM assertions"
                        " WHERE valid_from IS NOT NULL OR valid_until IS NOT NULL").fetchall()
    if rows:
        with conn.cursor() as cur:
            cur.executemany("UPDATE assertions SET valid_from_us = %s, valid_until_us = %s"
                            " WHERE id = %s",
                            [(instant_us(r[1]), instant_us(r[2]), r[0]) for r in rows])



_V2_AFTER = """
ALTER TABLE quarantine ALTER COLUMN severity SET NOT NULL;
CREATE INDEX quarantine_severity ON quarantine (status, severity, lsn);
"""


def _fill_severity(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute("SELECT id, verdict FROM quarantine WHERE severity IS NULL").fetchall()
    updates = []
    for qid, verdict in rows:
        try:
            breakdown = orjson.loads(verdict)
        except orjson.JSONDecodeError:
            breakdown = {}
        severity, top = severity_of(breakdown if isinstance(breakdown, dict) else {})
        updates.append((severity, top, qid))
    if updates:
        with conn.cursor() as cur:
            cur.executemany("UPDATE quarantine SET severity = %s, top_signal = %s WHERE id = %s",
                            updates)
    conn.execute(_V2_AFTER)


def _after_v2(conn: psycopg.Connection[Any]) -> None:
    _backfill_valid_time(conn)
    _fill_severity(conn)


# version -> what runs after its statements, in the same transaction (filling new columns
# of existing rows)
AFTER: dict[int, Callable[[psycopg.Connection[Any]], None]] = {2: _after_v2}


def migrate(conn: psycopg.Connection[Any]) -> int:
    """Creates or upgrades the schema to ``SCHEMA_VERSION``; returns it. Safe to call
    from many nodes at once: one migrates, the others wait for it and find it done."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        current = _version(conn)
        if current > SCHEMA_VERSION:
            raise ConfigError(
                f"the database schema is version {current}, newer than this StemeDB's "
                f"({SCHEMA_VERSION})", hint="upgrade StemeDB on this node")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            conn.execute(MIGRATIONS[version])
            if version in AFTER:
                AFTER[version](conn)
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
    return SCHEMA_VERSION


def _version(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def status(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Schema version (0: none yet) and tip LSN, for ``db status``."""
    exists = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    version = _version(conn) if exists and exists[0] else 0
    tip = conn.execute("SELECT lsn FROM tip").fetchone() if version else None
    return {"schema_version": version, "tip_lsn": int(tip[0]) if tip else 0}


def _index_columns() -> dict[str, tuple[str, ...]]:
    """Each embedded index table's columns, in order, read from its own DDL: the dump
    selects these columns by name, so both backends dump the same values in the same
    order (and a column added to one schema but not the other fails loudly)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(INDEX_DDL)
        return {table: dump_columns(conn, table) for table, _ in DUMP_TABLES}
    finally:
        conn.close()


COLUMNS = _index_columns()
ASSERTION_COLUMNS = ", ".join(COLUMNS["assertions"])
