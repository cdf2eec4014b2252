"""Agent key revocation as every backend applies it (``agent.enroll`` / ``agent.revoke``
admin records): a revoked key's assertions leave beliefs and disputes answered at the
revocation's LSN or later, answers as of an earlier LSN are unchanged, history stays
readable, and the enrollments are a function of the journal."""

from __future__ import annotations

from typing import Any

import orjson

from stemedb import records
from stemedb.signing import AgentKey
from stemedb.store import Store

from .conftest import Backend
from .test_contract import signed, submit

SUBJECT, PREDICATE = "paris", "capital_of"


def _belief(store: Store, as_of: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = orjson.loads(store.reads.belief_json(SUBJECT, PREDICATE, None, as_of))
    return out


def _top(belief: dict[str, Any]) -> Any:
    return belief["candidates"][0]["object"]


def _supporters(belief: dict[str, Any]) -> set[str]:
    return {s["agent_id"] for c in belief["candidates"] for s in c["support"]}


def _disputed(store: Store, as_of: int | None = None) -> list[tuple[str, str]]:
    page = store.reads.disputes(as_of, 100, None, reference_us=None, subject=None,
                                predicate=None)
    return [(d["subject"], d["predicate"]) for d in page["items"]]


def _trusted_history(keys: list[AgentKey], at: int) -> list[bytes]:
    """Enough accepted writes on other subjects for every key to be trusted."""
    return [signed(k, at + i, subject=f"filler {k.agent_id[:8]} {i}", object=f"o{i}")[0]
            for k in keys for i in range(8)]


def _claim(key: AgentKey, at: int, obj: str) -> tuple[bytes, str]:
    return signed(key, at, subject=SUBJECT, predicate=PREDICATE, object=obj, confidence=0.9,
                  evidence=[f"https://example.org/{key.agent_id[:12]}/{obj}"])


def _revoke(agent_id: str, at: int, reason: str = "key leaked") -> bytes:
    return records.admin_record("agent.revoke", "admin:test", at=at, agent_id=agent_id,
                                reason=reason)


def _enroll(agent_id: str, at: int, namespaces: list[str], note: str = "") -> bytes:
    return records.admin_record("agent.enroll", "admin:test", at=at, agent_id=agent_id,
                                namespaces=namespaces, note=note)


def test_a_revoked_sybil_ring_leaves_beliefs_and_disputes_from_its_lsn_on(
        backend: Backend) -> None:
    honest = [AgentKey.generate() for _ in range(2)]
    sybils = [AgentKey.generate() for _ in range(3)]
    store = backend.open()
    try:
        submit(store, _trusted_history(honest + sybils, 1_000))
        submit(store, [_claim(k, 5_000, "france")[0] for k in honest])
        bad = [_claim(k, 6_000, "germany") for k in sybils]
        submit(store, [p for p, _ in bad])
        before = _belief(store)  # computed, and cached where the backend caches
        assert _top(before) == "germany" and before["contested"] is True
        assert (SUBJECT, PREDICATE) in _disputed(store)
        assert _belief(store) == before

        recs = submit(store, [_revoke(k.agent_id, 7_000 + i) for i, k in enumerate(sybils)])
        first = recs[0].lsn

        after = _belief(store)
        assert _top(after) == "france" and after["contested"] is False
        assert _supporters(after) == {k.agent_id for k in honest}
        assert [c["object"] for c in after["candidates"]] == ["france"]
        assert (SUBJECT, PREDICATE) not in _disputed(store)
        # as of a point before the revocation: exactly as it was answered then
        then = _belief(store, first - 1)
        assert then["candidates"] == before["candidates"] and then["contested"] is True
        assert (SUBJECT, PREDICATE) in _disputed(store, first - 1)
        # from the first revocation on, that key is out; the others still count
        partly = _belief(store, first)
        assert sybils[0].agent_id not in _supporters(partly)
        assert sybils[1].agent_id in _supporters(partly)

        # history stays readable, status unchanged
        for _, wid in bad:
            got = store.reads.assertion(wid)
            assert got is not None and got["status"] == "active"

        # a write of a revoked key that lands later (another node had not heard yet)
        late_payload, late = _claim(sybils[0], 8_000, "germany")
        submit(store, [late_payload])
        assert store.reads.assertion(late) is not None
        assert _top(_belief(store)) == "france"
        assert sybils[0].agent_id not in _supporters(_belief(store))
    finally:
        store.close()


def test_enrollments_are_applied_as_journaled_and_revocation_is_final(
        backend: Backend) -> None:
    a, b, c = (AgentKey.generate() for _ in range(3))
    payloads = [
        _enroll(a.agent_id, 1_000, ["acme"], "ingest bot"),
        _enroll(b.agent_id, 1_001, ["*"]),
        _enroll(a.agent_id, 1_002, ["acme", "shared/geo"], "ingest bot v2"),  # replaces
        _revoke(b.agent_id, 1_003, "leaked"),
        _enroll(b.agent_id, 1_004, ["*"]),  # a revoked key stays revoked
        _revoke(b.agent_id, 1_005, "again"),  # the first revocation stands
        _revoke(c.agent_id, 1_006, "never enrolled"),
    ]
    store = backend.open()
    try:
        recs = submit(store, payloads)
        got = {e["agent_id"]: e for e in store.reads.enrollments()}
        assert set(got) == {a.agent_id, b.agent_id, c.agent_id}
        ea, eb, ec = got[a.agent_id], got[b.agent_id], got[c.agent_id]
        assert (ea["namespaces"], ea["note"], ea["enrolled_lsn"], ea["revoked_lsn"]) == (
            ["acme", "shared/geo"], "ingest bot v2", recs[2].lsn, None)
        assert ea["enrolled_by"] == "admin:test" and ea["enrolled_at"] == 1_002
        assert (eb["namespaces"], eb["enrolled_lsn"], eb["revoked_lsn"], eb["reason"],
                eb["revoked_at"]) == (["*"], recs[1].lsn, recs[3].lsn, "leaked", 1_003)
        assert (ec["namespaces"], ec["note"], ec["enrolled_lsn"], ec["revoked_lsn"]) == (
            [], "", None, recs[6].lsn)
        audit = store.reads.audit_log(b.agent_id, 10)
        assert [x["action"] for x in audit] == ["agent.revoke", "agent.enroll", "agent.revoke",
                                                "agent.enroll"]
        digest = store.digest()
    finally:
        store.close()
    store = backend.open()  # reopened: the same state
    try:
        assert store.digest() == digest
        assert {e["agent_id"] for e in store.reads.enrollments()} == {
            a.agent_id, b.agent_id, c.agent_id}
    finally:
        store.close()
    again = backend.fresh().open()  # replayed one record at a time: the same state
    try:
        for p in payloads:
            submit(again, [p])
        assert again.digest() == digest
    finally:
        again.close()
