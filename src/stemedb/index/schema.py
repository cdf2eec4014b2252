"""SQLite schema of the derived index. Bump SCHEMA_VERSION on any change: an index of
another version is deleted when opened and rebuilt from the journal
(``IndexStore._stale_schema``).

Version 2 added ``valid_from_us``/``valid_until_us``: the valid-time bounds as instants,
so ``valid_at`` compares times, not their texts (which keep the offset they were signed
with); the access-control tables (``enrollments``, ``tokens``); and the quarantine
items' ``severity`` and ``top_signal``.

Version 3: ``writes`` is keyed by (agent, nonce) alone, without a rowid or an index on
the write id (an id is the SHA-256 of a body that holds its agent and nonce, so a second
write of one id always meets its nonce's row first), and keeps what its original answer
is made of (``apply.write_outcome``) instead of the answer's JSON text; duplicate
detection looks an assertion up by ``dup_key``, a 64-bit hash of its agent, subject,
predicate, object and context (``apply.dup_key``), instead of an index holding all five
texts.

Version 4: the signed body and signature of an assertion or retraction are no longer
copied into the index: a row keeps ``jpos``, where its record's frame starts in its
journal segment, and readers see ``body`` and ``signature`` as columns of a view that
reads them from the journal (``store.IndexStore.reader``, ``journal.RecordReader``).
``writes`` is no longer a table: an assertion or retraction row is its write's row,
found by ``nonce_key`` (a 64-bit hash of its agent and nonce, ``apply.nonce_key``), and
``writes`` is a view over them (plus ``purged_writes``, the writes whose rows a purge
removed) with the columns the table had."""

SCHEMA_VERSION = 4

# Columns of the embedded index that only serve its own lookups (derived from the other
# columns of their row): not in the canonical dump, not mirrored by PostgreSQL.
INDEX_ONLY = {"assertions": ("dup_key", "nonce_key", "jpos"),
              "retractions": ("nonce", "nonce_key", "jpos"), "writes": ("nonce_key",)}

# Columns read from the journal record a row points at (``jpos``), not stored: a read
# connection sees each of these tables through a view that adds them (``READ_VIEWS``).
JOURNAL_COLUMNS = {"assertions": ("body", "signature"), "retractions": ("body", "signature")}

# The views a read connection creates over those tables, in its own TEMP schema: they
# take the tables' names there, so every query reads through them. ``journal_body`` and
# ``journal_signature`` are functions of the connection (``store.IndexStore.reader``).
READ_VIEWS = "".join(
    f"CREATE TEMP VIEW {table} AS SELECT *, journal_body(lsn, jpos) AS body,"
    f" journal_signature(lsn, jpos) AS signature FROM main.{table};"
    for table in JOURNAL_COLUMNS)

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
    valid_from_us  INTEGER,          -- valid_from as an instant: unix microseconds (NULL: open)
    valid_until_us INTEGER,          -- valid_until as an instant (NULL: open)
    dup_key       INTEGER NOT NULL,  -- hash of (agent, subject, predicate, object, context)
    nonce_key     INTEGER NOT NULL,  -- hash of (agent, nonce): its write's row (``writes``)
    jpos          INTEGER NOT NULL   -- where the record's frame starts in its journal segment
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
    nonce       TEXT NOT NULL,
    nonce_key   INTEGER NOT NULL,   -- hash of (agent, nonce): its write's row (``writes``)
    jpos        INTEGER NOT NULL    -- where the record's frame starts in its journal segment
) STRICT;
CREATE INDEX IF NOT EXISTS retractions_nonce ON retractions (nonce_key);

-- Duplicate detection: same agent, subject, predicate, object, context (the texts are
-- compared in the rows the hash finds).
CREATE INDEX IF NOT EXISTS assertions_dup ON assertions (dup_key, recorded_at);
CREATE INDEX IF NOT EXISTS assertions_nonce ON assertions (nonce_key);

CREATE TABLE IF NOT EXISTS quarantine (
    id              TEXT PRIMARY KEY,   -- quarantine id (what a 202 returns)
    assertion_id    TEXT NOT NULL UNIQUE,
    agent_id        TEXT NOT NULL,
    reason          TEXT NOT NULL,      -- Duplicate | LowQuality | UntrustedHighConfidence
    score           REAL NOT NULL,
    verdict         TEXT NOT NULL,      -- JSON breakdown as decided at write time
    status          TEXT NOT NULL,      -- pending | approved | rejected
    lsn             INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,   -- unix microseconds
    decided_at      INTEGER,
    decided_by      TEXT,
    decision_reason TEXT,
    decided_lsn     INTEGER,
    notes           TEXT NOT NULL DEFAULT '[]',
    severity        TEXT NOT NULL,      -- low | medium | high | critical (severity.py)
    top_signal      TEXT                -- the signal behind the severity (NULL: none fired)
) STRICT;
CREATE INDEX IF NOT EXISTS quarantine_status ON quarantine (status, lsn);
CREATE INDEX IF NOT EXISTS quarantine_severity ON quarantine (status, severity, lsn);
CREATE INDEX IF NOT EXISTS quarantine_agent ON quarantine (status, agent_id, lsn);
CREATE INDEX IF NOT EXISTS quarantine_reason ON quarantine (status, reason, lsn);

-- The writes of assertions a purge removed: their nonces stay taken, their retries
-- answered as before.
CREATE TABLE IF NOT EXISTS purged_writes (
    agent_id  TEXT NOT NULL,
    nonce     TEXT NOT NULL,
    id        TEXT NOT NULL,
    lsn       INTEGER NOT NULL,
    detail    TEXT,
    nonce_key INTEGER NOT NULL,
    PRIMARY KEY (agent_id, nonce)
) STRICT, WITHOUT ROWID;

-- Every signed write (assertion or retraction) by its agent and nonce, for idempotent
-- retries and nonce-replay detection; its original answer is write_outcome(id, kind,
-- lsn, detail) (index/apply.py): detail is a quarantined write's reason (its quarantine
-- row's, which keeps it after a decision) or the id a retraction retracts. Look rows
-- up by nonce_key (SQLite pushes the condition into each part).
CREATE VIEW IF NOT EXISTS writes AS
    SELECT a.agent_id, a.nonce, a.id, 'assert' AS kind, a.lsn, q.reason AS detail,
           a.nonce_key
    FROM assertions a LEFT JOIN quarantine q ON q.assertion_id = a.id
    UNION ALL
    SELECT agent_id, nonce, id, 'retract', lsn, retracts, nonce_key FROM retractions
    UNION ALL
    SELECT agent_id, nonce, id, 'assert', lsn, detail, nonce_key FROM purged_writes;

CREATE TABLE IF NOT EXISTS allowlist (
    agent_id   TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL,           -- RFC 3339
    expires_us INTEGER NOT NULL,
    reason     TEXT NOT NULL,
    added_by   TEXT NOT NULL,
    added_at   INTEGER NOT NULL,
    lsn        INTEGER NOT NULL
) STRICT;

-- Runtime state set by admin records (thresholds, ...): key -> JSON.
CREATE TABLE IF NOT EXISTS state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    lsn   INTEGER NOT NULL
) STRICT;

-- Admin decisions in order (audit log): every admin record.
CREATE TABLE IF NOT EXISTS audit (
    lsn    INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    by     TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS audit_target ON audit (target, lsn);

-- Manual circuit-breaker actions (automatic state is rebuilt from recent history).
CREATE TABLE IF NOT EXISTS breakers (
    agent_id   TEXT PRIMARY KEY,
    state      TEXT NOT NULL,           -- OPEN | CLOSED
    reason     TEXT NOT NULL,
    opened_at  INTEGER,
    until_us   INTEGER,
    lsn        INTEGER NOT NULL
) STRICT;

-- Per-agent counts feeding trust.
CREATE TABLE IF NOT EXISTS agents (
    agent_id    TEXT PRIMARY KEY,
    accepted    INTEGER NOT NULL DEFAULT 0,
    quarantined INTEGER NOT NULL DEFAULT 0,
    approved    INTEGER NOT NULL DEFAULT 0,
    rejected    INTEGER NOT NULL DEFAULT 0,
    retracted   INTEGER NOT NULL DEFAULT 0,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL
) STRICT;

-- Agent keys enrolled or revoked by admins ([agents] enrollment). A revoked key's
-- assertions leave beliefs and disputes answered at revoked_lsn or later.
CREATE TABLE IF NOT EXISTS enrollments (
    agent_id     TEXT PRIMARY KEY,
    namespaces   TEXT NOT NULL,         -- JSON array of canonical namespaces ([] if never enrolled)
    note         TEXT NOT NULL,
    enrolled_by  TEXT,
    enrolled_at  INTEGER,               -- unix microseconds of the last enrollment
    enrolled_lsn INTEGER,
    revoked_lsn  INTEGER,               -- NULL: not revoked
    revoked_at   INTEGER,
    revoked_by   TEXT,
    reason       TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS enrollments_revoked ON enrollments (revoked_lsn);
-- Scoped API tokens (token.create / token.revoke): the SHA-256 of each secret, never
-- the secret. A name is unique among live tokens; a revoked one keeps its row.
CREATE TABLE IF NOT EXISTS tokens (
    hash          TEXT PRIMARY KEY,     -- SHA-256 (hex) of the secret
    name          TEXT NOT NULL,
    scope         TEXT NOT NULL,        -- read | review | admin
    namespaces    TEXT NOT NULL,        -- JSON array of canonical grants
    expires_at    TEXT,                 -- RFC 3339, NULL: never
    expires_us    INTEGER,
    created_at    INTEGER NOT NULL,
    created_by    TEXT NOT NULL,
    lsn           INTEGER NOT NULL,
    revoked_at    INTEGER,
    revoked_by    TEXT,
    revoke_reason TEXT,
    revoked_lsn   INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS tokens_name ON tokens (name, lsn);

CREATE VIRTUAL TABLE IF NOT EXISTS assertions_fts USING fts5 (
    subject, predicate, object_text,
    content='assertions', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2'
);
"""
