"""Two ``PostgresStore``s on one database, as two nodes: one gap-free chain from their
concurrent submits, and a nonce raced from both nodes journaled twice but owned once,
the loser told so (``context.taken``)."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Iterator
from types import SimpleNamespace

import orjson
import psycopg
import pytest

from stemedb import records
from stemedb.errors import JournalError
from stemedb.journal import Record
from stemedb.model import write_id
from stemedb.postgres import PostgresStore
from stemedb.signing import AgentKey
from tests.helpers import assertion_body
from tests.store.test_contract import assert_chained, signed


@pytest.fixture
def nodes(postgres_url: str) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    """Two nodes; the database's defaults are the ones a committer must not inherit."""
    database = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database}" SET default_transaction_isolation'
                     " = 'repeatable read'")
        conn.execute(f'ALTER DATABASE "{database}" SET synchronous_commit = off')
    a = PostgresStore(postgres_url)
    b = PostgresStore(postgres_url)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def test_concurrent_submits_from_two_nodes_make_one_gap_free_chain(
        nodes: tuple[PostgresStore, PostgresStore]) -> None:
    key = AgentKey.generate()
    calls: list[list[Record]] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        store = nodes[w % 2]
        for i in range(12):
            payloads = [signed(key, 10_000 + w * 100 + i, subject=f"w{w} i{i} p{p}")[0]
                        for p in range(3)]
            got = store.submit(payloads).result(timeout=30)
            with lock:
                calls.append(got)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(writer, range(8)))
    assert sorted(r.lsn for call in calls for r in call) == list(range(1, 8 * 12 * 3 + 1))
    for call in calls:  # one call's records are consecutive, in the order given
        assert [r.lsn for r in call] == list(range(call[0].lsn, call[0].lsn + 3))
    a, b = nodes
    journal = list(a.records())
    assert_chained(journal)
    assert [r.payload for r in journal] == [r.payload for call in sorted(calls) for r in call]
    assert a.last_lsn == b.last_lsn == a.reads.applied_lsn == b.reads.applied_lsn == len(journal)
    assert a.digest() == b.digest()


def _race(nodes: tuple[PostgresStore, PostgresStore], bodies: tuple[bytes, bytes],
          key: AgentKey) -> list[SimpleNamespace]:
    """Submits one body on each node at the same moment; the contexts they were given."""
    contexts = [SimpleNamespace(), SimpleNamespace()]
    start = threading.Barrier(2)

    def go(i: int) -> None:
        payload = records.SignedWrite(records.ASSERT, bodies[i], key.sign_b64(bodies[i]),
                                      records.now_us()).encode()
        start.wait()
        nodes[i].submit([payload], [contexts[i]]).result(timeout=30)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(go, (0, 1)))
    return contexts


def test_a_nonce_raced_from_two_nodes_is_owned_once_and_the_loser_is_told(
        nodes: tuple[PostgresStore, PostgresStore]) -> None:
    key = AgentKey.generate()
    a = nodes[0]
    for round_ in range(10):
        nonce = f"raced-nonce-{round_:04d}"
        bodies = (assertion_body(key, subject=f"left {round_}", nonce=nonce),
                  assertion_body(key, subject=f"right {round_}", nonce=nonce))
        contexts = _race(nodes, bodies, key)
        taken = [hasattr(c, "taken") for c in contexts]
        assert sorted(taken) == [False, True], taken
        winner, loser = (0, 1) if taken[1] else (1, 0)
        owner = a.reads.writes_by_nonce([(key.agent_id, nonce)])[(key.agent_id, nonce)]
        assert owner[0] == write_id(bodies[winner])
        assert contexts[loser].taken == owner  # (owner's write id, its original outcome)
        assert orjson.loads(owner[1])["status"] == "accepted"
        assert a.reads.assertion(write_id(bodies[winner])) is not None
        assert a.reads.assertion(write_id(bodies[loser])) is None
    journal = list(a.records())
    assert len(journal) == 20  # both journaled: the loser changes nothing
    assert_chained(journal)


def test_the_same_body_raced_from_two_nodes_is_a_retry(
        nodes: tuple[PostgresStore, PostgresStore]) -> None:
    key = AgentKey.generate()
    body = assertion_body(key, subject="twice")
    contexts = _race(nodes, (body, body), key)
    taken = [getattr(c, "taken", None) for c in contexts]
    assert taken.count(None) == 1
    (owner,) = [t for t in taken if t is not None]
    assert owner[0] == write_id(body)  # the same write id: the engine answers 200, not 409


def test_a_write_the_database_cannot_store_fails_alone(postgres_url: str) -> None:
    """PostgreSQL text cannot hold U+0000; the write that carries one is refused, the
    writes queued with it are committed, and the chain has no gap."""
    key = AgentKey.generate()
    store = PostgresStore(postgres_url)
    try:
        good = [signed(key, 1_000 + i, subject=f"fine {i}")[0] for i in range(6)]
        bad = signed(key, 2_000, subject="nul \u0000 inside")[0]
        futures = [store.submit([p]) for p in good[:3]]
        failing = store.submit([bad])
        futures += [store.submit([p]) for p in good[3:]]
        with pytest.raises(JournalError):
            failing.result(timeout=30)
        done = [f.result(timeout=30)[0] for f in futures]
        assert sorted(r.lsn for r in done) == list(range(1, 7))
        assert_chained(list(store.records()))
        assert store.readiness() == (True, "ready")
    finally:
        store.close()
