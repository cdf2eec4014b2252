"""The write path's index lookups: the one-statement read of a single assertion's facts
answers exactly what the separate many-key lookups answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from stemedb.defense.verdict import duplicate_key
from stemedb.engine import Database
from stemedb.index import lookups
from stemedb.model import parse_assertion
from stemedb.settings import load_settings
from stemedb.signing import AgentKey
from tests.helpers import assertion_body

JUNK = {"subject": "asdfasdf", "predicate": "qwerty", "object": "!!!!!!!!!!!!!!!!"}


def test_assertion_facts_agree_with_the_separate_lookups(tmp_path: Path) -> None:
    db = Database(load_settings(env={}, overrides={"server.data_dir": str(tmp_path / "d")}))
    try:
        a, b, stranger = AgentKey.generate(), AgentKey.generate(), AgentKey.generate()
        stored = [assertion_body(a, subject="oslo", predicate="capital_of", object="norway"),
                  assertion_body(a, **JUNK), assertion_body(b, subject="rome", predicate="in",
                                                            object="italy")]

        async def write() -> None:
            for body, key in zip(stored, (a, a, b), strict=True):
                r = await db.write("assert", body, key.sign_b64(body))
                assert r.status in (201, 202)

        asyncio.run(write())
        probes = [*stored,  # the same writes again: nonce taken, duplicate key present
                  assertion_body(a, subject="oslo", predicate="capital_of", object="norway"),
                  assertion_body(a, subject="bergen", predicate="in", object="norway"),
                  assertion_body(stranger, subject="oslo", predicate="capital_of",
                                 object="norway")]
        since = db.defense.duplicate_since()
        for body in probes:
            p = parse_assertion(body)
            key = duplicate_key(p)
            nonce_key = (p.agent_id, p.nonce)
            expected = (lookups.writes_by_nonce(db.index, [nonce_key, ("x" * 64, "n")]),
                        lookups.duplicates(db.index, [key, ("x",) * 5], since))  # type: ignore[list-item]
            assert lookups.assertion_facts(db.index, p.nonce, key, since) == expected
        # a later lookback start: the stored duplicates fall out of the window
        p = parse_assertion(stored[0])
        assert lookups.assertion_facts(db.index, p.nonce, duplicate_key(p), since + 10**12)[1] == set()
    finally:
        db.close()


def test_duplicates_of_one_hash_are_told_apart_by_their_texts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The index finds duplicate candidates by a 64-bit hash of the key; when two keys
    share a hash (forced here: every key hashes to 7), only the one whose agent, subject,
    predicate, object and context are all equal counts."""
    from stemedb.index import apply

    monkeypatch.setattr(apply, "dup_key", lambda key: 7)
    monkeypatch.setattr(lookups, "dup_key", lambda key: 7)
    db = Database(load_settings(env={}, overrides={"server.data_dir": str(tmp_path / "d")}))
    try:
        a, b = AgentKey.generate(), AgentKey.generate()
        body = assertion_body(a, subject="oslo", predicate="capital_of", object="norway")
        assert asyncio.run(db.write("assert", body, a.sign_b64(body))).status == 201
        since = db.defense.duplicate_since()
        stored = duplicate_key(parse_assertion(body))
        others = [(b.agent_id, *stored[1:]), (stored[0], "bergen", *stored[2:]),
                  (*stored[:2], "in", *stored[3:]), (*stored[:3], '"sweden"', stored[4]),
                  (*stored[:4], "ctx")]
        assert lookups.duplicates(db.index, [stored, *others], since) == {stored}
        for key in others:
            assert lookups.duplicates(db.index, [key], since) == set()
            assert lookups.assertion_facts(db.index, "n", key, since)[1] == set()
        assert lookups.assertion_facts(db.index, "n", stored, since)[1] == {stored}
    finally:
        db.close()


def test_the_index_wal_is_checkpointed_off_the_commit_thread(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer never checkpoints (autocheckpoint off); the checkpoint thread copies
    the WAL into the database file once it is past its size, and stops on close."""
    import threading
    import time

    from stemedb.index import store

    monkeypatch.setattr(store, "CHECKPOINT_WAL_BYTES", 64 << 10)
    monkeypatch.setattr(store, "CHECKPOINT_EVERY_S", 0.02)
    data = tmp_path / "d"
    db = Database(load_settings(env={"STEMEDB_RATE_LIMIT_ASSERT_RATE": "0"},
                                overrides={"server.data_dir": str(data)}))
    try:
        assert db.index._write.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        main_file = data / "index.sqlite3"
        before = main_file.stat().st_size
        key = AgentKey.generate()
        bodies = [assertion_body(key, subject=f"station {i}", predicate="located_in",
                                 object=f"region {i}") for i in range(600)]

        async def write() -> None:
            results = await db.write_batch([(b, key.sign_b64(b)) for b in bodies])
            assert all(r["status"] in ("accepted", "quarantined") for r in results)

        asyncio.run(write())
        deadline = time.monotonic() + 10
        while main_file.stat().st_size <= before and time.monotonic() < deadline:
            time.sleep(0.02)
        assert main_file.stat().st_size > before  # pages reached the database file
    finally:
        db.close()
    assert not [t for t in threading.enumerate() if t.name == "stemedb-checkpoint"]


def _write_places(db: Database, key: AgentKey, n: int, tag: str) -> None:
    """``n`` assertions by ``key`` in one batch: "{tag} {i}" located in "area {i}"."""
    bodies = [assertion_body(key, subject=f"{tag} {i}", predicate="located_in",
                             object=f"area {i}") for i in range(n)]
    asyncio.run(db.write_batch([(b, key.sign_b64(b)) for b in bodies]))


def test_the_index_wal_starts_over_past_its_limit(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A PASSIVE checkpoint leaves the WAL growing at its end; past the limit the
    checkpointer takes a RESTART checkpoint: everything is copied into the database file
    and the next commit writes the WAL from its beginning again, the file cut back to the
    limit and overwritten in place from then on."""
    from stemedb.index import store

    monkeypatch.setattr(store, "CHECKPOINT_EVERY_S", 3600.0)  # rounds run by hand below
    monkeypatch.setattr(store, "CHECKPOINT_WAL_BYTES", 64 << 10)
    monkeypatch.setattr(store, "CHECKPOINT_WAL_LIMIT", 256 << 10)
    data = tmp_path / "d"
    db = Database(load_settings(env={"STEMEDB_RATE_LIMIT_ASSERT_RATE": "0"},
                                overrides={"server.data_dir": str(data)}))
    conn = db.index._connect()
    try:
        wal = data / "index.sqlite3-wal"
        key = AgentKey.generate()

        def write(n: int, tag: str) -> None:
            _write_places(db, key, n, tag)

        write(600, "town")
        grown = wal.stat().st_size
        assert grown > 256 << 10
        assert db.index.checkpoint(conn) == "RESTART"
        _, log_frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert log_frames == copied  # every frame is in the database file
        write(1, "village")  # starts over: the file is cut back to the limit
        assert wal.stat().st_size == 256 << 10
        assert db.index.checkpoint(conn) == "PASSIVE"  # within the limit again
        n = db.index.reader.execute("SELECT count(*) FROM assertions").fetchone()[0]
        assert n == 601
    finally:
        conn.close()
        db.close()


def test_a_restart_checkpoint_waits_for_readers_only_past_twice_the_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A RESTART checkpoint holds every commit off while it runs, so past the limit it
    does not wait for a reader still using the WAL: it gives up and is taken again on
    the next round. Only past twice the limit does it wait for the reader to finish."""
    import threading

    from stemedb.index import store

    monkeypatch.setattr(store, "CHECKPOINT_EVERY_S", 3600.0)  # rounds run by hand below
    data = tmp_path / "d"
    db = Database(load_settings(env={"STEMEDB_RATE_LIMIT_ASSERT_RATE": "0"},
                                overrides={"server.data_dir": str(data)}))
    conn, reader = db.index._connect(), db.index._connect()
    try:
        wal = data / "index.sqlite3-wal"
        key = AgentKey.generate()

        def write(n: int, tag: str) -> None:
            _write_places(db, key, n, tag)

        def checkpoint_while_a_reader_stays_200_ms() -> str | None:
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM assertions").fetchone()
            done = threading.Timer(0.2, lambda: reader.execute("COMMIT"))
            done.start()
            try:
                return db.index.checkpoint(conn)
            finally:
                done.join()

        write(300, "town")
        monkeypatch.setattr(store, "CHECKPOINT_WAL_LIMIT", wal.stat().st_size - 1)
        assert checkpoint_while_a_reader_stays_200_ms() == "RESTART-busy"  # did not wait
        assert db.index.checkpoint(conn) == "RESTART"  # the next round

        write(300, "village")
        monkeypatch.setattr(store, "CHECKPOINT_WAL_LIMIT", wal.stat().st_size // 3)
        assert checkpoint_while_a_reader_stays_200_ms() == "RESTART"  # waited for it
        write(1, "hamlet")
        _, log_frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert log_frames < 50  # the WAL started over: one small transaction in it
    finally:
        conn.close()
        reader.close()
        db.close()


def test_sqlite_memory_stays_small_the_index_file_is_mapped(tmp_path: Path) -> None:
    """SQLite's heap is bounded and small whatever the index's size: every connection
    maps the file (pages only read are never copied), the writer caches 16 MiB of the
    pages it changes, a reading thread's connection 2 MiB."""
    import threading

    from stemedb.index import store

    index = store.IndexStore(tmp_path / "index.sqlite3")
    index.start_checkpointer()
    try:
        def cache_kib(conn: object) -> int:
            return -int(conn.execute("PRAGMA cache_size").fetchone()[0])  # type: ignore[attr-defined]

        assert cache_kib(index._write) == store.WRITER_CACHE_KIB == 16384
        found: list[int] = []
        thread = threading.Thread(target=lambda: found.append(cache_kib(index.reader)))
        thread.start()
        thread.join()
        assert found == [store.READER_CACHE_KIB] == [2048]
        assert cache_kib(index.reader) == 2048
        for conn in (index._write, index.reader):
            assert conn.execute("PRAGMA mmap_size").fetchone()[0] >= 256 << 20
    finally:
        index.close()


def test_read_connections_of_ended_threads_are_closed(tmp_path: Path) -> None:
    """Each reading thread has its own connection (and caches); the HTTP server's worker
    threads end when idle and new ones start under load, so the connections of ended
    threads are closed, not kept for the life of the store."""
    import threading

    from stemedb.index import IndexStore

    store = IndexStore(tmp_path / "index.sqlite3")
    try:
        def read() -> None:
            assert store.reader.execute("SELECT count(*) FROM assertions").fetchone()[0] == 0

        for _ in range(20):
            t = threading.Thread(target=read)
            t.start()
            t.join()
        read()
        assert store.reader_connections == 1
        busy = threading.Event()
        done = threading.Event()

        def hold() -> None:
            read()
            busy.set()
            done.wait(10)

        t = threading.Thread(target=hold)
        t.start()
        busy.wait(10)
        assert store.reader_connections == 2  # a running thread keeps its connection
        done.set()
        t.join()
        assert store.reader_connections == 1
    finally:
        store.close()
