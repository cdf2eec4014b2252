"""Admin records applied to the index, and the admin-side queries (quarantine, allowlist,
runtime state, agents). Every applier is a deterministic function of the record and the
current rows: a decision that no longer applies (approving an item already decided) is
recorded in the audit table and changes nothing else."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import orjson

from .query import _us_to_time, decode_cursor, encode_cursor, row_to_assertion
from .store import Entry, IndexStore, count_agent, end_assertion

_TARGET_KEYS = ("id", "agent_id")


def apply_admin(c: sqlite3.Connection, e: Entry) -> None:
    d = e.data
    action = d["action"]
    detail = {k: v for k, v in d.items() if k not in ("t", "at", "by", "action")}
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
    notes.append({"note": note, "by": by, "at": _us_to_time(at)})
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


def _purge(c: sqlite3.Connection, lsn: int, d: dict[str, Any]) -> None:
    """Retention: forget rejected items decided before ``before`` (the journal keeps them)."""
    rows = c.execute(
        "SELECT a.rowid, a.subject, a.predicate, a.object_text, q.id FROM quarantine q"
        " JOIN assertions a ON a.id = q.assertion_id"
        " WHERE q.status='rejected' AND q.decided_at < ?", (int(d["before"]),)).fetchall()
    fts = not getattr(c, "fts_deferred", False)  # else built from the rows left, later
    for rowid, subject, predicate, object_text, qid in rows:
        if fts:
            c.execute("INSERT INTO assertions_fts (assertions_fts, rowid, subject, predicate,"
                      " object_text) VALUES ('delete', ?, ?, ?, ?)",
                      (rowid, subject, predicate, object_text))
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
}


# -- queries ------------------------------------------------------------------------------


def quarantine_item(row: sqlite3.Row) -> dict[str, Any]:
    verdict = orjson.loads(row["verdict"])
    return {
        "id": row["qid"],
        "assertion_id": row["assertion_id"],
        "agent_id": row["agent_id"],
        "reason": row["reason"],
        "score": row["score"],
        "signals": verdict.get("signals", []),
        "breakdown": verdict,
        "status": row["qstatus"],
        "created_at": _us_to_time(row["created_at"]),
        "decided_at": _us_to_time(row["decided_at"]) if row["decided_at"] else None,
        "decided_by": row["decided_by"],
        "decision_reason": row["decision_reason"],
        "notes": orjson.loads(row["notes"]),
        "assertion": row_to_assertion(row),
    }


_Q_SELECT = ("SELECT a.*, q.id AS qid, q.reason, q.score, q.verdict, q.status AS qstatus,"
             " q.created_at, q.decided_at, q.decided_by, q.decision_reason, q.notes,"
             " q.assertion_id, q.lsn AS qlsn"
             " FROM quarantine q JOIN assertions a ON a.id = q.assertion_id")


def list_quarantine(store: IndexStore, *, status: str | None, agent_prefix: str | None,
                    reason: str | None, limit: int, cursor: str | None,
                    oldest_first: bool = False) -> dict[str, Any]:
    where: list[str] = []
    params: list[Any] = []
    if status:
        where.append("q.status = ?")
        params.append(status)
    if agent_prefix and len(agent_prefix) < 64:
        # A prefix of one agent (the usual case) becomes an equality, which the
        # (status, agent_id, lsn) index answers in LSN order without sorting.
        found = agents_with_prefix(store, agent_prefix)
        if len(found) == 1:
            agent_prefix = found[0]
    if agent_prefix:
        if len(agent_prefix) == 64:
            where.append("q.agent_id = ?")
            params.append(agent_prefix)
        else:
            where.append("q.agent_id >= ? AND q.agent_id < ?")
            params += [agent_prefix, agent_prefix + "g"]
    if reason:
        where.append("q.reason = ?")
        params.append(reason)
    cond = (" WHERE " + " AND ".join(where)) if where else ""
    total = int(store.query("SELECT count(*) FROM quarantine q" + cond, params)[0][0])
    page_where = list(where)
    page_params = list(params)
    if cursor:
        after = decode_cursor(cursor).get("q")
        if after is not None:
            page_where.append("q.lsn > ?" if oldest_first else "q.lsn < ?")
            page_params.append(after)
    pcond = (" WHERE " + " AND ".join(page_where)) if page_where else ""
    order = "ASC" if oldest_first else "DESC"
    rows = store.query(f"{_Q_SELECT}{pcond} ORDER BY q.lsn {order} LIMIT ?",
                       [*page_params, limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor({"q": rows[-1]["qlsn"]}) if more and rows else None
    return {"items": [quarantine_item(r) for r in rows], "total": total,
            "next_cursor": next_cursor}


def get_quarantine(store: IndexStore, qid: str) -> dict[str, Any] | None:
    rows = store.query(f"{_Q_SELECT} WHERE q.id = ?", [qid])
    return quarantine_item(rows[0]) if rows else None


def pending_ids_of_agent(store: IndexStore, agent_id: str) -> list[str]:
    return [r[0] for r in store.query(
        "SELECT id FROM quarantine WHERE status='pending' AND agent_id=? ORDER BY lsn",
        [agent_id])]


def pending_count(store: IndexStore, agent_id: str | None = None) -> int:
    if agent_id is None:
        return int(store.query("SELECT count(*) FROM quarantine WHERE status='pending'", [])[0][0])
    return int(store.query("SELECT count(*) FROM quarantine WHERE status='pending'"
                           " AND agent_id=?", [agent_id])[0][0])


def quarantine_counts(store: IndexStore) -> dict[str, int]:
    """Pending items per agent, busiest first."""
    return {r[0]: r[1] for r in store.query(
        "SELECT agent_id, count(*) AS n FROM quarantine WHERE status='pending'"
        " GROUP BY agent_id ORDER BY n DESC", [])}


def rejected_before(store: IndexStore, before_us: int) -> int:
    return int(store.query("SELECT count(*) FROM quarantine WHERE status='rejected'"
                           " AND decided_at < ?", [before_us])[0][0])


def allowlist(store: IndexStore) -> list[dict[str, Any]]:
    return [{"agent_id": r["agent_id"], "expires_at": r["expires_at"], "reason": r["reason"],
             "added_by": r["added_by"], "added_at": _us_to_time(r["added_at"])}
            for r in store.query("SELECT * FROM allowlist ORDER BY added_at", [])]


def allowlisted_until(store: IndexStore, agent_id: str) -> int | None:
    rows = store.query("SELECT expires_us FROM allowlist WHERE agent_id=?", [agent_id])
    return int(rows[0][0]) if rows else None


def get_state(store: IndexStore, key: str) -> dict[str, Any] | None:
    rows = store.query("SELECT value FROM state WHERE key=?", [key])
    return orjson.loads(rows[0][0]) if rows else None


def agent_counts(store: IndexStore, agent_id: str) -> dict[str, Any] | None:
    rows = store.query("SELECT * FROM agents WHERE agent_id=?", [agent_id])
    if not rows:
        return None
    r = rows[0]
    return {"accepted": r["accepted"], "quarantined": r["quarantined"],
            "approved": r["approved"], "rejected": r["rejected"], "retracted": r["retracted"],
            "first_seen": _us_to_time(r["first_seen"]), "last_seen": _us_to_time(r["last_seen"])}


def agents_with_prefix(store: IndexStore, prefix: str, limit: int = 2) -> list[str]:
    return [r[0] for r in store.query(
        "SELECT agent_id FROM agents WHERE agent_id >= ? AND agent_id < ? LIMIT ?",
        [prefix, prefix + "g", limit])]


def manual_breakers(store: IndexStore) -> list[dict[str, Any]]:
    return [dict(r) for r in store.query("SELECT * FROM breakers ORDER BY lsn", [])]


def audit_log(store: IndexStore, target: str | None, limit: int) -> list[dict[str, Any]]:
    sql = "SELECT * FROM audit" + (" WHERE target = ?" if target else "") + " ORDER BY lsn DESC LIMIT ?"
    rows = store.query(sql, [target, limit] if target else [limit])
    return [{"lsn": r["lsn"], "at": _us_to_time(r["at"]), "by": r["by"], "action": r["action"],
             "target": r["target"], "detail": orjson.loads(r["detail"])} for r in rows]

