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

# What assertions' checks need (as ``index.lookups.assertion_facts``: each one's nonce's
# write and whether its duplicate key exists), up to FACTS_PER_STATEMENT of them in one
# statement. The assertions travel as a VALUES list, one statement text per list length:
# PostgreSQL then plans each text once (its generic plan costs what a custom one does).
# Keys passed as arrays (``unnest``) are estimated at 10 rows in a generic plan, so
# PostgreSQL re-plans such a statement on every execution: ~100 µs of its CPU more per
# lookup.
FACTS_PER_STATEMENT = 32
_FACT_COLUMNS = ("agent_id", "nonce", "subject", "predicate", "object_json", "context")


def _facts_many_sql(n: int) -> str:
    values = ", ".join(f"({i}, " + ", ".join(f"%({c}{i})s::text" for c in _FACT_COLUMNS) + ")"
                       for i in range(n))
    return ("SELECT k.i, w.id, w.outcome, EXISTS (SELECT 1 FROM assertions WHERE "
            + _DUPLICATE.format(a="k.agent_id", o="k.object_json", s="k.subject",
                                p="k.predicate", c="k.context", since="%(since)s") + ")"
            f" FROM (VALUES {values}) AS k (i, {', '.join(_FACT_COLUMNS)})"
            " LEFT JOIN writes w ON w.agent_id = k.agent_id AND w.nonce = k.nonce")


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


def assertion_facts_many(conn: Conn, items: Sequence[tuple[str, DuplicateKey]], since_us: int
                         ) -> list[tuple[dict[NonceKey, tuple[str, str]], set[DuplicateKey]]]:
    out: list[tuple[dict[NonceKey, tuple[str, str]], set[DuplicateKey]]] = []
    for start in range(0, len(items), FACTS_PER_STATEMENT):
        chunk = items[start:start + FACTS_PER_STATEMENT]
        params: dict[str, object] = {"since": since_us}
        for i, (nonce, key) in enumerate(chunk):
            for column, value in zip(_FACT_COLUMNS, (key[0], nonce, *key[1:]), strict=True):
                params[f"{column}{i}"] = value
        rows = {r[0]: r for r in conn.execute(_facts_many_sql(len(chunk)), params)}
        for i, (nonce, key) in enumerate(chunk):
            r = rows[i]
            out.append(({} if r[1] is None else {(key[0], nonce): (r[1], r[2])},
                        {key} if r[3] else set()))
    return out


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
