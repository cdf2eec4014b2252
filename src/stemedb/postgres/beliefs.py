"""Beliefs and disputes on PostgreSQL: the inputs read as of one LSN, in one snapshot;
the answers made by the embedded index's pure functions (``index/beliefs.py``:
``beliefs_from_latest``, ``disputes_from_groups``, the pages), so both backends compute
them the same way. No cache yet: every answer is computed from the rows.

Trust weights are those in force at the LSN: at the newest LSN the ``agents`` counters;
at an earlier one they are recounted from the rows (``counts_as_of``), as the embedded
``trust_counts_as_of`` does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from psycopg.rows import dict_row

from ..beliefs import Standing
from ..index import beliefs as shared
from ..index import filters
from ..model import nfc
from ..store import Namespaces
from .connection import Conn
from .query import applied_lsn

_COUNTERS = ("accepted", "quarantined", "approved", "rejected", "retracted")
# A key revoked at LSN L: its assertions count for nothing in answers at L or later.
_REVOKED = "SELECT agent_id FROM enrollments WHERE revoked_lsn <= %(n)s"
_ACTIVE = ("active_lsn IS NOT NULL AND active_lsn <= %(n)s"
           f" AND (ended_lsn IS NULL OR ended_lsn > %(n)s) AND agent_id NOT IN ({_REVOKED})")


def pin(conn: Conn, as_of: int | None) -> tuple[int, bool]:
    """(the LSN to answer at, whether it is the newest one)."""
    applied = applied_lsn(conn)
    n = applied if as_of is None else max(0, min(as_of, applied))
    return n, n == applied


def lsn_time_us(conn: Conn, lsn: int) -> int | None:
    row = conn.execute("SELECT at FROM lsn_time WHERE lsn = %s", (lsn,)).fetchone()
    return int(row[0]) if row else None


# -- trust as of an LSN -------------------------------------------------------------------


def current_counts(conn: Conn, agents: Iterable[str]) -> dict[str, tuple[int, ...]]:
    ids = sorted(set(agents))
    rows = conn.execute(f"SELECT agent_id, {', '.join(_COUNTERS)} FROM agents"
                        " WHERE agent_id = ANY(%b::text[])", (ids,))
    return {r[0]: tuple(int(v) for v in r[1:]) for r in rows}


def counts_as_of(conn: Conn, agents: Iterable[str], n: int) -> dict[str, tuple[int, ...]]:
    """Each agent's trust counters as they stood at LSN ``n``, recounted from the rows
    (see ``index.beliefs.trust_counts_as_of`` for the rules)."""
    ids = sorted(set(agents))
    acc: dict[str, list[int]] = {a: [0, 0, 0, 0, 0] for a in ids}
    params = {"ids": ids, "n": n}
    for agent, accepted, retracted in conn.execute(
            "SELECT agent_id, count(*) FILTER (WHERE active_lsn = lsn),"
            " count(*) FILTER (WHERE status = 'retracted' AND ended_lsn <= %(n)s)"
            " FROM assertions WHERE agent_id = ANY(%(ids)b::text[]) AND lsn <= %(n)s"
            " GROUP BY agent_id", params):
        acc[agent][0], acc[agent][4] = int(accepted), int(retracted)
    for agent, quarantined, approved, rejected in conn.execute(
            "SELECT agent_id, count(*),"
            " count(*) FILTER (WHERE status = 'approved' AND decided_lsn <= %(n)s),"
            " count(*) FILTER (WHERE status = 'rejected' AND decided_lsn <= %(n)s)"
            " FROM quarantine WHERE status IN ('pending', 'approved', 'rejected')"
            " AND agent_id = ANY(%(ids)b::text[]) AND lsn <= %(n)s GROUP BY agent_id", params):
        acc[agent][1:4] = [int(quarantined), int(approved), int(rejected)]
    purge = conn.execute("SELECT max(lsn) FROM audit WHERE action = 'quarantine.purge'"
                         " AND lsn <= %s", (n,)).fetchone()
    if purge is not None and purge[0] is not None:
        # Rejected items forgotten by the purge are no longer in the rows.
        for agent, purged in conn.execute(
                "SELECT g.agent_id, g.rejected - (SELECT count(*) FROM quarantine q"
                " WHERE q.agent_id = g.agent_id AND q.status = 'rejected')"
                " FROM agents g WHERE g.agent_id = ANY(%b::text[])", (ids,)):
            if purged and purged > 0:
                acc[agent][1] += int(purged)
                acc[agent][3] += int(purged)
    return {a: tuple(v) for a, v in acc.items()}


def standings(conn: Conn, agents: Iterable[str], n: int, current: bool) -> dict[str, Standing]:
    counts = current_counts(conn, agents) if current else counts_as_of(conn, agents, n)
    return {a: shared.standing_of(c) for a, c in counts.items()}


# -- beliefs ------------------------------------------------------------------------------

# Per predicate and agent with any row on the key up to n, its latest claim active at n
# (lsn NULL when none is), in the column order ``beliefs_from_latest`` reads.
_LATEST = f"""
SELECT k.predicate, k.agent_id, k.lsn, k.id, k.object_json, k.context, k.confidence,
       k.evidence, k.recorded_at{{counts}}
FROM (
    SELECT DISTINCT ON (predicate, agent_id) predicate, agent_id,
           CASE WHEN {_ACTIVE} THEN lsn END AS lsn, id, object_json, context, confidence,
           evidence, recorded_at
    FROM assertions WHERE {{where}} AND lsn <= %(n)s
    ORDER BY predicate, agent_id, CASE WHEN {_ACTIVE} THEN lsn END DESC NULLS LAST
) k{{join}}
ORDER BY k.predicate, k.agent_id
"""
_WITH_COUNTS = "".join(f", g.{c}" for c in _COUNTERS)
_JOIN_COUNTS = " LEFT JOIN agents g ON g.agent_id = k.agent_id"


def _key_where(subject: str, predicate: str | None, context: str | None
               ) -> tuple[str, dict[str, Any]]:
    where = ["md5(subject) = md5(%(s)s) AND subject = %(s)s"]
    params: dict[str, Any] = {"s": subject}
    if predicate is not None:
        where.append("md5(predicate) = md5(%(p)s) AND predicate = %(p)s")
        params["p"] = predicate
    if context is not None:
        where.append("context = %(c)s")
        params["c"] = context
    return " AND ".join(where), params


def compute_beliefs(conn: Conn, subject: str, predicate: str | None, context: str | None,
                    n: int, current: bool, grants: tuple[str, ...] | None = None,
                    valid_at: int | None = None) -> list[dict[str, Any]]:
    """The beliefs on a key at LSN ``n``, one per predicate (``predicate`` None: every
    predicate of the subject), over the claims ``grants`` cover and valid at
    ``valid_at`` (as ``index.beliefs.compute_beliefs``)."""
    where, params = _key_where(subject, predicate, context)
    params["n"] = n
    if grants is not None:
        where += " AND " + filters.named(grants, params, filters.psycopg_mark)
    if valid_at is not None:
        where += " AND " + filters.valid_at(valid_at, params, filters.psycopg_mark)
    sql = _LATEST.format(where=where, counts=_WITH_COUNTS if current else "",
                         join=_JOIN_COUNTS if current else "")
    rows = conn.execute(sql, params).fetchall()
    _, _, beliefs = shared.beliefs_from_latest(
        rows, current, lambda agents: standings(conn, agents, n, current=False))
    return beliefs


def belief_json(conn: Conn, subject: str, predicate: str, context: str | None,
                as_of: int | None, namespaces: Namespaces = None,
                valid_at: int | None = None) -> bytes:
    s, p = shared.key_text(subject), shared.key_text(predicate)
    ctx = nfc(context) if context is not None else None
    n, current = pin(conn, as_of)
    beliefs = compute_beliefs(conn, s, p, ctx, n, current, filters.restriction(namespaces),
                              valid_at)
    return orjson.dumps(shared.belief_answer(s, p, ctx, n, beliefs))


def subject_beliefs(conn: Conn, subject: str, context: str | None, as_of: int | None,
                    limit: int, cursor: str | None, namespaces: Namespaces = None,
                    valid_at: int | None = None) -> dict[str, Any]:
    s = shared.key_text(subject)
    ctx = nfc(context) if context is not None else None
    as_of, offset, limit = shared.page_args(cursor, as_of, limit)
    n, current = pin(conn, as_of)
    beliefs = compute_beliefs(conn, s, None, ctx, n, current, filters.restriction(namespaces),
                              valid_at)
    return shared.beliefs_page(s, ctx, n, beliefs, offset, limit)


# -- disputes -----------------------------------------------------------------------------

# Keys on which active assertions of at least two agents name at least two objects (the
# only keys that can be contested), then every row of those keys active by n.
_DISPUTE_ROWS = f"""
WITH keys AS MATERIALIZED (
    SELECT subject, predicate, context FROM assertions
    WHERE {_ACTIVE} {{filter}}
    GROUP BY subject, predicate, context
    HAVING count(DISTINCT object_json) > 1 AND count(DISTINCT agent_id) > 1
)
SELECT a.subject, a.id, a.agent_id, a.predicate, a.object_json, a.context, a.confidence,
       a.evidence, a.recorded_at, a.lsn, a.active_lsn, a.ended_lsn
FROM keys JOIN assertions a
  ON a.subject = keys.subject AND a.predicate = keys.predicate AND a.context = keys.context
WHERE a.active_lsn IS NOT NULL AND a.active_lsn <= %(n)s AND a.agent_id NOT IN ({_REVOKED})
ORDER BY a.subject, a.predicate, a.context, a.lsn
"""


def compute_disputes(conn: Conn, n: int, current: bool, subject: str | None,
                     predicate: str | None, grants: tuple[str, ...] | None = None
                     ) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"n": n}
    flt = ""
    if grants is not None:
        flt += " AND " + filters.named(grants, params, filters.psycopg_mark)
    if subject is not None:
        flt += " AND md5(subject) = md5(%(s)s) AND subject = %(s)s"
        params["s"] = subject
    if predicate is not None:
        flt += " AND md5(predicate) = md5(%(p)s) AND predicate = %(p)s"
        params["p"] = predicate
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    with conn.cursor(row_factory=dict_row) as cur:
        for r in cur.execute(_DISPUTE_ROWS.format(filter=flt), params):
            groups.setdefault((r["subject"], r["predicate"], r["context"]), []).append(r)
    return shared.disputes_from_groups(groups, n,
                                       lambda agents: standings(conn, agents, n, current),
                                       lambda lsn: lsn_time_us(conn, lsn))


def disputes(conn: Conn, as_of: int | None, limit: int, cursor: str | None, *,
             reference_us: int | None, subject: str | None, predicate: str | None,
             namespaces: Namespaces = None) -> dict[str, Any]:
    as_of, offset, limit = shared.page_args(cursor, as_of, limit)
    s = shared.key_text(subject) if subject is not None else None
    p = shared.key_text(predicate) if predicate is not None else None
    n, current = pin(conn, as_of)
    items = compute_disputes(conn, n, current, s, p, filters.restriction(namespaces))
    ref = reference_us if reference_us is not None else lsn_time_us(conn, n)
    return shared.dispute_page(items, n, offset, limit, ref)
