"""The review dashboard's figures the admin queries have no call for: pending items per
reason and per agent, an agent's newest items, and the counts behind the overview's
rates and pending history. Each is one indexed query, in portable SQL over
``store.Queries`` (the PostgreSQL backend runs these same functions)."""

from __future__ import annotations

from typing import Any

from ..answers import quarantine_item
from .admin import Q_SELECT
from .store import Queries

_ALL_STATUSES = "q.status IN ('pending', 'approved', 'rejected')"
_DECISIONS = ("'quarantine.approve', 'quarantine.reject'")


def pending_by_reason(store: Queries) -> dict[str, int]:
    """Pending items per reason (only reasons with items)."""
    rows = store.query(
        "SELECT reason, count(*) FROM quarantine WHERE status='pending' GROUP BY reason", [])
    return {r[0]: int(r[1]) for r in rows}


def pending_by_agent(store: Queries, reason: str) -> list[tuple[str, int]]:
    """(agent_id, pending items of ``reason``), busiest first."""
    rows = store.query(
        "SELECT agent_id, count(*) AS n FROM quarantine"
        " WHERE status='pending' AND reason=? GROUP BY agent_id ORDER BY n DESC", [reason])
    return [(r[0], int(r[1])) for r in rows]


def newest_pending(store: Queries, agent_id: str, reason: str | None, limit: int
                   ) -> list[dict[str, Any]]:
    """The newest pending items of one agent, in the admin API's item shape (one indexed
    range read; unlike ``list_quarantine`` it does not count the agent's items)."""
    sql = Q_SELECT + " WHERE q.status = 'pending' AND q.agent_id = ?"
    params: list[Any] = [agent_id]
    if reason:
        sql += " AND q.reason = ?"
        params.append(reason)
    rows = store.query(sql + " ORDER BY q.lsn DESC LIMIT ?", [*params, limit])
    return [quarantine_item(r) for r in rows]


def last_lsn_at(store: Queries, at_us: int) -> int:
    """The last LSN recorded at or before ``at_us`` (0 if none): one index seek.

    Records are stamped in commit order, so the newest stamp at or before a time belongs
    to the greatest LSN at or before it (``IndexStore.lsn_at`` scans for the maximum)."""
    rows = store.query("SELECT lsn FROM lsn_time WHERE at <= ? ORDER BY at DESC LIMIT 1",
                       [at_us])
    return int(rows[0][0]) if rows else 0


def quarantined_between(store: Queries, after_lsn: int, upto_lsn: int) -> int:
    """Items quarantined (any status but purged) at LSNs in (after_lsn, upto_lsn]."""
    return int(store.query(
        f"SELECT count(*) FROM quarantine q WHERE {_ALL_STATUSES} AND q.lsn > ? AND q.lsn <= ?",
        [after_lsn, upto_lsn])[0][0])


def decisions_by_minute(store: Queries, start_us: int, after_lsn: int, minute_us: int
                        ) -> list[tuple[int, str, int]]:
    """(minute since ``start_us``, action, items) of approvals and rejections recorded
    after ``start_us`` and ``after_lsn``."""
    rows = store.query(
        f"SELECT (at - ?) / {int(minute_us)} AS b, action, count(*) FROM audit"
        f" WHERE lsn > ? AND at > ? AND action IN ({_DECISIONS}) GROUP BY b, action",
        [start_us, after_lsn, start_us])
    return [(int(b), str(action), int(n)) for b, action, n in rows]


def decision_totals(store: Queries) -> tuple[int, int]:
    """(approved, rejected) items, all time."""
    row = store.query(
        "SELECT coalesce(sum(approved), 0), coalesce(sum(rejected), 0) FROM agents", [])[0]
    return int(row[0]), int(row[1])


def assertions_after(store: Queries, lsn: int) -> int:
    """Assertions recorded after ``lsn`` (accepted or quarantined)."""
    return int(store.query("SELECT count(*) FROM assertions WHERE lsn > ?", [lsn])[0][0])
