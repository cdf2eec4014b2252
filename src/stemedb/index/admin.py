"""The admin-side queries: quarantine, allowlist, runtime state, agents, breakers, audit.
(How admin records change these rows is in ``apply.py``.)

Portable SQL over ``store.Queries``: the PostgreSQL backend runs these same functions."""

from __future__ import annotations

import re
from typing import Any

import orjson

from ..answers import decode_cursor, encode_cursor, quarantine_item
from ..model import us_to_time
from .store import Queries

_HEX_PREFIX = re.compile(r"^[0-9a-f]{8,64}$")

Q_SELECT = ("SELECT a.*, q.id AS qid, q.reason, q.score, q.verdict, q.status AS qstatus,"
             " q.created_at, q.decided_at, q.decided_by, q.decision_reason, q.notes,"
             " q.assertion_id, q.lsn AS qlsn, q.severity, q.top_signal"
             " FROM quarantine q JOIN assertions a ON a.id = q.assertion_id")


def list_quarantine(store: Queries, *, status: str | None, agent_prefix: str | None,
                    reason: str | None, limit: int, cursor: str | None,
                    oldest_first: bool = False, severity: str | None = None
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
    rows = store.query(f"{Q_SELECT}{pcond} ORDER BY q.lsn {order} LIMIT ?",
                       [*page_params, limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor({"q": rows[-1]["qlsn"]}) if more and rows else None
    return {"items": [quarantine_item(r) for r in rows], "total": total,
            "next_cursor": next_cursor}


def get_quarantine(store: Queries, qid: str) -> dict[str, Any] | None:
    rows = store.query(f"{Q_SELECT} WHERE q.id = ?", [qid])
    return quarantine_item(rows[0]) if rows else None


def quarantine_ids_with_prefix(store: Queries, prefix: str, limit: int = 2) -> list[str]:
    """Item ids starting with ``prefix`` (a range of the primary key), at most ``limit``."""
    return [r[0] for r in store.query(
        "SELECT id FROM quarantine WHERE id >= ? AND id < ? ORDER BY id LIMIT ?",
        [prefix, prefix + "g", limit])]


def pending_ids_of_agent(store: Queries, agent_id: str) -> list[str]:
    return [r[0] for r in store.query(
        "SELECT id FROM quarantine WHERE status='pending' AND agent_id=? ORDER BY lsn",
        [agent_id])]


def pending_count(store: Queries, agent_id: str | None = None) -> int:
    if agent_id is None:
        return int(store.query("SELECT count(*) FROM quarantine WHERE status='pending'", [])[0][0])
    return int(store.query("SELECT count(*) FROM quarantine WHERE status='pending'"
                           " AND agent_id=?", [agent_id])[0][0])


def quarantine_counts(store: Queries) -> dict[str, int]:
    """Pending items per agent, busiest first."""
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


def agent_counts(store: Queries, agent_id: str) -> dict[str, Any] | None:
    rows = store.query("SELECT * FROM agents WHERE agent_id=?", [agent_id])
    if not rows:
        return None
    r = rows[0]
    return {"accepted": r["accepted"], "quarantined": r["quarantined"],
            "approved": r["approved"], "rejected": r["rejected"], "retracted": r["retracted"],
            "first_seen": us_to_time(r["first_seen"]), "last_seen": us_to_time(r["last_seen"])}


def agents_with_prefix(store: Queries, prefix: str, limit: int = 2) -> list[str]:
    return [r[0] for r in store.query(
        "SELECT agent_id FROM agents WHERE agent_id >= ? AND agent_id < ?"
        " ORDER BY agent_id LIMIT ?",
        [prefix, prefix + "g", limit])]


def last_admin_lsn(store: Queries) -> int:
    return int(store.query("SELECT coalesce(max(lsn), 0) FROM audit", [])[0][0])


def manual_breakers(store: Queries) -> list[dict[str, Any]]:
    return [dict(r) for r in store.query("SELECT * FROM breakers ORDER BY lsn", [])]


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

