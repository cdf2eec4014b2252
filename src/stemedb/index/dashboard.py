"""The review dashboard's figures the admin queries have no call for: pending items per
reason and per agent, an agent's newest items, and the counts behind the overview's
rates and pending history. Each is one indexed query, in portable SQL over
``store.Queries`` (the PostgreSQL backend runs these same functions)."""

from __future__ import annotations

from typing import Any

from ..answers import quarantine_item
from ..store import Namespaces
from . import filters
from .admin import Q_SELECT
from .store import Queries

_ALL_STATUSES = "q.status IN ('pending', 'approved', 'rejected')"
_DECISIONS = ("'quarantine.approve', 'quarantine.reject'")


def _items(namespaces: Namespaces, params: list[Any]) -> tuple[str, str]:
    """(the quarantine items a query reads, the condition that they are visible): the
    table alone when nothing is hidden, else joined with their assertions."""
    grants = filters.restriction(namespaces)
    if grants is None:
        return "quarantine q", ""
    return ("quarantine q JOIN assertions a ON a.id = q.assertion_id",
            " AND " + filters.positional(grants, params))


def pending_by_reason(store: Queries, namespaces: Namespaces = None) -> dict[str, int]:
    """Pending items per reason (only reasons with items)."""
    params: list[Any] = []
    source, visible = _items(namespaces, params)
    rows = store.query(
        f"SELECT q.reason, count(*) FROM {source} WHERE q.status='pending'{visible}"
        " GROUP BY q.reason", params)
    return {r[0]: int(r[1]) for r in rows}


def pending_by_agent(store: Queries, reason: str, namespaces: Namespaces = None
                     ) -> list[tuple[str, int]]:
    """(agent_id, pending items of ``reason``), busiest first."""
    params: list[Any] = [reason]
    source, visible = _items(namespaces, params)
    rows = store.query(
        f"SELECT q.agent_id, count(*) AS n FROM {source}"
        f" WHERE q.status='pending' AND q.reason=?{visible} GROUP BY q.agent_id"
        " ORDER BY n DESC", params)
    return [(r[0], int(r[1])) for r in rows]


def newest_pending(store: Queries, agent_id: str, reason: str | None, limit: int,
                   namespaces: Namespaces = None) -> list[dict[str, Any]]:
    """The newest pending items of one agent, in the admin API's item shape (one indexed
    range read; unlike ``list_quarantine`` it does not count the agent's items)."""
    sql = Q_SELECT + " WHERE q.status = 'pending' AND q.agent_id = ?"
    params: list[Any] = [agent_id]
    if reason:
        sql += " AND q.reason = ?"
        params.append(reason)
    grants = filters.restriction(namespaces)
    if grants is not None:
        sql += " AND " + filters.positional(grants, params)
    rows = store.query(sql + " ORDER BY q.lsn DESC LIMIT ?", [*params, limit])
    return [quarantine_item(r) for r in rows]


def last_lsn_at(store: Queries, at_us: int) -> int:
    """The last LSN recorded at or before ``at_us`` (0 if none): one index seek.

    Records are stamped in commit order, so the newest stamp at or before a time belongs
    to the greatest LSN at or before it (``IndexStore.lsn_at`` scans for the maximum)."""
    rows = store.query("SELECT lsn FROM lsn_time WHERE at <= ? ORDER BY at DESC LIMIT 1",
                       [at_us])
    return int(rows[0][0]) if rows else 0


def quarantined_between(store: Queries, after_lsn: int, upto_lsn: int,
                        namespaces: Namespaces = None) -> int:
    """Items quarantined (any status but purged) at LSNs in (after_lsn, upto_lsn]."""
    params: list[Any] = [after_lsn, upto_lsn]
    source, visible = _items(namespaces, params)
    return int(store.query(
        f"SELECT count(*) FROM {source} WHERE {_ALL_STATUSES} AND q.lsn > ? AND q.lsn <= ?"
        f"{visible}", params)[0][0])


def decisions_by_minute(store: Queries, start_us: int, after_lsn: int, minute_us: int,
                        namespaces: Namespaces = None) -> list[tuple[int, str, int]]:
    """(minute since ``start_us``, action, items) of approvals and rejections recorded
    after ``start_us`` and ``after_lsn`` (restricted: of visible items only)."""
    params: list[Any] = [start_us, after_lsn, start_us]
    visible = ""
    grants = filters.restriction(namespaces)
    if grants is not None:
        visible = (" AND target IN (SELECT q.id FROM quarantine q JOIN assertions a"
                   " ON a.id = q.assertion_id WHERE " + filters.positional(grants, params) + ")")
    rows = store.query(
        f"SELECT (at - ?) / {int(minute_us)} AS b, action, count(*) FROM audit"
        f" WHERE lsn > ? AND at > ? AND action IN ({_DECISIONS}){visible} GROUP BY b, action",
        params)
    return [(int(b), str(action), int(n)) for b, action, n in rows]


def decision_totals(store: Queries, namespaces: Namespaces = None) -> tuple[int, int]:
    """(approved, rejected) items, all time (restricted: visible items still indexed;
    rejected ones past retention are gone from the rows)."""
    params: list[Any] = []
    grants = filters.restriction(namespaces)
    if grants is not None:
        row = store.query(
            "SELECT coalesce(sum(CASE WHEN q.status = 'approved' THEN 1 ELSE 0 END), 0),"
            " coalesce(sum(CASE WHEN q.status = 'rejected' THEN 1 ELSE 0 END), 0)"
            " FROM quarantine q JOIN assertions a ON a.id = q.assertion_id WHERE "
            + filters.positional(grants, params), params)[0]
        return int(row[0]), int(row[1])
    row = store.query(
        "SELECT coalesce(sum(approved), 0), coalesce(sum(rejected), 0) FROM agents", [])[0]
    return int(row[0]), int(row[1])


def assertions_after(store: Queries, lsn: int, namespaces: Namespaces = None) -> int:
    """Assertions recorded after ``lsn`` (accepted or quarantined)."""
    grants = filters.restriction(namespaces)
    if grants is not None:
        params: list[Any] = [lsn]
        return int(store.query("SELECT count(*) FROM assertions a WHERE a.lsn > ? AND "
                               + filters.positional(grants, params), params)[0][0])
    return int(store.query("SELECT count(*) FROM assertions WHERE lsn > ?", [lsn])[0][0])
