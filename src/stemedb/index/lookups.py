"""Point lookups of the write path, each answering for many writes in one query.

A batch of 1,000 writes asks SQLite a handful of questions instead of several per
write: which (agent, nonce) pairs are taken, which duplicate keys exist, what each agent's
trust counters are. A single write asks the same questions with one key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..store import DuplicateKey, NonceKey
from .apply import dup_key, nonce_key, write_outcome, writes_by_key
from .store import IndexStore

# Keys per statement: well under SQLite's limit of bound parameters (32,766).
CHUNK = 500



def _values(width: int, n: int) -> str:
    row = "(" + ",".join("?" * width) + ")"
    return ",".join([row] * n)


def _chunks(keys: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(keys), CHUNK):
        yield keys[i:i + CHUNK]


def writes_by_nonce(store: IndexStore, keys: Sequence[NonceKey]) -> dict[NonceKey, tuple[str, str]]:
    """For each (agent_id, nonce) already used: (write id, its original outcome JSON)."""
    if len(keys) == 1:
        row = store.reader.execute("SELECT id, kind, lsn, detail FROM writes"
                                   " WHERE nonce_key=? AND agent_id=? AND nonce=?",
                                   (nonce_key(*keys[0]), *keys[0])).fetchone()
        return {} if row is None else {keys[0]: (row[0], write_outcome(*row))}
    wanted = set(keys)
    found: dict[NonceKey, tuple[str, str]] = {}
    for r in writes_by_key(store.reader, list({nonce_key(*key) for key in wanted})):
        if (r[0], r[1]) in wanted:
            found[(r[0], r[1])] = (r[2], write_outcome(*r[2:]))
    return found


def duplicates(store: IndexStore, keys: Sequence[DuplicateKey], since_us: int
               ) -> set[DuplicateKey]:
    """The keys for which an assertion recorded at or after ``since_us`` exists (rejected
    ones do not count)."""
    found: set[DuplicateKey] = set()
    if len(keys) == 1:
        row = store.reader.execute(
            "SELECT 1 FROM assertions WHERE dup_key=? AND agent_id=? AND subject=?"
            " AND predicate=? AND object_json=? AND context=? AND recorded_at >= ?"
            " AND status != 'rejected' LIMIT 1",
            (dup_key(keys[0]), *keys[0], since_us)).fetchone()
        return found if row is None else {keys[0]}
    for part in _chunks(list(dict.fromkeys(keys))):
        sql = ("WITH k(dup_key, agent_id, subject, predicate, object_json, context) AS (VALUES "
               + _values(6, len(part)) + ") "
               "SELECT DISTINCT a.agent_id, a.subject, a.predicate, a.object_json, a.context "
               "FROM k JOIN assertions a ON a.dup_key = k.dup_key AND a.agent_id = k.agent_id"
               " AND a.subject = k.subject AND a.predicate = k.predicate"
               " AND a.object_json = k.object_json AND a.context = k.context"
               " AND a.recorded_at >= ? AND a.status != 'rejected'")
        params = [v for key in part for v in (dup_key(key), *key)]
        for r in store.reader.execute(sql, [*params, since_us]):
            found.add((r[0], r[1], r[2], r[3], r[4]))
    return found


COUNTERS = ("accepted", "quarantined", "approved", "rejected", "retracted")


_COUNTERS_SQL = "SELECT agent_id, " + ", ".join(COUNTERS) + " FROM agents WHERE agent_id "


def trust_counters(store: IndexStore, agent_ids: Iterable[str]) -> dict[str, tuple[int, ...]]:
    """Each known agent's counters, in the order of ``COUNTERS``."""
    out: dict[str, tuple[int, ...]] = {}
    for part in _chunks(list(dict.fromkeys(agent_ids))):
        sql = _COUNTERS_SQL + ("= ?" if len(part) == 1 else f"IN ({','.join('?' * len(part))})")
        for r in store.reader.execute(sql, part):
            out[r[0]] = tuple(r[1:])
    return out


def allowlist_expiry(store: IndexStore) -> dict[str, int]:
    """Every allowlist entry: agent id → expiry in unix microseconds."""
    return {r[0]: int(r[1])
            for r in store.reader.execute("SELECT agent_id, expires_us FROM allowlist")}


# What a single assertion's checks need, read in ONE statement (one read transaction):
# its nonce's write and whether its duplicate key exists. Reading after the writer
# committed costs a reader most of its time, so one read beats two. The agent's trust
# counters are not read here: only a high-confidence or quarantined write needs them, and
# the gate reads them for those (``trust_counters``).
_FACTS_SQL = (
    "SELECT w.id, w.kind, w.lsn, w.detail, EXISTS (SELECT 1 FROM assertions"
    " WHERE dup_key = :dup AND agent_id = :agent"
    " AND subject = :subject AND predicate = :predicate AND object_json = :object"
    " AND context = :context AND recorded_at >= :since AND status != 'rejected')"
    " FROM (SELECT 1) AS one"
    " LEFT JOIN writes w ON w.nonce_key = :nonce_key AND w.agent_id = :agent"
    " AND w.nonce = :nonce")


def assertion_facts(store: IndexStore, nonce: str, key: DuplicateKey, since_us: int
                    ) -> tuple[dict[NonceKey, tuple[str, str]], set[DuplicateKey]]:
    """``writes_by_nonce`` and ``duplicates`` for one assertion."""
    agent = key[0]
    r = store.reader.execute(_FACTS_SQL, {
        "dup": dup_key(key), "agent": agent, "nonce": nonce, "nonce_key": nonce_key(agent, nonce),
        "subject": key[1],
        "predicate": key[2],
        "object": key[3], "context": key[4], "since": since_us}).fetchone()
    seen = {} if r[0] is None else {(agent, nonce): (r[0], write_outcome(*r[:4]))}
    return seen, ({key} if r[4] else set())
