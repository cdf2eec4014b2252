"""The inputs of beliefs and disputes, gathered from the index as of one LSN.

Everything one answer reads happens in one read transaction (one SQLite snapshot), so an
answer is "the database up to LSN N" even while writes land. Trust weights are those in
force at N: for the newest LSN they are the ``agents`` counters; for an earlier LSN they
are recounted from the rows (``trust_counts_as_of``), which give the same numbers the
counters had at N. The formula itself is pure, in ``stemedb.beliefs``.

Answers at the newest LSN are cached per subject/predicate/context and re-validated on
each read: reused only when no row of that key was added and no counter of any agent that
ever wrote on it changed (those are the only things the answer depends on).
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from ..beliefs import (
    DIGITS,
    Belief,
    Candidate,
    Claim,
    Standing,
    aggregate,
    dispute_order,
    object_key,
    run_start,
)
from ..defense.trust import TrustCounts
from ..model import nfc
from .query import MAX_LIMIT, _us_to_time, decode_cursor, encode_cursor
from .store import IndexStore

_CHUNK = 500  # agent ids per IN (...) list
_BELIEF_CACHE_SIZE = 1024
_DISPUTE_CACHE_SIZE = 4

_ROW_COLS = (
    "id, agent_id, predicate, object_json, context, confidence, evidence, recorded_at,"
    " lsn, active_lsn, ended_lsn"
)
_ACTIVE = "active_lsn IS NOT NULL AND active_lsn <= :n AND (ended_lsn IS NULL OR ended_lsn > :n)"
_COUNTERS = ("accepted", "quarantined", "approved", "rejected", "retracted")


# -- snapshot and LSN -------------------------------------------------------------------


@contextmanager
def snapshot(store: IndexStore) -> Iterator[sqlite3.Connection]:
    """This thread's read connection inside one read transaction (one consistent view)."""
    conn = store.reader
    if conn.in_transaction:  # already inside a snapshot
        yield conn
        return
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")


def _applied(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key='applied_lsn'").fetchone()
    return int(row[0]) if row else 0


def pin(conn: sqlite3.Connection, as_of: int | None) -> tuple[int, bool]:
    """(the LSN to answer at, whether it is the newest one)."""
    applied = _applied(conn)
    n = applied if as_of is None else max(0, min(as_of, applied))
    return n, n == applied


def lsn_time_us(conn: sqlite3.Connection, lsn: int) -> int | None:
    row = conn.execute("SELECT at FROM lsn_time WHERE lsn=?", (lsn,)).fetchone()
    return int(row[0]) if row else None


# -- trust as of an LSN -----------------------------------------------------------------


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def current_counts(conn: sqlite3.Connection, agents: Iterable[str]) -> dict[str, TrustCounts]:
    """The ``agents`` counters: the trust inputs at the newest LSN."""
    out: dict[str, TrustCounts] = {}
    ids = sorted(set(agents))
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        for r in conn.execute(
            f"SELECT agent_id, {', '.join(_COUNTERS)} FROM agents WHERE agent_id IN ({marks})",
            chunk,
        ):
            out[r[0]] = TrustCounts(*r[1:])
    return out


def trust_counts_as_of(
    conn: sqlite3.Connection, agents: Iterable[str], n: int
) -> dict[str, TrustCounts]:
    """Each agent's trust counters as they stood at LSN ``n``, recounted from the rows:

    - accepted: its assertions journaled at or before ``n`` that were active from their
      own LSN (accepted at write time; approvals are counted as ``approved``);
    - quarantined: its quarantine items created at or before ``n``;
    - approved / rejected: those items decided (``decided_lsn``) at or before ``n``;
    - retracted: its assertions retracted (``ended_lsn``) at or before ``n``.

    Rejected items forgotten by the retention purge are no longer in the rows; they are
    counted (as quarantined and rejected) when ``n`` is at or after the last purge.
    """
    ids = sorted(set(agents))
    acc: dict[str, list[int]] = {a: [0, 0, 0, 0, 0] for a in ids}
    purge = conn.execute(
        "SELECT max(lsn) FROM audit WHERE action='quarantine.purge' AND lsn <= ?", (n,)
    ).fetchone()[0]
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        for agent, accepted, retracted in conn.execute(
            "SELECT agent_id, sum(active_lsn = lsn), sum(status = 'retracted' AND ended_lsn <= ?)"
            f" FROM assertions WHERE agent_id IN ({marks}) AND lsn <= ? GROUP BY agent_id",
            (n, *chunk, n),
        ):
            acc[agent][0] = int(accepted or 0)
            acc[agent][4] = int(retracted or 0)
        for agent, quarantined, approved, rejected in conn.execute(
            "SELECT agent_id, count(*), sum(status = 'approved' AND decided_lsn <= ?),"
            " sum(status = 'rejected' AND decided_lsn <= ?) FROM quarantine"
            f" WHERE status IN ('pending', 'approved', 'rejected') AND agent_id IN ({marks})"
            " AND lsn <= ? GROUP BY agent_id",
            (n, n, *chunk, n),
        ):
            acc[agent][1] = int(quarantined)
            acc[agent][2] = int(approved or 0)
            acc[agent][3] = int(rejected or 0)
        if purge is not None:
            for agent, purged in conn.execute(
                "SELECT g.agent_id, g.rejected - (SELECT count(*) FROM quarantine q"
                " WHERE q.agent_id = g.agent_id AND q.status = 'rejected')"
                f" FROM agents g WHERE g.agent_id IN ({marks})",
                chunk,
            ):
                if purged and purged > 0:
                    acc[agent][1] += purged
                    acc[agent][3] += purged
    return {a: TrustCounts(*v) for a, v in acc.items()}


def standings(
    conn: sqlite3.Connection, agents: Iterable[str], n: int, current: bool
) -> dict[str, Standing]:
    counts = current_counts(conn, agents) if current else trust_counts_as_of(conn, agents, n)
    return {a: Standing.of(c) for a, c in counts.items()}


# -- rows to claims ---------------------------------------------------------------------


def _active(row: sqlite3.Row, n: int) -> bool:
    a, e = row["active_lsn"], row["ended_lsn"]
    return a is not None and a <= n and (e is None or e > n)


def _latest_active(rows: Iterable[sqlite3.Row], n: int) -> list[sqlite3.Row]:
    """Each agent's latest row active at ``n`` (the only claim of it that counts)."""
    best: dict[str, sqlite3.Row] = {}
    for r in rows:
        if _active(r, n):
            b = best.get(r["agent_id"])
            if b is None or r["lsn"] > b["lsn"]:
                best[r["agent_id"]] = r
    return list(best.values())


def _claim(row: sqlite3.Row) -> Claim:
    evidence = orjson.loads(row["evidence"])
    return Claim(
        id=row["id"],
        agent_id=row["agent_id"],
        object_json=object_key(row["object_json"]),
        confidence=float(row["confidence"]),
        evidence=tuple(e for e in evidence if isinstance(e, str)),
        context=row["context"],
        recorded_at_us=int(row["recorded_at"]),
        lsn=int(row["lsn"]),
    )


def _r(x: float) -> float:
    return round(x, DIGITS)


def candidate_dict(c: Candidate, with_support: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "object": orjson.loads(c.object_json),
        "score": _r(c.score),
        "strength": _r(c.strength),
        "agents": c.agents,
    }
    if with_support:
        out["groups"] = [
            {"kind": g.kind, "strength": _r(g.strength), "agents": g.agents} for g in c.groups
        ]
        out["support"] = [
            {
                "id": s.claim.id,
                "agent_id": s.claim.agent_id,
                "confidence": s.claim.confidence,
                "evidence": list(s.claim.evidence),
                "context": s.claim.context or None,
                "recorded_at": _us_to_time(s.claim.recorded_at_us),
                "lsn": s.claim.lsn,
                "trust": s.standing.trust,
                "trusted": s.standing.trusted,
                "weight": _r(s.weight),
                "group": s.group,
            }
            for s in c.support
        ]
    return out


def belief_dict(b: Belief) -> dict[str, Any]:
    return {
        "candidates": [candidate_dict(c) for c in b.candidates],
        "contested": b.contested,
        "contention": _r(b.contention),
    }


# -- beliefs ----------------------------------------------------------------------------


@dataclass
class _Cached:
    n: int
    max_lsn: int
    watched: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]
    beliefs: list[dict[str, Any]]  # one per predicate, sorted by predicate


class _Caches:
    """Small LRU caches, one set per index store."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.beliefs: OrderedDict[tuple[Any, ...], _Cached] = OrderedDict()
        self.disputes: OrderedDict[tuple[Any, ...], list[dict[str, Any]]] = OrderedDict()


_caches: weakref.WeakKeyDictionary[IndexStore, _Caches] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def _caches_of(store: IndexStore) -> _Caches:
    with _caches_lock:
        c = _caches.get(store)
        if c is None:
            c = _caches[store] = _Caches()
        return c


def _lru_get(d: OrderedDict[Any, Any], key: Any) -> Any:
    value = d.get(key)
    if value is not None:
        d.move_to_end(key)
    return value


def _lru_put(d: OrderedDict[Any, Any], key: Any, value: Any, size: int) -> None:
    d[key] = value
    d.move_to_end(key)
    while len(d) > size:
        d.popitem(last=False)


def _key_where(
    subject: str, predicate: str | None, context: str | None
) -> tuple[str, dict[str, Any]]:
    where = ["subject = :s"]
    params: dict[str, Any] = {"s": subject}
    if predicate is not None:
        where.append("predicate = :p")
        params["p"] = predicate
    if context is not None:
        where.append("context = :c")
        params["c"] = context
    return " AND ".join(where), params


def _counts_tuple(
    counts: dict[str, TrustCounts], agents: Sequence[str]
) -> tuple[tuple[int, ...], ...]:
    return tuple(
        (c.accepted, c.quarantined, c.approved, c.rejected, c.retracted) if c else ()
        for c in (counts.get(a) for a in agents)
    )


def compute_beliefs(
    conn: sqlite3.Connection,
    subject: str,
    predicate: str | None,
    context: str | None,
    n: int,
    current: bool,
) -> _Cached:
    """The beliefs on a key at LSN ``n``, uncached, one per predicate (``predicate`` None:
    every predicate of the subject). ``current``: ``n`` is the newest LSN, so the live
    counters are the trust inputs (and are remembered for re-validation)."""
    where, params = _key_where(subject, predicate, context)
    params["n"] = n
    # Per predicate and agent: its latest active claim (only that one counts), and every
    # agent with any row on the key (whose counters the cached answer depends on).
    per_agent = conn.execute(
        f"SELECT agent_id, max(lsn), max(CASE WHEN {_ACTIVE} THEN lsn END) FROM assertions"
        f" WHERE {where} AND lsn <= :n GROUP BY predicate, agent_id",
        params,
    ).fetchall()
    watched = tuple(sorted({r[0] for r in per_agent}))
    latest = sorted(r[2] for r in per_agent if r[2] is not None)
    by_predicate: dict[str, list[Claim]] = {}
    for chunk in _chunks(latest):
        marks = ",".join("?" * len(chunk))
        for r in conn.execute(f"SELECT {_ROW_COLS} FROM assertions WHERE lsn IN ({marks})", chunk):
            by_predicate.setdefault(r["predicate"], []).append(_claim(r))
    supporters = {c.agent_id for claims in by_predicate.values() for c in claims}
    if current:
        counts = current_counts(conn, watched)
        st = {a: Standing.of(counts[a]) for a in supporters if a in counts}
        counts_t = _counts_tuple(counts, watched)
    else:
        st = standings(conn, supporters, n, current=False)
        counts_t = ()
    out = []
    for p in sorted(by_predicate):
        out.append({"predicate": p, **belief_dict(aggregate(by_predicate[p], st))})
    return _Cached(
        n=n,
        max_lsn=max((int(r[1]) for r in per_agent), default=0),
        watched=watched,
        counts=counts_t,
        beliefs=out,
    )


def _still_valid(
    conn: sqlite3.Connection, e: _Cached, subject: str, predicate: str | None, context: str | None
) -> bool:
    where, params = _key_where(subject, predicate, context)
    max_lsn = conn.execute(f"SELECT max(lsn) FROM assertions WHERE {where}", params).fetchone()[0]
    if int(max_lsn or 0) != e.max_lsn:
        return False
    return _counts_tuple(current_counts(conn, e.watched), e.watched) == e.counts


def _beliefs_at(
    store: IndexStore,
    conn: sqlite3.Connection,
    subject: str,
    predicate: str | None,
    context: str | None,
    as_of: int | None,
) -> tuple[int, list[dict[str, Any]]]:
    n, current = pin(conn, as_of)
    caches = _caches_of(store)
    key: tuple[Any, ...] = (
        (subject, predicate, context) if current else (subject, predicate, context, n)
    )
    with caches.lock:
        hit: _Cached | None = _lru_get(caches.beliefs, key)
    if hit is not None and (
        hit.n == n or (current and _still_valid(conn, hit, subject, predicate, context))
    ):
        if hit.n != n:
            hit = _Cached(n, hit.max_lsn, hit.watched, hit.counts, hit.beliefs)
            with caches.lock:
                _lru_put(caches.beliefs, key, hit, _BELIEF_CACHE_SIZE)
        return n, hit.beliefs
    fresh = compute_beliefs(conn, subject, predicate, context, n, current)
    with caches.lock:
        _lru_put(caches.beliefs, key, fresh, _BELIEF_CACHE_SIZE)
    return n, fresh.beliefs


def _key(value: str) -> str:
    return nfc(value.strip())


def belief(
    store: IndexStore,
    subject: str,
    predicate: str,
    context: str | None = None,
    as_of: int | None = None,
) -> dict[str, Any]:
    """``{"subject", "predicate", "context", "as_of_lsn", "candidates", "contested",
    "contention"}`` for one subject/predicate (``context`` None: every context)."""
    s, p = _key(subject), _key(predicate)
    ctx = nfc(context) if context is not None else None
    with snapshot(store) as conn:
        n, beliefs = _beliefs_at(store, conn, s, p, ctx, as_of)
    b = beliefs[0] if beliefs else {"candidates": [], "contested": False, "contention": 0.0}
    return {
        "subject": s,
        "predicate": p,
        "context": ctx,
        "as_of_lsn": n,
        "candidates": b["candidates"],
        "contested": b["contested"],
        "contention": b["contention"],
    }


def subject_beliefs(
    store: IndexStore,
    subject: str,
    context: str | None = None,
    as_of: int | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Every predicate of a subject: ``{"subject", "context", "as_of_lsn", "beliefs":
    [{"predicate", "candidates", "contested", "contention"}], "next_cursor"}``, predicates
    in order; the cursor pins the LSN of the first page."""
    s = _key(subject)
    ctx = nfc(context) if context is not None else None
    offset = 0
    if cursor:
        c = decode_cursor(cursor)
        as_of, offset = c.get("a", as_of), c.get("o", 0)
    limit = max(1, min(limit, MAX_LIMIT))
    with snapshot(store) as conn:
        n, beliefs = _beliefs_at(store, conn, s, None, ctx, as_of)
    page = beliefs[offset : offset + limit]
    more = offset + limit < len(beliefs)
    return {
        "subject": s,
        "context": ctx,
        "as_of_lsn": n,
        "beliefs": page,
        "next_cursor": encode_cursor({"o": offset + limit, "a": n}) if more else None,
    }


# -- disputes ---------------------------------------------------------------------------

# Keys (subject, predicate, context) on which active assertions of at least two agents
# name at least two objects: the only keys that can be contested. One pass over the
# active rows in SQL; the rows of those keys only are then read through the key index.
_DISPUTE_ROWS = f"""
WITH keys AS MATERIALIZED (
    SELECT subject, predicate, context FROM assertions
    WHERE {_ACTIVE} {{filter}}
    GROUP BY subject, predicate, context
    HAVING count(DISTINCT object_json) > 1 AND count(DISTINCT agent_id) > 1
)
SELECT a.subject, {", ".join("a." + c.strip() for c in _ROW_COLS.split(","))}
FROM keys JOIN assertions a
  ON a.subject = keys.subject AND a.predicate = keys.predicate AND a.context = keys.context
WHERE a.active_lsn IS NOT NULL AND a.active_lsn <= :n
ORDER BY a.subject, a.predicate, a.context
"""


def compute_disputes(
    conn: sqlite3.Connection, n: int, current: bool, subject: str | None, predicate: str | None
) -> list[dict[str, Any]]:
    """Every contested key at LSN ``n``, most contested first, uncached."""
    params: dict[str, Any] = {"n": n}
    flt = ""
    if subject is not None:
        flt += " AND subject = :s"
        params["s"] = subject
    if predicate is not None:
        flt += " AND predicate = :p"
        params["p"] = predicate
    groups: dict[tuple[str, str, str], list[sqlite3.Row]] = {}
    for r in conn.execute(_DISPUTE_ROWS.format(filter=flt), params):
        groups.setdefault((r["subject"], r["predicate"], r["context"]), []).append(r)
    claims = {k: [_claim(r) for r in _latest_active(rows, n)] for k, rows in groups.items()}
    agents = {c.agent_id for cs in claims.values() for c in cs}
    st = standings(conn, agents, n, current)
    out: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    for k, cs in claims.items():
        b = aggregate(cs, st)
        if not b.contested:
            continue
        starts = []
        for cand in b.top_two:
            spans = [
                (int(r["active_lsn"]), r["ended_lsn"])
                for r in groups[k]
                if object_key(r["object_json"]) == cand.object_json
            ]
            starts.append(run_start(spans, n) or n)
        since = max(starts)
        at = lsn_time_us(conn, since)
        runner_up = b.top_two[1].strength
        item = {
            "subject": k[0],
            "predicate": k[1],
            "context": k[2] or None,
            "contention": _r(b.contention),
            "candidates": [candidate_dict(c, with_support=False) for c in b.candidates],
            "open_since_lsn": since,
            "open_since": _us_to_time(at) if at is not None else None,
            "_open_since_us": at,
        }
        out.append((dispute_order(b.contention, runner_up, since, k), item))
    out.sort(key=lambda t: t[0])
    return [item for _, item in out]


def disputes(
    store: IndexStore,
    as_of: int | None = None,
    limit: int = 100,
    cursor: str | None = None,
    *,
    reference_us: int | None = None,
    subject: str | None = None,
    predicate: str | None = None,
) -> dict[str, Any]:
    """Contested keys, most contested first: ``{"items", "next_cursor", "as_of_lsn"}``.

    ``reference_us`` is the moment ``open_for_seconds`` is measured to (the ``as_of``
    time; None: the time of the LSN answered at)."""
    offset = 0
    if cursor:
        c = decode_cursor(cursor)
        as_of, offset = c.get("a", as_of), c.get("o", 0)
    limit = max(1, min(limit, MAX_LIMIT))
    s = _key(subject) if subject is not None else None
    p = _key(predicate) if predicate is not None else None
    caches = _caches_of(store)
    with snapshot(store) as conn:
        n, current = pin(conn, as_of)
        key = (n, s, p)
        with caches.lock:
            items: list[dict[str, Any]] | None = _lru_get(caches.disputes, key)
        if items is None:
            items = compute_disputes(conn, n, current, s, p)
            with caches.lock:
                _lru_put(caches.disputes, key, items, _DISPUTE_CACHE_SIZE)
        ref = reference_us if reference_us is not None else lsn_time_us(conn, n)
    page = []
    for item in items[offset : offset + limit]:
        shown = {k: v for k, v in item.items() if not k.startswith("_")}
        since_us = item["_open_since_us"]
        shown["open_for_seconds"] = (
            round(max(0, ref - since_us) / 1e6, 3)
            if ref is not None and since_us is not None
            else None
        )
        page.append(shown)
    more = offset + limit < len(items)
    return {
        "items": page,
        "total": len(items),
        "as_of_lsn": n,
        "next_cursor": encode_cursor({"o": offset + limit, "a": n}) if more else None,
    }
