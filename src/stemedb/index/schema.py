"""SQLite schema of the derived index. Bump SCHEMA_VERSION on any change: an index with
another version is rebuilt from the journal at start-up."""

SCHEMA_VERSION = 1

DDL = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- One row per journal record: maps belief time (recorded_at) to LSN for as_of.
CREATE TABLE IF NOT EXISTS lsn_time (
    lsn INTEGER PRIMARY KEY,
    at  INTEGER NOT NULL            -- unix microseconds, from the record
) STRICT;
CREATE INDEX IF NOT EXISTS lsn_time_at ON lsn_time (at);

-- Every signed write (assertion or retraction) with its original outcome, for
-- idempotent retries and nonce-replay detection.
CREATE TABLE IF NOT EXISTS writes (
    id       TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    nonce    TEXT NOT NULL,
    kind     TEXT NOT NULL,         -- assert | retract
    lsn      INTEGER NOT NULL,
    outcome  TEXT NOT NULL,         -- JSON answered to the first request
    UNIQUE (agent_id, nonce)
) STRICT;

CREATE TABLE IF NOT EXISTS assertions (
    rowid         INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    lsn           INTEGER NOT NULL,  -- record that carried the write
    agent_id      TEXT NOT NULL,
    subject       TEXT NOT NULL,     -- trimmed, NFC
    predicate     TEXT NOT NULL,     -- trimmed, NFC
    object_json   TEXT NOT NULL,     -- canonical JSON (sorted keys, NFC)
    object_text   TEXT NOT NULL,     -- the string itself, or object_json
    object_raw    TEXT NOT NULL,     -- the object as sent
    context       TEXT NOT NULL,
    confidence    REAL NOT NULL,
    evidence      TEXT NOT NULL,     -- JSON array
    valid_from    TEXT,
    valid_until   TEXT,
    supersedes    TEXT,
    timestamp     TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    recorded_at   INTEGER NOT NULL,  -- unix microseconds
    status        TEXT NOT NULL,     -- active | retracted | superseded | quarantined | rejected
    active_lsn    INTEGER,           -- LSN from which it is active (NULL: never)
    ended_lsn     INTEGER,           -- LSN from which it is no longer active
    ended_by      TEXT,              -- id of the retraction or superseding assertion
    body          TEXT NOT NULL,     -- exact signed bytes (UTF-8)
    signature     TEXT NOT NULL      -- base64
) STRICT;
CREATE INDEX IF NOT EXISTS assertions_lsn ON assertions (lsn);
CREATE INDEX IF NOT EXISTS assertions_sp ON assertions (subject, predicate, lsn);
CREATE INDEX IF NOT EXISTS assertions_agent ON assertions (agent_id, lsn);
CREATE INDEX IF NOT EXISTS assertions_pred ON assertions (predicate, lsn);

CREATE TABLE IF NOT EXISTS retractions (
    id          TEXT PRIMARY KEY,
    lsn         INTEGER NOT NULL,
    agent_id    TEXT NOT NULL,
    retracts    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    body        TEXT NOT NULL,
    signature   TEXT NOT NULL
) STRICT;

CREATE VIRTUAL TABLE IF NOT EXISTS assertions_fts USING fts5 (
    subject, predicate, object_text,
    content='assertions', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2'
);
"""
