"""The admin-side queries: quarantine, allowlist, runtime state, agents, breakers, audit.
(How admin records change these rows is in ``apply.py``.)

Portable SQL over ``store.Queries``: the PostgreSQL backend runs these same functions."""

from __future__ import annotations

import re
from typing import Any

import orjson

from ..answers import decode_cursor, encode_cursor, quarantine_item
from ..model import us_to_time
from ..store import Namespaces
from . import filters
from .store import Queries

_HEX_PREFIX = re.compile(r"^[0-9a-f]{8,64}$")

Q_SELECT = ("SELECT a.*, q.id AS qid, q.reason, q.score, q.verdict, q.status AS qstatus,"
             " q.created_at, q.decided_at, q.decided_by, q.decision_reason, q.notes,"
             " q.assertion_id, q.lsn AS qlsn, q.severity, q.top_signal"
             " FROM quarantine q JOIN assertions a ON a.id = q.assertion_id")


def _visible(namespaces: Namespaces, where: list[str], params: list[Any]) -> bool:
    """Adds the condition that an item's assertion (``a``) is in ``namespaces``; True
    when it did (the query must then join the assertions)."""
    grants = filters.restriction(namespaces)
    if grants is None:
        return False
    where.append(filters.positional(grants, params))
    return True


def list_quarantine(store: Queries, *, status: str | None, agent_prefix: str | None,
                    reason: str | None, limit: int, cursor: str | None,
                    oldest_first: bool = False, namespaces: Namespaces = None,
                    severity: str | None = None
                    ) -> dict[str, Any]:
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
    if severity:
        where.append("q.severity = ?")
        params.append(severity)
    joined = _visible(namespaces, where, params)
    cond = (" WHERE " + " AND ".join(where)) if where else ""
    source = "quarantine q" + (" JOIN assertions a ON a.id = q.assertion_id" if joined else "")
    total = int(store.query(f"SELECT count(*) FROM {source}" + cond, params)[0][0])
    page_where = list(where)
    page_params = list(params)
    if cursor:
        after = decode_cursor(cursor).get("q")
        if after is not None:
            page_where.append("q.lsn > ?" if oldest_first else "q.lsn < ?")
            page_params.append(after)
    pcond = (" WHERE " + " AND ".join(page_where)) if page_where else ""
    order = "ASC" if oldest_first else "DESC"
    rows = store.query(f"{Q_SELECT}{pcond} ORDER BY q.lsn {order} LIMIT ?",
                       [*page_params, limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor({"q": rows[-1]["qlsn"]}) if more and rows else None
    return {"items": [quarantine_item(r) for r in rows], "total": total,
            "next_cursor": next_cursor}


def get_quarantine(store: Queries, qid: str, namespaces: Namespaces = None
                   ) -> dict[str, Any] | None:
    where, params = ["q.id = ?"], [qid]
    _visible(namespaces, where, params)
    rows = store.query(f"{Q_SELECT} WHERE " + " AND ".join(where), params)
    return quarantine_item(rows[0]) if rows else None


def quarantine_ids_with_prefix(store: Queries, prefix: str, limit: int = 2) -> list[str]:
    """Item ids starting with ``prefix`` (a range of the primary key), at most ``limit``."""
    return [r[0] for r in store.query(
        "SELECT id FROM quarantine WHERE id >= ? AND id < ? ORDER BY id LIMIT ?",
        [prefix, prefix + "g", limit])]


def pending_ids_of_agent(store: Queries, agent_id: str, namespaces: Namespaces = None
                         ) -> list[str]:
    where, params = ["q.status = 'pending'", "q.agent_id = ?"], [agent_id]
    if _visible(namespaces, where, params):
        return [r[0] for r in store.query(
            "SELECT q.id FROM quarantine q JOIN assertions a ON a.id = q.assertion_id"
            " WHERE " + " AND ".join(where) + " ORDER BY q.lsn", params)]
    return [r[0] for r in store.query(
        "SELECT id FROM quarantine WHERE status='pending' AND agent_id=? ORDER BY lsn",
        [agent_id])]


def pending_count(store: Queries, agent_id: str | None = None, namespaces: Namespaces = None
                  ) -> int:
    if namespaces is not None:
        where, params = ["q.status = 'pending'"], []
        if agent_id is not None:
            where.append("q.agent_id = ?")
            params.append(agent_id)
        _visible(namespaces, where, params)
        return int(store.query("SELECT count(*) FROM quarantine q JOIN assertions a"
                               " ON a.id = q.assertion_id WHERE " + " AND ".join(where),
                               params)[0][0])
    if agent_id is None:
        return int(store.query("SELECT count(*) FROM quarantine WHERE status='pending'", [])[0][0])
    return int(store.query("SELECT count(*) FROM quarantine WHERE status='pending'"
                           " AND agent_id=?", [agent_id])[0][0])


def quarantine_counts(store: Queries, namespaces: Namespaces = None) -> dict[str, int]:
    """Pending items per agent, busiest first."""
    where: list[str] = ["q.status = 'pending'"]
    params: list[Any] = []
    if _visible(namespaces, where, params):
        return {r[0]: r[1] for r in store.query(
            "SELECT q.agent_id, count(*) AS n FROM quarantine q JOIN assertions a"
            " ON a.id = q.assertion_id WHERE " + " AND ".join(where)
            + " GROUP BY q.agent_id ORDER BY n DESC", params)}
    return {r[0]: r[1] for r in store.query(
        "SELECT agent_id, count(*) AS n FROM quarantine WHERE status='pending'"
        " GROUP BY agent_id ORDER BY n DESC", [])}


def rejected_before(store: Queries, before_us: int) -> int:
    return int(store.query("SELECT count(*) FROM quarantine WHERE status='rejected'"
                           " AND decided_at < ?", [before_us])[0][0])


def allowlist(store: Queries) -> list[dict[str, Any]]:
    return [{"agent_id": r["agent_id"], "expires_at": r["expires_at"], "reason": r["reason"],
             "added_by": r["added_by"], "added_at": us_to_time(r["added_at"])}
            for r in store.query("SELECT * FROM allowlist ORDER BY added_at", [])]


def allowlisted_until(store: Queries, agent_id: str) -> int | None:
    rows = store.query("SELECT expires_us FROM allowlist WHERE agent_id=?", [agent_id])
    return int(rows[0][0]) if rows else None


def get_state(store: Queries, key: str) -> dict[str, Any] | None:
    rows = store.query("SELECT value FROM state WHERE key=?", [key])
    return orjson.loads(rows[0][0]) if rows else None


def agent_counts(store: Queries, agent_id: str, namespaces: Namespaces = None
                 ) -> dict[str, Any] | None:
    if namespaces is not None:
        return _visible_agent_counts(store, agent_id, namespaces)
    rows = store.query("SELECT * FROM agents WHERE agent_id=?", [agent_id])
    if not rows:
        return None
    r = rows[0]
    return {"accepted": r["accepted"], "quarantined": r["quarantined"],
            "approved": r["approved"], "rejected": r["rejected"], "retracted": r["retracted"],
            "first_seen": us_to_time(r["first_seen"]), "last_seen": us_to_time(r["last_seen"])}


def _visible_agent_counts(store: Queries, agent_id: str, namespaces: Namespaces
                          ) -> dict[str, Any] | None:
    """An agent's counters over its visible assertions and their quarantine items, by the
    rules of ``beliefs.trust_counts_as_of`` (accepted: active from its own LSN; retracted:
    ended by a retraction). None when it has no visible assertion."""
    where, params = ["a.agent_id = ?"], [agent_id]
    _visible(namespaces, where, params)
    cond = " AND ".join(where)
    n, accepted, retracted, first, last = store.query(
        "SELECT count(*), coalesce(sum(CASE WHEN a.active_lsn = a.lsn THEN 1 ELSE 0 END), 0),"
        " coalesce(sum(CASE WHEN a.status = 'retracted' THEN 1 ELSE 0 END), 0),"
        f" min(a.recorded_at), max(a.recorded_at) FROM assertions a WHERE {cond}", params)[0]
    if not n:
        return None
    quarantined, approved, rejected = store.query(
        "SELECT count(*), coalesce(sum(CASE WHEN q.status = 'approved' THEN 1 ELSE 0 END), 0),"
        " coalesce(sum(CASE WHEN q.status = 'rejected' THEN 1 ELSE 0 END), 0)"
        " FROM quarantine q JOIN assertions a ON a.id = q.assertion_id"
        f" WHERE q.status IN ('pending', 'approved', 'rejected') AND {cond}", params)[0]
    return {"accepted": int(accepted), "quarantined": int(quarantined),
            "approved": int(approved), "rejected": int(rejected), "retracted": int(retracted),
            "first_seen": us_to_time(int(first)), "last_seen": us_to_time(int(last))}


def agents_with_prefix(store: Queries, prefix: str, limit: int = 2) -> list[str]:
    return [r[0] for r in store.query(
        "SELECT agent_id FROM agents WHERE agent_id >= ? AND agent_id < ?"
        " ORDER BY agent_id LIMIT ?",
        [prefix, prefix + "g", limit])]


def tokens(store: Queries) -> list[dict[str, Any]]:
    """Every token row (hashes, never secrets), oldest first."""
    return [dict(r) for r in store.query("SELECT * FROM tokens ORDER BY lsn", [])]


def last_admin_lsn(store: Queries) -> int:
    return int(store.query("SELECT coalesce(max(lsn), 0) FROM audit", [])[0][0])


def manual_breakers(store: Queries) -> list[dict[str, Any]]:
    return [dict(r) for r in store.query("SELECT * FROM breakers ORDER BY lsn", [])]


def enrollments(store: Queries) -> list[dict[str, Any]]:
    """Every enrolled or revoked key, in agent id order: ``{"agent_id", "namespaces",
    "note", "enrolled_by", "enrolled_at", "enrolled_lsn", "revoked_lsn", "revoked_at",
    "revoked_by", "reason"}`` (times in unix µs, None where not set)."""
    out = []
    for r in store.query("SELECT * FROM enrollments ORDER BY agent_id", []):
        d = {k: r[k] for k in ("agent_id", "note", "enrolled_by", "enrolled_at", "enrolled_lsn",
                               "revoked_lsn", "revoked_at", "revoked_by", "reason")}
        d["namespaces"] = orjson.loads(r["namespaces"])
        out.append(d)
    return out


def audit_log(store: Queries, target: str | None, limit: int) -> list[dict[str, Any]]:
    """Newest first; ``target`` is an id, or a prefix of one (8+ hex: every target that
    starts with it)."""
    if target and _HEX_PREFIX.match(target):
        where, params = " WHERE target >= ? AND target < ?", [target, target + "g"]
    elif target:
        where, params = " WHERE target = ?", [target]
    else:
        where, params = "", []
    rows = store.query(f"SELECT * FROM audit{where} ORDER BY lsn DESC LIMIT ?", [*params, limit])
    return [{"lsn": r["lsn"], "at": us_to_time(r["at"]), "by": r["by"], "action": r["action"],
             "target": r["target"], "detail": orjson.loads(r["detail"])} for r in rows]

