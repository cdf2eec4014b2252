"""The contract of ``store.Store`` (see its module docstring), run against every backend
in ``conftest.BACKENDS``: LSNs and chain, acknowledged means durable and applied,
ordering under concurrency, reopening, derived state as a function of the journal, and
refusing appends after a durability failure (and, for a backend whose failures are
transient outages, recovering without a restart)."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Sequence

import orjson
import pytest

from stemedb import records
from stemedb.errors import Unavailable
from stemedb.journal import Record, chain_hash
from stemedb.model import write_id
from stemedb.signing import AgentKey
from stemedb.store import Store
from tests.helpers import assertion_body

from .conftest import Backend

ZERO = bytes(32)


def signed(key: AgentKey, at: int, **fields: object) -> tuple[bytes, str]:
    """A journal payload of a signed assertion, and its write id."""
    body = assertion_body(key, **fields)
    return records.SignedWrite(records.ASSERT, body, key.sign_b64(body), at).encode(), write_id(body)


def submit(store: Store, payloads: Sequence[bytes]) -> list[Record]:
    return store.submit(payloads).result(timeout=30)


def assert_chained(recs: Sequence[Record], first_prev: bytes = ZERO) -> None:
    prev = first_prev
    for i, r in enumerate(recs, start=recs[0].lsn):
        assert r.lsn == i
        assert r.hash == chain_hash(prev, r.lsn, r.payload)
        prev = r.hash


def test_lsns_are_consecutive_and_hash_chained_from_zero(backend: Backend) -> None:
    key = AgentKey.generate()
    store = backend.open()
    try:
        assert store.last_lsn == 0
        first = submit(store, [signed(key, 1_000 + i)[0] for i in range(3)])
        second = submit(store, [records.admin_record("thresholds.set", "test", at=2_000,
                                                     values={"quality_threshold": 0.5})])
        assert [r.lsn for r in first + second] == [1, 2, 3, 4]
        assert_chained(first + second)
        assert store.last_lsn == 4
        read = list(store.records())
        assert [(r.lsn, r.payload, r.hash) for r in read] == \
            [(r.lsn, r.payload, r.hash) for r in first + second]
        assert [r.lsn for r in store.records(2, 3)] == [2, 3]
        assert list(store.records(5)) == []
    finally:
        store.close()


def test_an_acknowledged_write_is_applied_before_the_answer(backend: Backend) -> None:
    key = AgentKey.generate()
    store = backend.open()
    try:
        for i in range(20):
            payload, wid = signed(key, 1_000 + i, subject=f"city {i}")
            (rec,) = submit(store, [payload])
            # a reader that starts after the acknowledgement sees the write
            assert store.reads.applied_lsn >= rec.lsn
            got = store.reads.assertion(wid)
            assert got is not None and got["lsn"] == rec.lsn and got["status"] == "active"
            nonce = orjson.loads(records.decode(payload)["body"])["nonce"]
            assert (key.agent_id, nonce) in store.reads.writes_by_nonce([(key.agent_id, nonce)])
        (admin,) = submit(store, [records.admin_record("thresholds.set", "test", at=5_000,
                                                       values={"quality_threshold": 0.4})])
        assert store.reads.get_state("thresholds") == {"quality_threshold": 0.4}
        assert store.reads.applied_lsn == admin.lsn
    finally:
        store.close()


def test_concurrent_submits_get_one_order_and_keep_each_call_together(
        backend: Backend) -> None:
    key = AgentKey.generate()
    store = backend.open()
    calls: list[list[Record]] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        for i in range(15):
            payloads = [signed(key, 10_000 + w * 100 + i, subject=f"w{w} i{i} part{p}")[0]
                        for p in range(2)]
            got = submit(store, payloads)
            with lock:
                calls.append(got)

    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(writer, range(8)))
        lsns = sorted(r.lsn for call in calls for r in call)
        assert lsns == list(range(1, 8 * 15 * 2 + 1))
        for call in calls:  # one call's records are consecutive, in the order given
            assert call[1].lsn == call[0].lsn + 1
        all_records = list(store.records())
        assert_chained(all_records)
        assert store.reads.applied_lsn == store.last_lsn == len(all_records)
    finally:
        store.close()


def test_reopening_keeps_the_journal_and_the_derived_state(backend: Backend) -> None:
    key = AgentKey.generate()
    store = backend.open()
    try:
        submit(store, [signed(key, 1_000 + i, subject=f"s{i}")[0] for i in range(10)])
        before = [(r.lsn, r.hash) for r in store.records()]
        digest = store.digest()
    finally:
        store.close()
    store = backend.open()
    try:
        assert store.last_lsn == 10
        assert [(r.lsn, r.hash) for r in store.records()] == before
        assert store.digest() == digest
        (nxt,) = submit(store, [signed(key, 2_000)[0]])
        assert nxt.lsn == 11 and nxt.hash == chain_hash(before[-1][1], 11, nxt.payload)
    finally:
        store.close()


def test_the_derived_state_is_a_function_of_the_journal(backend: Backend) -> None:
    """The same records applied in other batch splits give the same digest."""
    key, other = AgentKey.generate(), AgentKey.generate()
    payloads = [signed(key, 1_000 + i, subject=f"s{i % 4}", object=f"o{i % 3}")[0]
                for i in range(12)]
    payloads += [signed(other, 2_000 + i, subject=f"s{i % 4}")[0] for i in range(5)]
    payloads.append(records.admin_record("allowlist.add", "test", at=3_000,
                                         agent_id=other.agent_id,
                                         expires_at="2099-01-01T00:00:00Z",
                                         expires_us=4_070_908_800_000_000, reason="pilot"))
    store = backend.open()
    try:
        submit(store, payloads)
        one_batch = store.digest()
    finally:
        store.close()
    again = backend.fresh().open()
    try:
        for i in range(0, len(payloads), 5):
            submit(again, payloads[i:i + 5])
        assert again.digest() == one_batch
    finally:
        again.close()


def test_a_failed_durability_acknowledges_nothing_and_refuses_appends(
        backend: Backend) -> None:
    key = AgentKey.generate()
    store = backend.open()
    try:
        submit(store, [signed(key, 1_000)[0]])
    finally:
        store.close()
    store = backend.open(fail_durability=True)
    try:
        assert store.readiness() == (True, "ready")
        payload, wid = signed(key, 2_000, subject="lost")
        with pytest.raises(Unavailable):
            submit(store, [payload])
        ready, why = store.readiness()
        assert not ready and why
        if backend.heal is None:  # a journal that failed stays read-only until a restart
            assert store.read_only_reason
        with pytest.raises(Unavailable):
            submit(store, [signed(key, 3_000)[0]])
        if backend.heal is not None:  # a transient outage: reads come back with the database
            backend.heal()
            wait_ready(store)
        assert store.reads.assertion(wid) is None  # never applied, never served
        assert store.reads.applied_lsn == 1
    finally:
        store.close()


def test_a_transient_outage_ends_without_a_restart(backend: Backend) -> None:
    if backend.heal is None:
        pytest.skip(f"{backend.name}: a durability failure needs a restart")
    key = AgentKey.generate()
    store = backend.open()
    try:
        (first,) = submit(store, [signed(key, 1_000)[0]])
    finally:
        store.close()
    store = backend.open(fail_durability=True)
    try:
        with pytest.raises(Unavailable):
            submit(store, [signed(key, 2_000)[0]])
        assert store.read_only_reason is None  # nothing to distrust: nothing was acknowledged
        backend.heal()
        wait_ready(store)
        payload, wid = signed(key, 3_000, subject="after")
        (rec,) = submit(store, [payload])
        assert rec.lsn == 2 and rec.hash == chain_hash(first.hash, 2, payload)
        got = store.reads.assertion(wid)
        assert got is not None and got["lsn"] == 2
        assert_chained(list(store.records()))
    finally:
        store.close()


def wait_ready(store: Store, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while store.readiness()[0] is False:
        assert time.monotonic() < deadline, f"not ready after {timeout} s: {store.readiness()}"
        time.sleep(0.05)


def test_control_characters_inside_an_object_are_data_on_every_backend(
        backend: Backend) -> None:
    key = AgentKey.generate()
    store = backend.open()
    try:
        payload, wid = signed(key, 1_000, subject="nul inside", object="a\x00b\x01c")
        submit(store, [payload])
        got = store.reads.assertion(wid)
        assert got is not None and got["object"] == "a\x00b\x01c"
        assert [i["id"] for i in store.reads.search("nul inside", 10, 1, None)["items"]] == [wid]
    finally:
        store.close()


def _quarantined(key: AgentKey, at: int, reason: str, signals: list[dict[str, object]],
                 **fields: object) -> tuple[bytes, str]:
    body = assertion_body(key, **fields)
    verdict = {"reason": reason, "score": 0.1, "quality": 0.1, "signals": signals,
               "trust": 0.5, "trusted": False}
    payload = records.SignedWrite(records.ASSERT, body, key.sign_b64(body), at, verdict).encode()
    return payload, write_id(body)


def test_quarantine_severity_and_id_prefixes_on_every_backend(backend: Backend) -> None:
    """Each item's severity and top signal come from its journaled verdict; the list
    filters by severity; item and assertion ids are found by a prefix of them."""
    from stemedb.store import AssertionFilter

    key = AgentKey.generate()
    injection = {"name": "prompt_injection", "amount": 0.9, "detail": "memory_poisoning in object"}
    mash = {"name": "keyboard_mash", "amount": 0.6, "detail": "object"}
    hint = {"name": "missing_evidence", "amount": 0.15, "detail": ""}
    writes = [
        _quarantined(key, 1_000, "LowQuality", [mash, injection], subject="s1"),
        _quarantined(key, 1_001, "LowQuality", [mash], subject="s2"),
        _quarantined(key, 1_002, "UntrustedHighConfidence", [hint], subject="s3"),
        _quarantined(key, 1_003, "Duplicate", [], subject="s4"),
    ]
    store = backend.open()
    try:
        submit(store, [p for p, _ in writes])
        reads = store.reads
        listed = reads.list_quarantine(status="pending", agent_prefix=None, reason=None,
                                       limit=10, cursor=None)["items"]
        got = {i["assertion"]["subject"]: (i["severity"], i["top_signal"]) for i in listed}
        assert got == {"s1": ("critical", "prompt_injection"), "s2": ("medium", "keyboard_mash"),
                       "s3": ("low", "missing_evidence"), "s4": ("low", None)}
        crit = reads.list_quarantine(status="pending", agent_prefix=None, reason=None, limit=10,
                                     cursor=None, severity="critical")
        assert [i["assertion"]["subject"] for i in crit["items"]] == ["s1"]
        assert crit["total"] == 1
        assert reads.list_quarantine(status=None, agent_prefix=None, reason=None, limit=10,
                                     cursor=None, severity="high")["items"] == []
        qid = next(i["id"] for i in listed if i["assertion"]["subject"] == "s2")
        assert reads.quarantine_ids_with_prefix(qid[:8], 5) == [qid]
        assert reads.quarantine_ids_with_prefix(qid[:8] + "g", 5) == []
        aid = writes[2][1]
        page = reads.list_assertions(AssertionFilter(id_prefix=aid[:10], include_inactive=True),
                                     store.last_lsn, None)
        assert [i["id"] for i in page["items"]] == [aid]
        assert [i["status"] for i in page["items"]] == ["quarantined"]
        active_only = reads.list_assertions(AssertionFilter(id_prefix=aid[:10]),
                                            store.last_lsn, None)
        assert active_only["items"] == []
    finally:
        store.close()
