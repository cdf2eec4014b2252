"""PostgreSQL stopped or restarted under load (fast: sessions aborted, a checkpoint;
immediate: no checkpoint, crash recovery at start): nothing acknowledged is lost, nothing
is acknowledged while the database is away, readiness says why, and the store recovers
by itself when the database is back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import psycopg
import pytest

from stemedb.errors import Unavailable
from stemedb.journal import Record
from stemedb.postgres import PostgresStore
from stemedb.signing import AgentKey
from tests.services import PostgresServer
from tests.store.test_contract import assert_chained, signed

WRITERS = 4


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_restarted_database_loses_nothing_acknowledged_and_the_store_recovers(
        postgres_server: PostgresServer, postgres_url: str, mode: str) -> None:
    key = AgentKey.generate()
    store = PostgresStore(postgres_url)
    acked: list[Record] = []
    refused: list[BaseException] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(w: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            payload = signed(key, 1_000_000 * w + i, subject=f"w{w} {i}")[0]
            try:
                (rec,) = store.submit([payload]).result(timeout=60)
            except Unavailable as e:
                with lock:
                    refused.append(e)
                time.sleep(0.01)
                continue
            assert rec.payload == payload
            with lock:
                acked.append(rec)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    try:
        for t in threads:
            t.start()
        wait_for(lambda: len(acked) >= 50, "writes before the outage")
        postgres_server.stop(mode)
        try:
            wait_for(lambda: not store.readiness()[0], "readiness to turn false")
            ready, why = store.readiness()
            assert why.startswith("database unreachable:"), why
            assert store.read_only_reason is None
            with pytest.raises(Unavailable):
                store.reads.applied_lsn  # noqa: B018 - reads are refused too
            during = len(acked)
            time.sleep(0.3)
            assert len(acked) == during  # nothing is acknowledged while it is away
        finally:
            postgres_server.start()
        wait_for(lambda: store.readiness()[0], "readiness after the restart")
        after = len(acked)
        wait_for(lambda: len(acked) >= after + 50, "writes after the outage")
    finally:
        stop.set()
        for t in threads:
            t.join()
    try:
        assert refused  # the writers did see the outage
        journal = {r.lsn: r for r in store.records()}
        assert_chained(list(journal.values()))
        for rec in acked:  # every acknowledged record is there, as it was acknowledged
            assert journal[rec.lsn].payload == rec.payload
            assert journal[rec.lsn].hash == rec.hash
        assert store.reads.applied_lsn == max(journal)
    finally:
        store.close()


def test_a_store_opened_while_the_database_is_away_says_so(
        postgres_server: PostgresServer) -> None:
    url = postgres_server.url
    postgres_server.stop("fast")
    try:
        with pytest.raises(Unavailable, match="database unreachable"):
            PostgresStore(url)
    finally:
        postgres_server.start()


def test_connections_that_died_while_idle_are_replaced_without_an_error(
        postgres_server: PostgresServer, postgres_url: str) -> None:
    """An idle timeout or a terminated backend is not an outage: the next write and the
    next read each get a new connection, and nobody sees an error."""
    key = AgentKey.generate()
    store = PostgresStore(postgres_url)
    try:
        store.submit([signed(key, 1_000)[0]]).result(timeout=30)
        assert store.reads.applied_lsn == 1
        database = postgres_url.rsplit("/", 1)[1]
        ours = (f"FROM pg_stat_activity WHERE datname = '{database}'"
                " AND application_name IN ('stemedb-commit', 'stemedb-reads')")
        postgres_server.execute(f"SELECT pg_terminate_backend(pid) {ours}", database="postgres")
        with psycopg.connect(postgres_server.url_for("postgres"), autocommit=True) as conn:
            wait_for(lambda: conn.execute(f"SELECT count(*) {ours}").fetchone() == (0,),
                     "the backends to exit")
        (rec,) = store.submit([signed(key, 2_000)[0]]).result(timeout=30)
        assert rec.lsn == 2
        assert store.reads.applied_lsn == 2
        assert store.readiness() == (True, "ready")
    finally:
        store.close()
