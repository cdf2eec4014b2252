"""Records → rows: how each journal record changes the index, in one place.

The index is a deterministic function of the journal: replaying the same records in LSN
order always gives the same rows, whether they arrive one commit at a time on the live
path or ten thousand at a time in a rebuild. Everything that decides a row lives here:

- ``plan``: a signed write (assertion or retraction) becomes its rows, a pure function of
  the record (no database access);
- ``write_steps``: planned runs of signed writes written a table at a time, and admin
  records applied one by one between them (``apply_admin``);
- the admin appliers: each a function of the record and the current rows. A decision that
  no longer applies (approving an item already decided) is recorded in the audit table and
  changes nothing else, so replay stays deterministic.

The caller owns the transaction (``IndexStore.apply``).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from .. import records
from ..model import (
    Assertion,
    Retraction,
    canonical_json,
    instant_us,
    nfc,
    quarantine_id,
    us_to_time,
)
from ..severity import severity_of


class Entry(NamedTuple):
    """One journal record to apply: its LSN, chain hash, decoded payload, and (on the
    live path) the already-parsed write and its id, so neither is computed twice. (A
    named tuple: replay makes one per record, and it is cheap to make.)"""

    lsn: int
    hash: bytes
    data: dict[str, Any]
    parsed: Any = None
    wid: str | None = None
    pos: int | None = None  # where the record's frame starts in its segment (embedded only)


# -- applying records --------------------------------------------------------------------
#
# A signed write (assertion or retraction) becomes its rows first: ``_plan`` is a pure
# function of the record. A run of signed writes between two admin records is then
# written a table at a time (``_write_run``), and admin records are applied one by one
# between runs. The rows come out exactly as if every record were applied alone, in LSN
# order:
#
# - the run's (agent, nonce) pairs are looked up first (``writes``, by ``nonce_key``): a
#   record whose nonce was journaled before (by the same write, a retry, or another),
#   in an earlier run or earlier in this one, changes nothing and is dropped from the
#   run, so the rows kept are the ones one-by-one application keeps.
# - assertion rowids are assigned in insertion order (LSN order), as one by one.
# - ``end_assertion`` only touches assertions recorded at or before the ending record,
#   so running the ends after the run's inserts, in LSN order, sees what it would have
#   seen one by one.
# - per-agent counts are summed per run; ``first_seen`` is the time of the agent's first
#   counted record, ``last_seen`` the greatest time, as one upsert per record gives.

_WRITES_BY_KEY = ("SELECT agent_id, nonce, id, kind, lsn, detail FROM writes"
                  " WHERE nonce_key IN ")
_INSERT_ASSERTION = (
    "INSERT INTO assertions (id, lsn, agent_id, subject, predicate, object_json, object_text,"
    " object_raw, context, confidence, evidence, valid_from, valid_until, supersedes,"
    " timestamp, nonce, recorded_at, status, active_lsn, valid_from_us, valid_until_us,"
    " dup_key, nonce_key, jpos) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_INSERT_RETRACTION = ("INSERT INTO retractions (id, lsn, agent_id, retracts, reason,"
                      " recorded_at, nonce, nonce_key, jpos) VALUES (?,?,?,?,?,?,?,?,?)")
_INSERT_QUARANTINE = ("INSERT INTO quarantine (id, assertion_id, agent_id, reason, score,"
                      " verdict, lsn, created_at, severity, top_signal, status)"
                      " VALUES (?,?,?,?,?,?,?,?,?,?,'pending')")
_INDEX_FTS = ("INSERT INTO assertions_fts (rowid, subject, predicate, object_text)"
              " SELECT rowid, subject, predicate, object_text FROM assertions WHERE rowid > ?")
_COUNT_AGENTS = (
    "INSERT INTO agents (agent_id, accepted, quarantined, retracted, first_seen, last_seen)"
    " VALUES (?,?,?,?,?,?) ON CONFLICT (agent_id) DO UPDATE SET"
    " accepted = accepted + excluded.accepted, quarantined = quarantined + excluded.quarantined,"
    " retracted = retracted + excluded.retracted, last_seen = max(last_seen, excluded.last_seen)"
)
REBUILD_FTS = "INSERT INTO assertions_fts (assertions_fts) VALUES ('rebuild')"
# The highest rowid in the full-text index (FTS5 keeps one docsize row per document) and
# in the table: what ``index_search`` has left to add.
_SEARCH_PENDING = ("SELECT (SELECT coalesce(max(rowid), 0) FROM assertions),"
                   " (SELECT coalesce(max(id), 0) FROM assertions_fts_docsize)")


def search_pending(c: sqlite3.Connection) -> int:
    """Assertions not in the full-text index yet (``index_search`` adds them)."""
    top, done = c.execute(_SEARCH_PENDING).fetchone()
    return max(0, int(top) - int(done))


def index_search(c: sqlite3.Connection) -> int:
    """Adds the assertions past the full-text index's highest rowid to it, inside the
    caller's transaction; returns how many. Rowids are assigned in LSN order, so these
    are exactly the ones applied since it last ran."""
    top, done = c.execute(_SEARCH_PENDING).fetchone()
    if top > done:
        c.execute(_INDEX_FTS, (done,))
    return max(0, int(top) - int(done))
_COUNTED = {"accepted": 1, "quarantined": 2, "retracted": 3}  # column in _COUNT_AGENTS


@dataclass(slots=True)
class _Plan:
    """The rows one signed write adds, and what it may end."""

    lsn: int
    write: tuple[Any, ...]  # writes row: agent, nonce, id, kind, lsn, detail
    row: tuple[Any, ...]  # assertions (but ``dup_key``, ``jpos``) or retractions row
    signed: tuple[str, str]  # the signed body and signature (stored by PostgreSQL only)
    pos: int | None  # ``jpos``: where the record's frame starts in its segment
    is_assert: bool
    quarantine: tuple[Any, ...] | None
    agent: str
    counter: str  # accepted | quarantined | retracted (only if ``end`` took effect)
    at: int
    end: tuple[str, str, str, int, str] | None  # end_assertion(aid, agent, status, lsn, by)
    dup_key: int = 0  # an assertion's (``dup_key``)
    nonce_key: int = 0  # ``nonce_key(agent, nonce)``


Step = list[_Plan] | Entry  # a run of signed writes, or an admin record


def plan(entries: Sequence[Entry]) -> list[Step]:
    """The rows of a batch of records, ready to write: pure, no database access."""
    steps: list[Step] = []
    run: list[_Plan] = []
    for e in entries:
        if e.data["t"] == records.ADMIN:
            if run:
                steps.append(run)
                run = []
            steps.append(e)
        else:
            run.append(_plan(e))
    if run:
        steps.append(run)
    return steps


def write_steps(c: sqlite3.Connection, steps: list[Step]) -> None:
    """Writes planned steps (``plan``) inside the caller's transaction. New assertions
    are left out of the full-text index: ``index_search`` adds them later."""
    for step in steps:
        if isinstance(step, Entry):
            apply_admin(c, step)
        else:
            _write_run(c, step)


def _plan(e: Entry) -> _Plan:
    d = e.data
    body_text: str = d["body"]
    wid = e.wid or hashlib.sha256(body_text.encode("utf-8")).hexdigest()  # write_id(body)
    if d["t"] == records.ASSERT:
        return _plan_assert(e, d, body_text, wid)
    if d["t"] == records.RETRACT:
        return _plan_retract(e, d, body_text, wid)
    raise KeyError(d["t"])


def _plan_assert(e: Entry, d: dict[str, Any], body_text: str, wid: str) -> _Plan:
    # The fields as journaled: the parsed write on the live path, else the signed body
    # as it was validated before it was journaled (what ``trusted_assertion`` holds).
    f = e.parsed.__dict__ if isinstance(e.parsed, Assertion) else orjson.loads(body_text)
    lsn, at, v = e.lsn, int(d["at"]), d.get("v")
    agent, nonce, obj = f["agent_id"], f["nonce"], f["object"]
    if isinstance(obj, str):  # the common case, without canonical_json's walk
        object_text = _nfc(obj)
        object_json = orjson.dumps(object_text).decode()
        object_raw = object_json if object_text is obj else orjson.dumps(obj).decode()
        if "\x00" in object_text:  # the searchable text only; PostgreSQL text holds no NUL
            object_text = object_text.replace("\x00", "\ufffd")
    else:
        object_json = object_text = canonical_json(obj)
        object_raw = orjson.dumps(obj).decode()
    context = f.get("context")
    supersedes = f.get("supersedes")
    end = None
    quarantine = None
    detail = None
    if v is None:
        status, active_lsn, counter = "active", lsn, "accepted"
        if supersedes:
            end = (supersedes, agent, "superseded", lsn, wid)
    else:
        detail = v["reason"]
        status, active_lsn, counter = "quarantined", None, "quarantined"
        quarantine = (quarantine_id(wid), wid, agent, v["reason"], float(v.get("score", 0.0)),
                      orjson.dumps(v).decode(), lsn, at, *severity_of(v))
    row = (wid, lsn, agent, _nfc(f["subject"].strip()), _nfc(f["predicate"].strip()), object_json,
           object_text, object_raw, _nfc(context) if context is not None else "", f["confidence"],
           orjson.dumps(f.get("evidence", [])).decode(), f.get("valid_from"),
           f.get("valid_until"), supersedes, f["timestamp"], nonce, at, status, active_lsn,
           instant_us(f.get("valid_from")), instant_us(f.get("valid_until")))
    return _Plan(lsn, (agent, nonce, wid, "assert", lsn, detail), row, (body_text, d["sig"]),
                 e.pos, True, quarantine, agent, counter, at, end, dup_key((*row[2:6], row[8])),
                 nonce_key(agent, nonce))


def _plan_retract(e: Entry, d: dict[str, Any], body_text: str, wid: str) -> _Plan:
    f = e.parsed.__dict__ if isinstance(e.parsed, Retraction) else orjson.loads(body_text)
    lsn, at = e.lsn, int(d["at"])
    agent, retracts = f["agent_id"], f["retracts"]
    row = (wid, lsn, agent, retracts, f.get("reason", ""), at)
    return _Plan(lsn, (agent, f["nonce"], wid, "retract", lsn, retracts), row,
                 (body_text, d["sig"]), e.pos, False, None, agent, "retracted", at,
                 (retracts, agent, "retracted", lsn, wid), 0, nonce_key(agent, f["nonce"]))


def dup_key(key: Sequence[str]) -> int:
    """The 64-bit hash duplicate detection looks assertions up by: of their agent,
    subject, predicate, object (canonical JSON) and context, as stored (a
    ``store.DuplicateKey``). Keys of one hash are told apart by comparing the texts."""
    digest = hashlib.blake2b(orjson.dumps(key), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def nonce_key(agent_id: str, nonce: str) -> int:
    """The 64-bit hash a write's row is found by: of its agent and nonce. Rows of one
    hash are told apart by comparing both (``writes``)."""
    digest = hashlib.blake2b(orjson.dumps((agent_id, nonce)), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def write_outcome(wid: str, kind: str, lsn: int, detail: str | None) -> str:
    """The JSON answered to a signed write when it was first stored (and to its retries),
    from its ``writes`` row: accepted, quarantined (``detail``: the reason) or a
    retraction (``detail``: the id it retracts)."""
    if kind == "retract":
        return orjson.dumps(
            {"id": wid, "status": "retracted", "retracts": detail, "lsn": lsn}).decode()
    if detail is None:
        return f'{{"id":"{wid}","status":"accepted","lsn":{lsn}}}'
    return orjson.dumps({"id": wid, "status": "quarantined", "lsn": lsn,
                         "quarantine_id": quarantine_id(wid), "reason": detail}).decode()


def _nfc(s: str) -> str:
    """``model.nfc``; an ASCII string is its own NFC form."""
    return s if s.isascii() else nfc(s)


def _write_run(c: sqlite3.Connection, plans: list[_Plan]) -> None:
    """Writes the rows of a run of signed writes (see the comment above ``_Plan``)."""
    plans = _first_writes(c, plans)
    insert_rows(c, _INSERT_ASSERTION,
                [(*p.row, p.dup_key, p.nonce_key, p.pos) for p in plans if p.is_assert])
    insert_rows(c, _INSERT_RETRACTION,
                [(*p.row, p.write[1], p.nonce_key, p.pos) for p in plans if not p.is_assert])
    insert_rows(c, _INSERT_QUARANTINE, [p.quarantine for p in plans if p.quarantine is not None])
    insert_rows(c, _COUNT_AGENTS, run_counts(plans, functools.partial(end_assertion, c)))


def run_counts(plans: Sequence[_Plan], end: Callable[[str, str, str, int, str], bool]
               ) -> list[list[Any]]:
    """Ends what the run's records end, in LSN order (``end``: a backend's
    ``end_assertion``), and sums the counters they add per agent: ``[agent, accepted,
    quarantined, retracted, first_seen, last_seen]`` (``_COUNT_AGENTS``'s columns)."""
    counts: dict[str, list[Any]] = {}
    for p in plans:
        if p.end is not None and not end(*p.end) and not p.is_assert:
            continue  # a retraction that ended nothing is not counted
        n = counts.get(p.agent)
        if n is None:
            counts[p.agent] = n = [p.agent, 0, 0, 0, p.at, p.at]
        n[_COUNTED[p.counter]] += 1
        if p.at > n[5]:
            n[5] = p.at
    return list(counts.values())


ROWS_PER_STATEMENT = 64


@functools.cache
def _rows_statement(sql: str, n: int) -> str:
    """``sql`` (an INSERT with one VALUES tuple, maybe followed by an ON CONFLICT clause)
    inserting ``n`` rows at once."""
    head, rest = sql.split(" VALUES ", 1)
    end = rest.index(")") + 1
    return head + " VALUES " + ",".join([rest[:end]] * n) + rest[end:]


def insert_rows(c: sqlite3.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> int:
    """Inserts ``rows`` in order with ``sql``; returns how many rows it inserted or
    updated.

    Rows go up to ROWS_PER_STATEMENT to a statement (one multi-row VALUES): groups of
    ROWS_PER_STATEMENT, then what is left in groups of falling powers of two (45 rows:
    32 + 8 + 4 + 1), so a batch of any size takes a handful of calls into SQLite, and
    each statement's text is one of a few, prepared once. SQLite gives the GIL up for
    every call and the commit thread must win it back after each, behind the event
    loop: under load that wait, not SQLite's work, was most of an index transaction, and
    grew with the batch when every leftover row was a call of its own. The rows are
    inserted one after another exactly as with one statement per row.
    """
    k = ROWS_PER_STATEMENT
    whole = len(rows) - len(rows) % k
    chain = itertools.chain.from_iterable
    n = 0
    if whole:
        n += c.executemany(_rows_statement(sql, k),
                           [tuple(chain(rows[i:i + k])) for i in range(0, whole, k)]).rowcount
    i = whole
    while i < len(rows):
        size = 1 << ((len(rows) - i).bit_length() - 1)
        n += c.execute(_rows_statement(sql, size), tuple(chain(rows[i:i + size]))).rowcount
        i += size
    return n


KEYS_PER_LOOKUP = 500  # nonce keys per IN (...) list (well under SQLite's bound parameters)


def writes_by_key(c: sqlite3.Connection, keys: Sequence[int]) -> Iterator[Any]:
    """The ``writes`` rows (agent_id, nonce, id, kind, lsn, detail) whose ``nonce_key``
    is one of ``keys``: the caller tells the rows of one hash apart by agent and nonce."""
    for i in range(0, len(keys), KEYS_PER_LOOKUP):
        part = keys[i:i + KEYS_PER_LOOKUP]
        yield from c.execute(_WRITES_BY_KEY + "(" + ",".join("?" * len(part)) + ")", part)


def _first_writes(c: sqlite3.Connection, plans: list[_Plan]) -> list[_Plan]:
    """The run's records whose (agent, nonce) no earlier record took, in order."""
    taken = {(r[0], r[1]) for r in writes_by_key(c, list({p.nonce_key for p in plans}))}
    first = []
    for p in plans:
        key = p.write[:2]
        if key not in taken:
            taken.add(key)
            first.append(p)
    return first


def end_assertion(c: sqlite3.Connection, aid: str, agent_id: str | None, status: str, lsn: int,
                  by: str) -> bool:
    """End an active assertion (of ``agent_id`` when given) recorded at or before ``lsn``;
    no-op otherwise, so replay is deterministic. True when it took effect."""
    cur = c.execute(
        "UPDATE assertions SET status=?, ended_lsn=?, ended_by=? "
        "WHERE id=? AND (? IS NULL OR agent_id=?) AND status='active' AND lsn <= ?",
        (status, lsn, by, aid, agent_id, agent_id, lsn),
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


# -- admin records ----------------------------------------------------------------------

_TARGET_KEYS = ("id", "agent_id", "name")
AUDIT_OMITS = ("t", "at", "by", "action", "hash")  # a token's hash stays out of the audit log


def apply_admin(c: sqlite3.Connection, e: Entry) -> None:
    d = e.data
    action = d["action"]
    detail = {k: v for k, v in d.items() if k not in AUDIT_OMITS}
    target = next((str(d[k]) for k in _TARGET_KEYS if k in d), None)
    c.execute("INSERT INTO audit (lsn, at, by, action, target, detail) VALUES (?,?,?,?,?,?)",
              (e.lsn, int(d["at"]), d["by"], action, target, orjson.dumps(detail).decode()))
    handler = _ADMIN.get(action)
    if handler is not None:  # unknown actions stay in the audit log only
        handler(c, e.lsn, d)


def _pending(c: sqlite3.Connection, qid: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = c.execute(
        "SELECT q.*, a.supersedes FROM quarantine q JOIN assertions a ON a.id = q.assertion_id"
        " WHERE q.id=? AND q.status='pending'", (qid,)).fetchone()
    return row


def _add_note(c: sqlite3.Connection, qid: str, note: str, by: str, at: int) -> None:
    row = c.execute("SELECT notes FROM quarantine WHERE id=?", (qid,)).fetchone()
    if row is None:
        return
    notes = orjson.loads(row[0])
    notes.append({"note": note, "by": by, "at": us_to_time(at)})
    c.execute("UPDATE quarantine SET notes=? WHERE id=?", (orjson.dumps(notes).decode(), qid))


def _decide(c: sqlite3.Connection, lsn: int, d: dict[str, Any], approve: bool) -> None:
    q = _pending(c, d["id"])
    if q is None:
        return
    at, by = int(d["at"]), d["by"]
    why = d.get("note") if approve else d.get("reason")
    c.execute("UPDATE quarantine SET status=?, decided_at=?, decided_by=?, decision_reason=?,"
              " decided_lsn=? WHERE id=?",
              ("approved" if approve else "rejected", at, by, why, lsn, d["id"]))
    if approve:
        c.execute("UPDATE assertions SET status='active', active_lsn=? WHERE id=?",
                  (lsn, q["assertion_id"]))
        if q["supersedes"]:
            end_assertion(c, q["supersedes"], q["agent_id"], "superseded", lsn, q["assertion_id"])
    else:
        c.execute("UPDATE assertions SET status='rejected' WHERE id=?", (q["assertion_id"],))
    if why:
        _add_note(c, d["id"], why, by, at)
    count_agent(c, q["agent_id"], "approved" if approve else "rejected", at)


def _approve(c: sqlite3.Connection, lsn: int, d: dict[str, Any]) -> None:
    _decide(c, lsn, d, True)


def _reject(c: sqlite3.Connection, lsn: int, d: dict[str, Any]) -> None:
    _decide(c, lsn, d, False)


def _note(c: sqlite3.Connection, lsn: int, d: dict[str, Any]) -> None:
    _add_note(c, d["id"], d["note"], d["by"], int(d["at"]))


def _retract(c: sqlite3.Connection, lsn: int, d: dict[str, Any]) -> None:
    """An admin retraction: ends the assertion if it is still active (replay stays
    deterministic) and counts it for its agent, as the agent's own retraction is."""
    if end_assertion(c, d["id"], d["agent_id"], "retracted", lsn, d["by"]):
        count_agent(c, d["agent_id"], "retracted", int(d["at"]))


# A purged assertion's write keeps its row in ``writes``: its nonce stays taken.
_KEEP_PURGED_WRITE = (
    "INSERT INTO purged_writes (agent_id, nonce, id, lsn, detail, nonce_key)"
    " SELECT a.agent_id, a.nonce, a.id, a.lsn, q.reason, a.nonce_key FROM assertions a"
    " LEFT JOIN quarantine q ON q.assertion_id = a.id WHERE a.rowid = ?")


def _purge(c: sqlite3.Connection, lsn: int, d: dict[str, Any]) -> None:
    """Retention: forget rejected items decided before ``before`` (the journal keeps them)."""
    rows = c.execute(
        "SELECT a.rowid, a.subject, a.predicate, a.object_text, q.id FROM quarantine q"
        " JOIN assertions a ON a.id = q.assertion_id"
        " WHERE q.status='rejected' AND q.decided_at < ?", (int(d["before"]),)).fetchall()
    fts = not getattr(c, "fts_deferred", False)  # else built from the rows left, later
    if fts:
        index_search(c)  # a row leaves the full-text index only once it is in it
    for rowid, subject, predicate, object_text, qid in rows:
        if fts:
            c.execute("INSERT INTO assertions_fts (assertions_fts, rowid, subject, predicate,"
                      " object_text) VALUES ('delete', ?, ?, ?, ?)",
                      (rowid, subject, predicate, object_text))
        c.execute(_KEEP_PURGED_WRITE, (rowid,))
        c.execute("DELETE FROM assertions WHERE rowid=?", (rowid,))
        c.execute("DELETE FROM quarantine WHERE id=?", (qid,))


def _allow(c: sqlite3.Connection, lsn: int, d: dict[str, Any]) -> None:
    c.execute("INSERT OR REPLACE INTO allowlist (agent_id, expires_at, expires_us, reason,"
              " added_by, added_at, lsn) VALUES (?,?,?,?,?,?,?)",
              (d["agent_id"], d["expires_at"], int(d["expires_us"]), d.get("reason", ""),
               d["by"], int(d["at"]), lsn))


def _disallow(c: sqlite3.Connection, lsn: int, d: dict[str, Any]) -> None:
    c.execute("DELETE FROM allowlist WHERE agent_id=?", (d["agent_id"],))


def _thresholds(c: sqlite3.Connection, lsn: int, d: dict[str, Any]) -> None:
    row = c.execute("SELECT value FROM state WHERE key='thresholds'").fetchone()
    current = orjson.loads(row[0]) if row else {}
    current.update(d["values"])
    c.execute("INSERT OR REPLACE INTO state (key, value, lsn) VALUES ('thresholds', ?, ?)",
              (orjson.dumps(current, option=orjson.OPT_SORT_KEYS).decode(), lsn))
    if d.get("source") == "config":
        c.execute("INSERT OR REPLACE INTO state (key, value, lsn) VALUES ('config_thresholds',"
                  " ?, ?)", (orjson.dumps(d["values"], option=orjson.OPT_SORT_KEYS).decode(), lsn))


def _breaker_open(c: sqlite3.Connection, lsn: int, d: dict[str, Any]) -> None:
    at = int(d["at"])
    until = at + int(float(d["duration_seconds"]) * 1_000_000)
    c.execute("INSERT OR REPLACE INTO breakers (agent_id, state, reason, opened_at, until_us, lsn)"
              " VALUES (?, 'OPEN', ?, ?, ?, ?)", (d["agent_id"], d.get("reason", ""), at, until, lsn))


def _breaker_reset(c: sqlite3.Connection, lsn: int, d: dict[str, Any]) -> None:
    c.execute("INSERT OR REPLACE INTO breakers (agent_id, state, reason, opened_at, until_us, lsn)"
              " VALUES (?, 'CLOSED', ?, NULL, NULL, ?)", (d["agent_id"], d.get("reason", ""), lsn))


# Enrollment (``agent.enroll``) sets or replaces a key's namespaces and note; revocation
# (``agent.revoke``) is final: a revoked key is never enrolled again, and a second
# revocation changes nothing (the first one's LSN is the one beliefs leave the key at).
ENROLL = ("INSERT INTO enrollments (agent_id, namespaces, note, enrolled_by, enrolled_at,"
          " enrolled_lsn) VALUES (?,?,?,?,?,?) ON CONFLICT (agent_id) DO UPDATE SET"
          " namespaces = excluded.namespaces, note = excluded.note,"
          " enrolled_by = excluded.enrolled_by, enrolled_at = excluded.enrolled_at,"
          " enrolled_lsn = excluded.enrolled_lsn WHERE enrollments.revoked_lsn IS NULL")
REVOKE = ("INSERT INTO enrollments (agent_id, namespaces, note, revoked_lsn, revoked_at,"
          " revoked_by, reason) VALUES (?,'[]','',?,?,?,?) ON CONFLICT (agent_id) DO UPDATE SET"
          " revoked_lsn = excluded.revoked_lsn, revoked_at = excluded.revoked_at,"
          " revoked_by = excluded.revoked_by, reason = excluded.reason"
          " WHERE enrollments.revoked_lsn IS NULL")


def enroll_row(lsn: int, d: dict[str, Any]) -> tuple[Any, ...]:
    return (d["agent_id"], orjson.dumps(list(d["namespaces"])).decode(), d.get("note", ""),
            d["by"], int(d["at"]), lsn)


def revoke_row(lsn: int, d: dict[str, Any]) -> tuple[Any, ...]:
    return (d["agent_id"], lsn, int(d["at"]), d["by"], d.get("reason", ""))


def _enroll(c: sqlite3.Connection, lsn: int, d: dict[str, Any]) -> None:
    c.execute(ENROLL, enroll_row(lsn, d))


def _revoke(c: sqlite3.Connection, lsn: int, d: dict[str, Any]) -> None:
    c.execute(REVOKE, revoke_row(lsn, d))
def _token_create(c: sqlite3.Connection, lsn: int, d: dict[str, Any]) -> None:
    """A new token, unless a live one already has its name at the record's time (two
    nodes creating the same name at once: the first record wins, the other changes
    nothing)."""
    at = int(d["at"])
    taken = c.execute("SELECT 1 FROM tokens WHERE name=? AND revoked_lsn IS NULL"
                      " AND (expires_us IS NULL OR expires_us > ?)", (d["name"], at)).fetchone()
    if taken is not None:
        return
    c.execute("INSERT OR IGNORE INTO tokens (hash, name, scope, namespaces, expires_at,"
              " expires_us, created_at, created_by, lsn) VALUES (?,?,?,?,?,?,?,?,?)",
              (d["hash"], d["name"], d["scope"], orjson.dumps(d["namespaces"]).decode(),
               d.get("expires_at"), d.get("expires_us"), at, d["by"], lsn))


def _token_revoke(c: sqlite3.Connection, lsn: int, d: dict[str, Any]) -> None:
    c.execute("UPDATE tokens SET revoked_at=?, revoked_by=?, revoke_reason=?, revoked_lsn=?"
              " WHERE hash=? AND revoked_lsn IS NULL",
              (int(d["at"]), d["by"], d.get("reason", ""), lsn, d["hash"]))


_ADMIN: dict[str, Callable[[sqlite3.Connection, int, dict[str, Any]], None]] = {
    "quarantine.approve": _approve,
    "quarantine.reject": _reject,
    "quarantine.note": _note,
    "quarantine.purge": _purge,
    "assertion.retract": _retract,
    "allowlist.add": _allow,
    "allowlist.remove": _disallow,
    "thresholds.set": _thresholds,
    "breaker.open": _breaker_open,
    "breaker.reset": _breaker_reset,
    "agent.enroll": _enroll,
    "agent.revoke": _revoke,
    "token.create": _token_create,
    "token.revoke": _token_revoke,
}
