"""Records → rows in PostgreSQL, with the embedded index's effects exactly.

Signed writes are planned by the embedded index's own pure ``index.apply.plan`` (the rows
a record adds, decided in one place for both backends); this module writes those rows
with PostgreSQL statements, and applies admin records as ``index/apply.py``'s appliers
do, statement for statement. The rules that keep the result equal to applying every
record alone, in LSN order, are the embedded ones (see the comment above
``index.apply._Plan``):

- ``writes`` first. A record whose write id or (agent, nonce) was taken before, by an
  earlier record of the run or by a row already in the table, changes nothing else. Here
  the earlier records of the run are found in memory and the table's rows by ``ON
  CONFLICT DO NOTHING``: no two rows of one INSERT conflict with each other, so its order
  does not matter.
- ``rowid``: SQLite gives a new row ``max(rowid) + 1``; so does ``_write_run``, under the
  tip lock that orders every batch.
- ends (retractions, supersedes) after the run's inserts, in LSN order; agent counters
  summed per run.

Across nodes, two batches may each carry a write with the same (agent, nonce): both are
journaled, the later one changes nothing, and ``apply`` returns it among the *taken*
records (its LSN → the owner's write id and original outcome) so the caller can answer
it as a retry or a reused nonce.

The caller owns the transaction (``committer.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row

from ..index.apply import (
    AUDIT_OMITS,
    ENROLL,
    REVOKE,
    Entry,
    enroll_row,
    plan,
    revoke_row,
    run_counts,
    write_outcome,
)
from ..model import us_to_time
from . import fts

Conn = psycopg.Connection[Any]
Taken = dict[int, tuple[str, str]]  # LSN -> (owner's write id, its outcome JSON)

# the columns of ``index.apply._INSERT_WRITE``, and the answer's JSON
_INSERT_WRITES = (
    "INSERT INTO writes (agent_id, nonce, id, kind, lsn, detail, outcome)"
    " SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::bigint[],"
    " %b::text[], %b::text[]) ON CONFLICT DO NOTHING RETURNING id, lsn")
_OWNERS = (
    "SELECT w.agent_id, w.nonce, w.id, w.outcome FROM writes w"
    " JOIN unnest(%b::text[], %b::text[]) AS k (agent_id, nonce)"
    " ON w.agent_id = k.agent_id AND w.nonce = k.nonce")
# the columns of ``index.apply._INSERT_ASSERTION``, in order
_ASSERTION_TYPES = (
    "text", "bigint", "text", "text", "text", "text", "text", "text", "text",
    "double precision", "text", "text", "text", "text", "text", "text", "bigint", "text",
    "bigint", "bigint", "bigint", "text", "text")
_ASSERTION_COLUMNS = (
    "id, lsn, agent_id, subject, predicate, object_json, object_text, object_raw, context,"
    " confidence, evidence, valid_from, valid_until, supersedes, timestamp, nonce,"
    " recorded_at, status, active_lsn, valid_from_us, valid_until_us, body, signature")
# New rows get SQLite's rowids (max + 1, + 2, … in LSN order), and their full-text rows
# and the index's totals go with them, in one statement.
_INSERT_ASSERTIONS = (
    "WITH top AS (SELECT coalesce(max(rowid), 0) AS n FROM assertions),"
    " r AS (SELECT top.n + u.ord AS rowid, u.* FROM top, unnest("
    + ", ".join(f"%b::{t}[]" for t in _ASSERTION_TYPES) + ", %b::tsvector[], %b::integer[])"
    f" WITH ORDINALITY AS u ({_ASSERTION_COLUMNS}, doc, tokens, ord)),"
    f" a AS (INSERT INTO assertions (rowid, {_ASSERTION_COLUMNS})"
    f" SELECT rowid, {_ASSERTION_COLUMNS} FROM r),"
    " f AS (INSERT INTO assertions_fts (rowid, doc, tokens) SELECT rowid, doc, tokens FROM r)"
    " UPDATE fts_stats SET rows = rows + %s, tokens = tokens + %s")
_INSERT_RETRACTIONS = (
    "INSERT INTO retractions (id, lsn, agent_id, retracts, reason, recorded_at, body,"
    " signature) SELECT * FROM unnest(%b::text[], %b::bigint[], %b::text[], %b::text[],"
    " %b::text[], %b::bigint[], %b::text[], %b::text[])")
_INSERT_QUARANTINE = (
    "INSERT INTO quarantine (id, assertion_id, agent_id, reason, score, verdict, lsn,"
    " created_at, severity, top_signal, status) SELECT *, 'pending' FROM unnest(%b::text[],"
    " %b::text[], %b::text[], %b::text[], %b::double precision[], %b::text[], %b::bigint[],"
    " %b::bigint[], %b::text[], %b::text[])")
_COUNT_AGENTS = (
    "INSERT INTO agents (agent_id, accepted, quarantined, retracted, first_seen, last_seen)"
    " SELECT * FROM unnest(%b::text[], %b::bigint[], %b::bigint[], %b::bigint[],"
    " %b::bigint[], %b::bigint[])"
    " ON CONFLICT (agent_id) DO UPDATE SET accepted = agents.accepted + excluded.accepted,"
    " quarantined = agents.quarantined + excluded.quarantined,"
    " retracted = agents.retracted + excluded.retracted,"
    " last_seen = greatest(agents.last_seen, excluded.last_seen)")


def apply(conn: Conn, entries: Sequence[Entry]) -> Taken:
    """Applies ``entries`` (consecutive LSNs, in order) inside the caller's transaction;
    returns the taken records (see the module docstring).

    Written for psycopg's pipeline mode: a statement whose result is not needed is only
    queued, so a batch of signed writes costs two round trips here (``writes`` with its
    answer, then everything else), not one per statement."""
    conn.execute("INSERT INTO lsn_time (lsn, at) SELECT * FROM unnest(%b::bigint[],"
                 " %b::bigint[])", ([e.lsn for e in entries], [int(e.data["at"]) for e in entries]))
    taken: Taken = {}
    for step in plan(entries):
        if isinstance(step, Entry):
            apply_admin(conn, step)
        else:
            taken.update(_write_run(conn, step))
    return taken


def _insert(conn: Conn, sql: str, rows: Sequence[Sequence[Any]], *extra: Any) -> None:
    """One INSERT of ``rows``, passed as one array per column."""
    if rows:
        conn.execute(sql, [*(list(c) for c in zip(*rows, strict=True)), *extra])


def _write_run(conn: Conn, plans: list[Any]) -> Taken:
    """Writes the rows of a run of signed writes (``index.apply._Plan``s, in LSN order)."""
    first, seen_ids, seen_keys = [], set(), set()
    for p in plans:
        wid, key = p.write[2], p.write[:2]
        if wid not in seen_ids and key not in seen_keys:
            first.append(p)
        seen_ids.add(wid)
        seen_keys.add(key)
    rows = [(*p.write, write_outcome(*p.write[2:])) for p in first]
    inserted = set(conn.execute(_INSERT_WRITES, [list(c) for c in zip(*rows, strict=True)])
                   .fetchall())
    own = [p for p in plans if (p.write[2], p.lsn) in inserted]
    taken = _owners(conn, [p for p in plans if (p.write[2], p.lsn) not in inserted])
    _insert_assertions(conn, [(*p.row, *p.signed) for p in own if p.is_assert])
    _insert(conn, _INSERT_RETRACTIONS, [(*p.row, *p.signed) for p in own if not p.is_assert])
    _insert(conn, _INSERT_QUARANTINE, [p.quarantine for p in own if p.quarantine is not None])
    _insert(conn, _COUNT_AGENTS, run_counts(own, functools.partial(end_assertion, conn)))
    return taken


def _owners(conn: Conn, lost: list[Any]) -> Taken:
    """For each record whose ``writes`` row is not its own: who owns its nonce."""
    if not lost:
        return {}
    agents, nonces = [p.write[0] for p in lost], [p.write[1] for p in lost]
    owner = {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(_OWNERS, (agents, nonces))}
    return {p.lsn: owner[p.write[:2]] for p in lost}


def _insert_assertions(conn: Conn, rows: list[tuple[Any, ...]]) -> None:
    """Assertion rows, their full-text rows (see ``fts.py``) and the index's totals."""
    if not rows:
        return
    # A confidence journaled as 1 is the REAL 1.0, as SQLite stores it (and one array
    # holds one type).
    rows = [(*row[:9], float(row[9]), *row[10:]) for row in rows]
    docs, sizes = [], []
    for row in rows:
        cols = fts.columns(row[3], row[4], row[6])  # subject, predicate, object_text
        docs.append(fts.tsvector_text(cols))
        sizes.append(sum(len(c) for c in cols))
    _insert(conn, _INSERT_ASSERTIONS, rows, docs, sizes, len(rows), sum(sizes))


def end_assertion(conn: Conn, aid: str, agent_id: str | None, status: str, lsn: int,
                  by: str) -> bool:
    """End an active assertion (of ``agent_id`` when given) recorded at or before ``lsn``;
    no-op otherwise, so replay is deterministic. True when it took effect."""
    sql = ("UPDATE assertions SET status = %s, ended_lsn = %s, ended_by = %s"
           " WHERE id = %s AND status = 'active' AND lsn <= %s")
    params: tuple[Any, ...] = (status, lsn, by, aid, lsn)
    if agent_id is not None:
        sql += " AND agent_id = %s"
        params += (agent_id,)
    return conn.execute(sql + " RETURNING 1", params).fetchone() is not None


_COUNTERS = ("accepted", "quarantined", "approved", "rejected", "retracted")


def count_agent(conn: Conn, agent_id: str, counter: str, at: int) -> None:
    assert counter in _COUNTERS
    conn.execute(
        f"INSERT INTO agents (agent_id, {counter}, first_seen, last_seen) VALUES (%s, 1, %s, %s)"
        f" ON CONFLICT (agent_id) DO UPDATE SET {counter} = agents.{counter} + 1,"
        " last_seen = greatest(agents.last_seen, excluded.last_seen)",
        (agent_id, at, at))


# -- admin records ----------------------------------------------------------------------

_TARGET_KEYS = ("id", "agent_id", "name")


def apply_admin(conn: Conn, e: Entry) -> None:
    d = e.data
    action = d["action"]
    detail = {k: v for k, v in d.items() if k not in AUDIT_OMITS}
    target = next((str(d[k]) for k in _TARGET_KEYS if k in d), None)
    conn.execute("INSERT INTO audit (lsn, at, by, action, target, detail)"
                 " VALUES (%s, %s, %s, %s, %s, %s)",
                 (e.lsn, int(d["at"]), d["by"], action, target, orjson.dumps(detail).decode()))
    handler = _ADMIN.get(action)
    if handler is not None:  # unknown actions stay in the audit log only
        handler(conn, e.lsn, d)


def _pending(conn: Conn, qid: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT q.assertion_id, q.agent_id, a.supersedes FROM quarantine q"
            " JOIN assertions a ON a.id = q.assertion_id"
            " WHERE q.id = %s AND q.status = 'pending'", (qid,)).fetchone()


def _add_note(conn: Conn, qid: str, note: str, by: str, at: int) -> None:
    row = conn.execute("SELECT notes FROM quarantine WHERE id = %s", (qid,)).fetchone()
    if row is None:
        return
    notes = orjson.loads(row[0])
    notes.append({"note": note, "by": by, "at": us_to_time(at)})
    conn.execute("UPDATE quarantine SET notes = %s WHERE id = %s",
                 (orjson.dumps(notes).decode(), qid))


def _decide(conn: Conn, lsn: int, d: dict[str, Any], approve: bool) -> None:
    q = _pending(conn, d["id"])
    if q is None:
        return
    at, by = int(d["at"]), d["by"]
    why = d.get("note") if approve else d.get("reason")
    conn.execute("UPDATE quarantine SET status = %s, decided_at = %s, decided_by = %s,"
                 " decision_reason = %s, decided_lsn = %s WHERE id = %s",
                 ("approved" if approve else "rejected", at, by, why, lsn, d["id"]))
    if approve:
        conn.execute("UPDATE assertions SET status = 'active', active_lsn = %s WHERE id = %s",
                     (lsn, q["assertion_id"]))
        if q["supersedes"]:
            end_assertion(conn, q["supersedes"], q["agent_id"], "superseded", lsn,
                          q["assertion_id"])
    else:
        conn.execute("UPDATE assertions SET status = 'rejected' WHERE id = %s",
                     (q["assertion_id"],))
    if why:
        _add_note(conn, d["id"], why, by, at)
    count_agent(conn, q["agent_id"], "approved" if approve else "rejected", at)


def _approve(conn: Conn, lsn: int, d: dict[str, Any]) -> None:
    _decide(conn, lsn, d, True)


def _reject(conn: Conn, lsn: int, d: dict[str, Any]) -> None:
    _decide(conn, lsn, d, False)


def _note(conn: Conn, lsn: int, d: dict[str, Any]) -> None:
    _add_note(conn, d["id"], d["note"], d["by"], int(d["at"]))


def _retract(conn: Conn, lsn: int, d: dict[str, Any]) -> None:
    """An admin retraction: ends the assertion if it is still active and counts it for
    its agent, as the agent's own retraction is."""
    if end_assertion(conn, d["id"], d["agent_id"], "retracted", lsn, d["by"]):
        count_agent(conn, d["agent_id"], "retracted", int(d["at"]))


def _purge(conn: Conn, lsn: int, d: dict[str, Any]) -> None:
    """Retention: forget rejected items decided before ``before`` (the journal keeps
    them), and their full-text rows."""
    gone = conn.execute(
        "WITH q AS (DELETE FROM quarantine WHERE status = 'rejected' AND decided_at < %s"
        " RETURNING assertion_id),"
        " a AS (DELETE FROM assertions WHERE id IN (SELECT assertion_id FROM q)"
        " RETURNING rowid),"
        " f AS (DELETE FROM assertions_fts WHERE rowid IN (SELECT rowid FROM a)"
        " RETURNING tokens)"
        " SELECT count(*), coalesce(sum(tokens), 0) FROM f", (int(d["before"]),)).fetchone()
    if gone and gone[0]:
        conn.execute("UPDATE fts_stats SET rows = rows - %s, tokens = tokens - %s",
                      (int(gone[0]), int(gone[1])))


def _allow(conn: Conn, lsn: int, d: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO allowlist (agent_id, expires_at, expires_us, reason, added_by, added_at,"
        " lsn) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (agent_id) DO UPDATE SET"
        " expires_at = excluded.expires_at, expires_us = excluded.expires_us,"
        " reason = excluded.reason, added_by = excluded.added_by,"
        " added_at = excluded.added_at, lsn = excluded.lsn",
        (d["agent_id"], d["expires_at"], int(d["expires_us"]), d.get("reason", ""), d["by"],
         int(d["at"]), lsn))


def _disallow(conn: Conn, lsn: int, d: dict[str, Any]) -> None:
    conn.execute("DELETE FROM allowlist WHERE agent_id = %s", (d["agent_id"],))


_SET_STATE = ("INSERT INTO state (key, value, lsn) VALUES (%s, %s, %s) ON CONFLICT (key)"
              " DO UPDATE SET value = excluded.value, lsn = excluded.lsn")


def _thresholds(conn: Conn, lsn: int, d: dict[str, Any]) -> None:
    row = conn.execute("SELECT value FROM state WHERE key = 'thresholds'").fetchone()
    current = orjson.loads(row[0]) if row else {}
    current.update(d["values"])
    conn.execute(_SET_STATE, ("thresholds",
                              orjson.dumps(current, option=orjson.OPT_SORT_KEYS).decode(), lsn))
    if d.get("source") == "config":
        conn.execute(_SET_STATE, ("config_thresholds",
                                  orjson.dumps(d["values"], option=orjson.OPT_SORT_KEYS).decode(),
                                  lsn))


_SET_BREAKER = (
    "INSERT INTO breakers (agent_id, state, reason, opened_at, until_us, lsn)"
    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (agent_id) DO UPDATE SET"
    " state = excluded.state, reason = excluded.reason, opened_at = excluded.opened_at,"
    " until_us = excluded.until_us, lsn = excluded.lsn")


def _breaker_open(conn: Conn, lsn: int, d: dict[str, Any]) -> None:
    at = int(d["at"])
    until = at + int(float(d["duration_seconds"]) * 1_000_000)
    conn.execute(_SET_BREAKER, (d["agent_id"], "OPEN", d.get("reason", ""), at, until, lsn))


def _breaker_reset(conn: Conn, lsn: int, d: dict[str, Any]) -> None:
    conn.execute(_SET_BREAKER, (d["agent_id"], "CLOSED", d.get("reason", ""), None, None, lsn))


def _enroll(conn: Conn, lsn: int, d: dict[str, Any]) -> None:
    conn.execute(ENROLL.replace("?", "%s"), enroll_row(lsn, d))


def _revoke(conn: Conn, lsn: int, d: dict[str, Any]) -> None:
    conn.execute(REVOKE.replace("?", "%s"), revoke_row(lsn, d))
def _token_create(conn: Conn, lsn: int, d: dict[str, Any]) -> None:
    """As ``index.apply._token_create``: the first live token of a name wins."""
    at = int(d["at"])
    taken = conn.execute("SELECT 1 FROM tokens WHERE name = %s AND revoked_lsn IS NULL"
                         " AND (expires_us IS NULL OR expires_us > %s)",
                         (d["name"], at)).fetchone()
    if taken is not None:
        return
    conn.execute("INSERT INTO tokens (hash, name, scope, namespaces, expires_at, expires_us,"
                 " created_at, created_by, lsn) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                 " ON CONFLICT (hash) DO NOTHING",
                 (d["hash"], d["name"], d["scope"], orjson.dumps(d["namespaces"]).decode(),
                  d.get("expires_at"), d.get("expires_us"), at, d["by"], lsn))


def _token_revoke(conn: Conn, lsn: int, d: dict[str, Any]) -> None:
    conn.execute("UPDATE tokens SET revoked_at = %s, revoked_by = %s, revoke_reason = %s,"
                 " revoked_lsn = %s WHERE hash = %s AND revoked_lsn IS NULL",
                 (int(d["at"]), d["by"], d.get("reason", ""), lsn, d["hash"]))


_ADMIN: dict[str, Callable[[Conn, int, dict[str, Any]], None]] = {
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
