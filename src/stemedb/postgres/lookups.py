"""Point lookups of the write path (``index/lookups.py`` on PostgreSQL), each answering
for many writes in one statement: keys travel as arrays (``unnest``), not as one
placeholder per value."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..store import DuplicateKey, NonceKey
from .connection import Conn

_NONCES = ("SELECT w.agent_id, w.nonce, w.id, w.outcome FROM writes w"
           " JOIN unnest(%b::text[], %b::text[]) AS k (agent_id, nonce)"
           " ON w.agent_id = k.agent_id AND w.nonce = k.nonce")

# A duplicate: same agent, subject, predicate, object and context, recorded at or after
# ``since``, not rejected. ``assertions_dup`` indexes (agent, md5(object), time).
_DUPLICATE = ("agent_id = {a} AND md5(object_json) = md5({o}) AND object_json = {o}"
              " AND subject = {s} AND predicate = {p} AND context = {c}"
              " AND recorded_at >= {since} AND status != 'rejected'")
_DUPLICATES = (
    "SELECT DISTINCT k.agent_id, k.subject, k.predicate, k.object_json, k.context"
    " FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[])"
    " AS k (agent_id, subject, predicate, object_json, context)"
    " WHERE EXISTS (SELECT 1 FROM assertions WHERE " + _DUPLICATE.format(
        a="k.agent_id", o="k.object_json", s="k.subject", p="k.predicate", c="k.context",
        since="%s") + ")")

# What one assertion's checks need, in ONE statement: its nonce's write and whether its
# duplicate key exists (as ``index.lookups.assertion_facts``).
_FACTS = (
    "SELECT w.id, w.outcome, EXISTS (SELECT 1 FROM assertions WHERE " + _DUPLICATE.format(
        a="%(agent)s", o="%(object)s", s="%(subject)s", p="%(predicate)s", c="%(context)s",
        since="%(since)s") + ")"
    " FROM (SELECT 1) AS one LEFT JOIN writes w ON w.agent_id = %(agent)s"
    " AND w.nonce = %(nonce)s")

COUNTERS = ("accepted", "quarantined", "approved", "rejected", "retracted")


def writes_by_nonce(conn: Conn, keys: Sequence[NonceKey]) -> dict[NonceKey, tuple[str, str]]:
    """For each (agent_id, nonce) already used: (write id, its original outcome JSON)."""
    if not keys:
        return {}
    unique = list(dict.fromkeys(keys))
    rows = conn.execute(_NONCES, ([k[0] for k in unique], [k[1] for k in unique]))
    return {(r[0], r[1]): (r[2], r[3]) for r in rows}


def duplicates(conn: Conn, keys: Sequence[DuplicateKey], since_us: int) -> set[DuplicateKey]:
    """The keys for which an assertion (not rejected) recorded at or after ``since_us``
    exists."""
    if not keys:
        return set()
    unique = list(dict.fromkeys(keys))
    columns = [[k[i] for k in unique] for i in range(5)]
    return {(r[0], r[1], r[2], r[3], r[4])
            for r in conn.execute(_DUPLICATES, (*columns, since_us))}


def assertion_facts(conn: Conn, nonce: str, key: DuplicateKey, since_us: int
                    ) -> tuple[dict[NonceKey, tuple[str, str]], set[DuplicateKey]]:
    agent = key[0]
    r = conn.execute(_FACTS, {"agent": agent, "nonce": nonce, "subject": key[1],
                              "predicate": key[2], "object": key[3], "context": key[4],
                              "since": since_us}).fetchone()
    assert r is not None
    seen = {} if r[0] is None else {(agent, nonce): (r[0], r[1])}
    return seen, ({key} if r[2] else set())


def trust_counters(conn: Conn, agent_ids: Iterable[str]) -> dict[str, tuple[int, ...]]:
    """Each known agent's counters, in the order of ``COUNTERS``."""
    ids = list(dict.fromkeys(agent_ids))
    if not ids:
        return {}
    rows = conn.execute(f"SELECT agent_id, {', '.join(COUNTERS)} FROM agents"
                        " WHERE agent_id = ANY(%b::text[])", (ids,))
    return {r[0]: tuple(int(v) for v in r[1:]) for r in rows}


def allowlist_expiry(conn: Conn) -> dict[str, int]:
    """Every allowlist entry: agent id → expiry in unix microseconds."""
    return {r[0]: int(r[1]) for r in conn.execute("SELECT agent_id, expires_us FROM allowlist")}
