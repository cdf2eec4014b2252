"""The inputs of beliefs and disputes, gathered from the index as of one LSN.

Everything one answer reads happens in one read transaction (one SQLite snapshot), so an
answer is "the database up to LSN N" even while writes land. Trust weights are those in
force at N: for the newest LSN they are the ``agents`` counters; for an earlier LSN they
are recounted from the rows (``trust_counts_as_of``), which give the same numbers the
counters had at N. The formula itself is pure, in ``stemedb.beliefs``.

Answers at the newest LSN are cached per subject/predicate/context and re-validated on
each read: reused only when no row of that key was added and no counter of any agent that
ever wrote on it changed (those are the only things the answer depends on). An entry
remembers the LSN it was last found valid at, and the serialised answer for that LSN:
while the index has not moved, a read is one look-up (``cached_belief_json``).
"""

from __future__ import annotations

import functools
import sqlite3
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from ..answers import belief_dict, candidate_dict, decode_cursor, encode_cursor, rounded
from ..beliefs import (
    Claim,
    Standing,
    aggregate,
    dispute_order,
    object_key,
    run_start,
)
from ..model import nfc, us_to_time
from ..store import Namespaces
from ..trust import TrustCounts
from . import filters
from .query import MAX_LIMIT
from .store import IndexStore

_CHUNK = 500  # agent ids per IN (...) list
_BELIEF_CACHE_SIZE = 1024
_DISPUTE_CACHE_SIZE = 4
_COMPUTE_LOCKS = 64

_ROW_COLS = (
    "id, agent_id, predicate, object_json, context, confidence, evidence, recorded_at,"
    " lsn, active_lsn, ended_lsn"
)
# A key revoked at LSN L: its assertions count for nothing in answers at L or later.
REVOKED_AT_N = "SELECT agent_id FROM enrollments WHERE revoked_lsn <= :n"
_ACTIVE = ("active_lsn IS NOT NULL AND active_lsn <= :n AND (ended_lsn IS NULL OR ended_lsn > :n)"
           f" AND agent_id NOT IN ({REVOKED_AT_N})")
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


def current_counts(conn: sqlite3.Connection, agents: Iterable[str]) -> dict[str, tuple[int, ...]]:
    """The ``agents`` counters, the trust inputs at the newest LSN, as plain tuples in
    ``_COUNTERS`` order (cheap to compare and to key a cache with)."""
    out: dict[str, tuple[int, ...]] = {}
    ids = sorted(set(agents))
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        for r in _tuples(
            conn,
            f"SELECT agent_id, {', '.join(_COUNTERS)} FROM agents WHERE agent_id IN ({marks})",
            chunk,
        ):
            out[r[0]] = r[1:]
    return out


def _tuples(conn: sqlite3.Connection, sql: str, params: Any) -> list[tuple[Any, ...]]:
    """Rows as plain tuples (the store's connections make ``sqlite3.Row`` objects)."""
    cur = conn.cursor()
    cur.row_factory = None
    return cur.execute(sql, params).fetchall()


@functools.lru_cache(maxsize=4096)
def standing_of(counts: tuple[int, ...]) -> Standing:
    """The standing of an agent with these counters (``_COUNTERS`` order)."""
    return Standing.of(TrustCounts(*counts))


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
    return {a: TrustCounts(*c) for a, c in _counts_as_of(conn, agents, n).items()}


def _counts_as_of(
    conn: sqlite3.Connection, agents: Iterable[str], n: int
) -> dict[str, tuple[int, ...]]:
    """``trust_counts_as_of`` as plain tuples (in ``_COUNTERS`` order)."""
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
    return {a: tuple(v) for a, v in acc.items()}


def standings(
    conn: sqlite3.Connection, agents: Iterable[str], n: int, current: bool
) -> dict[str, Standing]:
    counts = current_counts(conn, agents) if current else _counts_as_of(conn, agents, n)
    return {a: standing_of(c) for a, c in counts.items()}


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


# -- beliefs ----------------------------------------------------------------------------


@dataclass
class _Cached:
    n: int  # the LSN the entry was computed or last found valid at
    max_lsn: int
    watched: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]
    beliefs: list[dict[str, Any]]  # one per predicate, sorted by predicate
    body: bytes | None = None  # the serialised ``belief`` answer at ``n``


class _Caches:
    """Small LRU caches, one set per index store."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.beliefs: OrderedDict[tuple[Any, ...], _Cached] = OrderedDict()
        self.disputes: OrderedDict[tuple[Any, ...], list[dict[str, Any]]] = OrderedDict()
        # One computation per key at a time: when a write invalidates a busy key, the
        # readers queued behind the first find its fresh answer instead of each redoing it.
        self.computing = [threading.Lock() for _ in range(_COMPUTE_LOCKS)]

    def computing_lock(self, key: tuple[Any, ...]) -> threading.Lock:
        return self.computing[hash(key) % _COMPUTE_LOCKS]


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


def _key_lsn(conn: sqlite3.Connection, subject: str, predicate: str | None, n: int) -> int:
    """The greatest LSN of any row on the subject (and predicate) up to ``n``, whatever its
    context, or of a key revocation up to ``n`` if that is later: one step down a covering
    index each. A cached answer on a key is stale when this moved (a context-filtered
    answer may so be recomputed needlessly, never kept wrongly). A revocation is always
    newer than every row before it, so one revoked after the answer moves it."""
    if predicate is None:
        sql = "SELECT max(lsn) FROM assertions WHERE subject = ? AND lsn <= ?"
        params: tuple[Any, ...] = (subject, n)
    else:
        sql = "SELECT max(lsn) FROM assertions WHERE subject = ? AND predicate = ? AND lsn <= ?"
        params = (subject, predicate, n)
    sql = (f"SELECT max(coalesce(({sql}), 0), coalesce((SELECT max(revoked_lsn)"
           " FROM enrollments WHERE revoked_lsn <= ?), 0))")
    return int(conn.execute(sql, (*params, n)).fetchone()[0] or 0)


# Per predicate and agent with any row on the key up to :n, its latest claim active at :n:
# with exactly one max() in an aggregate query, SQLite takes the other (bare) columns from
# the row that holds the maximum (https://sqlite.org/lang_select.html#bare_columns_in_an_
# aggregate_query). An agent with no active row gets NULL: not a supporter, but its
# counters are watched (a later approval or write of it changes the answer).
_LATEST = f"""
SELECT k.predicate, k.agent_id, k.lsn, k.id, k.object_json, k.context, k.confidence,
       k.evidence, k.recorded_at{{counts}}
FROM (
    SELECT predicate, agent_id, max(CASE WHEN {_ACTIVE} THEN lsn END) AS lsn, id, object_json,
           context, confidence, evidence, recorded_at
    FROM assertions WHERE {{where}} AND lsn <= :n GROUP BY predicate, agent_id
) k{{join}}
"""
_WITH_COUNTS = "".join(f", g.{c}" for c in _COUNTERS)
_JOIN_COUNTS = " LEFT JOIN agents g ON g.agent_id = k.agent_id"


def compute_beliefs(
    conn: sqlite3.Connection,
    subject: str,
    predicate: str | None,
    context: str | None,
    n: int,
    current: bool,
    grants: tuple[str, ...] | None = None,
    valid_at: int | None = None,
) -> _Cached:
    """The beliefs on a key at LSN ``n``, uncached, one per predicate (``predicate`` None:
    every predicate of the subject). ``current``: ``n`` is the newest LSN, so the live
    counters are the trust inputs (and are remembered for re-validation). ``grants``
    (``filters.restriction``) and ``valid_at`` leave out the claims outside them: each
    agent's latest claim among the rest counts."""
    where, params = _key_where(subject, predicate, context)
    params["n"] = n
    if grants is not None:
        where += " AND " + filters.named(grants, params, filters.sqlite_mark)
    if valid_at is not None:
        where += " AND " + filters.valid_at(valid_at, params, filters.sqlite_mark)
    sql = _LATEST.format(where=where, counts=_WITH_COUNTS if current else "",
                         join=_JOIN_COUNTS if current else "")
    watched, counts, beliefs = beliefs_from_latest(
        _tuples(conn, sql, params), current,
        lambda agents: standings(conn, agents, n, current=False))
    return _Cached(
        n=n,
        max_lsn=_key_lsn(conn, subject, predicate, n),
        watched=watched,
        counts=counts,
        beliefs=beliefs,
    )


def beliefs_from_latest(
    rows: Sequence[Sequence[Any]],
    current: bool,
    standings_as_of: Callable[[set[str]], dict[str, Standing]],
) -> tuple[tuple[str, ...], tuple[tuple[int, ...], ...], list[dict[str, Any]]]:
    """(watched agents, their counters, one belief per predicate in order) from the rows of
    ``_LATEST``: per predicate and agent, its latest claim active at the LSN (``lsn`` None:
    none is), then, when ``current``, the agent's live counters. Otherwise the supporters'
    standings as of the LSN come from ``standings_as_of``. Pure: every backend's rows."""
    by_predicate: dict[str, list[Claim]] = {}
    counts: dict[str, tuple[int, ...]] = {}
    for r in rows:
        if current and r[9] is not None:
            counts[r[1]] = tuple(r[9:])
        if r[2] is None:  # no claim of this agent is active at n
            continue
        ev = orjson.loads(r[7])
        by_predicate.setdefault(r[0], []).append(
            Claim(r[3], r[1], object_key(r[4]), float(r[6]),
                  tuple(e for e in ev if isinstance(e, str)), r[5], int(r[8]), int(r[2]))
        )
    watched = tuple(sorted({r[1] for r in rows}))
    if current:
        st = {a: standing_of(c) for a, c in counts.items()}
        counts_t = tuple(counts.get(a, ()) for a in watched)
    else:
        st = standings_as_of({c.agent_id for claims in by_predicate.values() for c in claims})
        counts_t = ()
    beliefs = [{"predicate": p, **belief_dict(aggregate(by_predicate[p], st))}
               for p in sorted(by_predicate)]
    return watched, counts_t, beliefs


def _still_valid(
    conn: sqlite3.Connection, e: _Cached, subject: str, predicate: str | None, n: int
) -> bool:
    if _key_lsn(conn, subject, predicate, n) != e.max_lsn:
        return False
    counts = current_counts(conn, e.watched)
    return tuple(counts.get(a, ()) for a in e.watched) == e.counts


def _belief_key(
    subject: str, predicate: str | None, context: str | None, n: int, current: bool
) -> tuple[Any, ...]:
    return (subject, predicate, context) if current else (subject, predicate, context, n)


def _beliefs_at(
    store: IndexStore,
    conn: sqlite3.Connection,
    subject: str,
    predicate: str | None,
    context: str | None,
    as_of: int | None,
) -> tuple[int, _Cached]:
    n, current = pin(conn, as_of)
    caches = _caches_of(store)
    key = _belief_key(subject, predicate, context, n, current)
    with caches.lock:
        hit: _Cached | None = _lru_get(caches.beliefs, key)
    if hit is not None and (
        hit.n == n or (current and _still_valid(conn, hit, subject, predicate, n))
    ):
        if hit.n != n:
            hit = _Cached(n, hit.max_lsn, hit.watched, hit.counts, hit.beliefs)
            with caches.lock:
                _lru_put(caches.beliefs, key, hit, _BELIEF_CACHE_SIZE)
        return n, hit
    fresh = compute_beliefs(conn, subject, predicate, context, n, current)
    with caches.lock:
        _lru_put(caches.beliefs, key, fresh, _BELIEF_CACHE_SIZE)
    return n, fresh


def key_text(value: str) -> str:
    """A subject or predicate as stored: trimmed, NFC."""
    return nfc(value.strip())


def page_args(cursor: str | None, as_of: int | None, limit: int) -> tuple[int | None, int, int]:
    """(as_of, offset, limit) of a page of computed answers: a cursor pins the LSN of the
    first page and says where the next one starts."""
    offset = 0
    if cursor:
        c = decode_cursor(cursor)
        as_of, offset = c.get("a", as_of), c.get("o", 0)
    return as_of, offset, max(1, min(limit, MAX_LIMIT))


def belief_answer(
    subject: str, predicate: str, context: str | None, n: int, beliefs: list[dict[str, Any]]
) -> dict[str, Any]:
    b = beliefs[0] if beliefs else {"candidates": [], "contested": False, "contention": 0.0}
    return {
        "subject": subject,
        "predicate": predicate,
        "context": context,
        "as_of_lsn": n,
        "candidates": b["candidates"],
        "contested": b["contested"],
        "contention": b["contention"],
    }


def belief(
    store: IndexStore,
    subject: str,
    predicate: str,
    context: str | None = None,
    as_of: int | None = None,
) -> dict[str, Any]:
    """``{"subject", "predicate", "context", "as_of_lsn", "candidates", "contested",
    "contention"}`` for one subject/predicate (``context`` None: every context)."""
    s, p = key_text(subject), key_text(predicate)
    ctx = nfc(context) if context is not None else None
    with snapshot(store) as conn:
        n, entry = _beliefs_at(store, conn, s, p, ctx, as_of)
    return belief_answer(s, p, ctx, n, entry.beliefs)


def _filtered(
    store: IndexStore,
    subject: str,
    predicate: str | None,
    context: str | None,
    as_of: int | None,
    grants: tuple[str, ...] | None,
    valid_at: int | None,
) -> tuple[int, list[dict[str, Any]]]:
    """Beliefs over the visible (and valid at ``valid_at``) claims only: computed each
    time, never cached (the cache holds answers over every claim)."""
    with snapshot(store) as conn:
        n, current = pin(conn, as_of)
        return n, compute_beliefs(conn, subject, predicate, context, n, current, grants,
                                  valid_at).beliefs


def belief_json(
    store: IndexStore,
    subject: str,
    predicate: str,
    context: str | None = None,
    as_of: int | None = None,
    namespaces: Namespaces = None,
    valid_at: int | None = None,
) -> bytes:
    """``belief`` serialised, and kept with its cache entry for ``cached_belief_json``."""
    s, p = key_text(subject), key_text(predicate)
    ctx = nfc(context) if context is not None else None
    if namespaces is not None or valid_at is not None:
        grants = filters.restriction(namespaces)
        if grants is not None or valid_at is not None:
            n, beliefs = _filtered(store, s, p, ctx, as_of, grants, valid_at)
            return orjson.dumps(belief_answer(s, p, ctx, n, beliefs))
    caches = _caches_of(store)
    # The key without the LSN: a write moves the newest LSN, and the readers of one key
    # should still wait for one computation, not race to do it each.
    with caches.computing_lock((s, p, ctx)), snapshot(store) as conn:
        n, entry = _beliefs_at(store, conn, s, p, ctx, as_of)
    body = entry.body
    if body is None or entry.n != n:
        body = orjson.dumps(belief_answer(s, p, ctx, n, entry.beliefs))
        if entry.n == n:
            entry.body = body
    return body


def cached_belief_json(
    store: IndexStore,
    subject: str,
    predicate: str,
    context: str | None = None,
    as_of: int | None = None,
) -> bytes | None:
    """The serialised ``belief`` answer when it is cached for the very LSN it would be
    given at (nothing was applied since it was computed or re-validated), else None.
    Cheap enough for the event loop: one read of the applied LSN and a look-up."""
    s, p = key_text(subject), key_text(predicate)
    ctx = nfc(context) if context is not None else None
    applied = _applied(store.reader)
    n = applied if as_of is None else max(0, min(as_of, applied))
    key = _belief_key(s, p, ctx, n, n == applied)
    caches = _caches_of(store)
    with caches.lock:
        hit: _Cached | None = _lru_get(caches.beliefs, key)
    if hit is None or hit.n != n:
        return None
    return hit.body


def subject_beliefs(
    store: IndexStore,
    subject: str,
    context: str | None = None,
    as_of: int | None = None,
    limit: int = 100,
    cursor: str | None = None,
    namespaces: Namespaces = None,
    valid_at: int | None = None,
) -> dict[str, Any]:
    """Every predicate of a subject: ``{"subject", "context", "as_of_lsn", "beliefs":
    [{"predicate", "candidates", "contested", "contention"}], "next_cursor"}``, predicates
    in order; the cursor pins the LSN of the first page."""
    s = key_text(subject)
    ctx = nfc(context) if context is not None else None
    as_of, offset, limit = page_args(cursor, as_of, limit)
    grants = filters.restriction(namespaces)
    if grants is not None or valid_at is not None:
        n, beliefs = _filtered(store, s, None, ctx, as_of, grants, valid_at)
        return beliefs_page(s, ctx, n, beliefs, offset, limit)
    with snapshot(store) as conn:
        n, entry = _beliefs_at(store, conn, s, None, ctx, as_of)
    return beliefs_page(s, ctx, n, entry.beliefs, offset, limit)


def beliefs_page(subject: str, context: str | None, n: int, beliefs: list[dict[str, Any]],
                 offset: int, limit: int) -> dict[str, Any]:
    """One page of a subject's beliefs (``subject_beliefs``'s answer)."""
    more = offset + limit < len(beliefs)
    return {
        "subject": subject,
        "context": context,
        "as_of_lsn": n,
        "beliefs": beliefs[offset : offset + limit],
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
WHERE a.active_lsn IS NOT NULL AND a.active_lsn <= :n AND a.agent_id NOT IN ({REVOKED_AT_N})
ORDER BY a.subject, a.predicate, a.context
"""


def compute_disputes(
    conn: sqlite3.Connection, n: int, current: bool, subject: str | None, predicate: str | None,
    grants: tuple[str, ...] | None = None,
) -> list[dict[str, Any]]:
    """Every contested key at LSN ``n``, most contested first, uncached. ``grants``: only
    keys whose context they cover (a key's rows share its context)."""
    params: dict[str, Any] = {"n": n}
    flt = ""
    if grants is not None:
        flt += " AND " + filters.named(grants, params, filters.sqlite_mark)
    if subject is not None:
        flt += " AND subject = :s"
        params["s"] = subject
    if predicate is not None:
        flt += " AND predicate = :p"
        params["p"] = predicate
    groups: dict[tuple[str, str, str], list[sqlite3.Row]] = {}
    for r in conn.execute(_DISPUTE_ROWS.format(filter=flt), params):
        groups.setdefault((r["subject"], r["predicate"], r["context"]), []).append(r)
    return disputes_from_groups(groups, n, lambda agents: standings(conn, agents, n, current),
                                lambda lsn: lsn_time_us(conn, lsn))


def disputes_from_groups(
    groups: dict[tuple[str, str, str], list[Any]],
    n: int,
    standings_of: Callable[[set[str]], dict[str, Standing]],
    time_of: Callable[[int], int | None],
) -> list[dict[str, Any]]:
    """Every contested key among ``groups`` (the rows of ``_DISPUTE_ROWS`` per key, read by
    column name), most contested first. ``standings_of``: the agents' standings at ``n``;
    ``time_of``: the time of an LSN. Pure: every backend's rows."""
    claims = {k: [_claim(r) for r in _latest_active(rows, n)] for k, rows in groups.items()}
    st = standings_of({c.agent_id for cs in claims.values() for c in cs})
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
        at = time_of(since)
        runner_up = b.top_two[1].strength
        item = {
            "subject": k[0],
            "predicate": k[1],
            "context": k[2] or None,
            "contention": rounded(b.contention),
            "candidates": [candidate_dict(c, with_support=False) for c in b.candidates],
            "open_since_lsn": since,
            "open_since": us_to_time(at) if at is not None else None,
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
    namespaces: Namespaces = None,
) -> dict[str, Any]:
    """Contested keys, most contested first: ``{"items", "next_cursor", "as_of_lsn"}``.

    ``reference_us`` is the moment ``open_for_seconds`` is measured to (the ``as_of``
    time; None: the time of the LSN answered at). Restricted to ``namespaces``, the keys
    are computed each time (the cache holds answers over everything)."""
    as_of, offset, limit = page_args(cursor, as_of, limit)
    s = key_text(subject) if subject is not None else None
    p = key_text(predicate) if predicate is not None else None
    caches = _caches_of(store)
    grants = filters.restriction(namespaces)
    with snapshot(store) as conn:
        n, current = pin(conn, as_of)
        key = (n, s, p)
        items: list[dict[str, Any]] | None = None
        if grants is not None:
            items = compute_disputes(conn, n, current, s, p, grants)
        else:
            with caches.lock:
                items = _lru_get(caches.disputes, key)
        if items is None:
            items = compute_disputes(conn, n, current, s, p)
            with caches.lock:
                _lru_put(caches.disputes, key, items, _DISPUTE_CACHE_SIZE)
        ref = reference_us if reference_us is not None else lsn_time_us(conn, n)
    return dispute_page(items, n, offset, limit, ref)


def dispute_page(items: list[dict[str, Any]], n: int, offset: int, limit: int,
                 reference_us: int | None) -> dict[str, Any]:
    """One page of disputes (``disputes``'s answer); ``open_for_seconds`` is measured to
    ``reference_us``."""
    page = []
    for item in items[offset : offset + limit]:
        shown = {k: v for k, v in item.items() if not k.startswith("_")}
        since_us = item["_open_since_us"]
        shown["open_for_seconds"] = (
            round(max(0, reference_us - since_us) / 1e6, 3)
            if reference_us is not None and since_us is not None
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
