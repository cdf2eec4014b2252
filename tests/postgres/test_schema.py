"""The PostgreSQL schema: created once however many nodes start at once, refused when
newer than the code, and the same columns, in the same order, as the embedded index."""

from __future__ import annotations

import concurrent.futures

import psycopg
import pytest

from stemedb.errors import ConfigError
from stemedb.index.store import DUMP_TABLES
from stemedb.postgres import PostgresStore
from stemedb.postgres.schema import COLUMNS, PG_ONLY, SCHEMA_VERSION, migrate, status


def test_many_nodes_migrating_at_once_create_the_schema_once(postgres_url: str) -> None:
    def one(_: int) -> int:
        with psycopg.connect(postgres_url) as conn:
            return migrate(conn)

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        assert list(pool.map(one, range(6))) == [SCHEMA_VERSION] * 6
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM tip").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM schema_version").fetchone() == (1,)
        assert status(conn) == {"schema_version": SCHEMA_VERSION, "tip_lsn": 0}


def test_a_newer_schema_is_refused(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        migrate(conn)
        conn.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION + 1,))
        conn.commit()
    with pytest.raises(ConfigError, match="newer"):
        PostgresStore(postgres_url)


def test_an_empty_database_has_no_schema_yet(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        assert status(conn) == {"schema_version": 0, "tip_lsn": 0}


def test_the_tables_mirror_the_embedded_index(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        migrate(conn)
        for table, _ in DUMP_TABLES:
            if table == "meta":  # the applied LSN and hash are the tip here
                continue
            found = tuple(r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                " ORDER BY ordinal_position", (table,)))
            # by name, not position: the dump selects them by name (the embedded index
            # reads ``body`` and ``signature`` from the journal: they come last there)
            assert set(found) - set(PG_ONLY.get(table, ())) == set(COLUMNS[table]), table
            assert len(found) == len(COLUMNS[table]) + len(PG_ONLY.get(table, ())), table


def test_a_schema_1_database_gets_the_valid_time_instants(postgres_url: str) -> None:
    from stemedb import records
    from stemedb.model import instant_us
    from stemedb.signing import AgentKey
    from stemedb.store import AssertionFilter
    from tests.helpers import assertion_body

    key = AgentKey.generate()
    body = assertion_body(key, subject="bonn", predicate="capital_of", object="germany",
                          valid_from="1949-05-23T00:00:00+01:00",
                          valid_until="1990-10-03T00:00:00Z")
    store = PostgresStore(postgres_url)
    store.submit([records.SignedWrite(records.ASSERT, body, key.sign_b64(body),
                                      1_700_000_000_000_000).encode()]).result(timeout=30)
    digest = store.digest()
    store.close()
    with psycopg.connect(postgres_url) as conn:
        conn.execute("ALTER TABLE assertions DROP COLUMN valid_from_us,"
                     " DROP COLUMN valid_until_us")
        conn.execute("DROP TABLE enrollments, tokens")  # the rest of what version 2 added
        conn.execute("ALTER TABLE quarantine DROP COLUMN severity, DROP COLUMN top_signal")
        conn.execute("ALTER TABLE writes DROP COLUMN detail")  # what version 3 added
        conn.execute("UPDATE schema_version SET version = 1")
    store = PostgresStore(postgres_url)
    try:
        assert store.digest() == digest
        reads = store.reads
        at = AssertionFilter(valid_at_us=instant_us("1949-05-22T23:00:00Z"))
        assert len(reads.list_assertions(at, reads.applied_lsn, None)["items"]) == 1
        before = AssertionFilter(valid_at_us=instant_us("1949-05-22T22:59:59Z"))
        assert reads.list_assertions(before, reads.applied_lsn, None)["items"] == []
    finally:
        store.close()


def test_a_version_2_database_gets_the_details_of_its_writes(postgres_url: str) -> None:
    """Version 3 added ``writes.detail`` (what an answer is made of, as the embedded index
    keeps it): an upgraded database fills it from each write's stored answer, so its dump
    is the one a new database gives, and retries are answered as before."""
    import orjson

    from stemedb import records
    from stemedb.model import write_id
    from stemedb.signing import AgentKey
    from tests.helpers import assertion_body

    key = AgentKey.generate()
    accepted = assertion_body(key, nonce="n-accepted")
    held = assertion_body(key, subject="lyon", nonce="n-held")
    aid = write_id(accepted)
    retract = orjson.dumps({"retracts": aid, "reason": "wrong", "agent_id": key.agent_id,
                            "timestamp": "2026-01-01T00:00:00Z", "nonce": "n-retract"})
    verdict = {"reason": "LowQuality", "score": 0.7, "signals": []}
    store = PostgresStore(postgres_url)
    store.submit([
        records.SignedWrite(records.ASSERT, accepted, key.sign_b64(accepted), 1_000).encode(),
        records.SignedWrite(records.ASSERT, held, key.sign_b64(held), 2_000, verdict).encode(),
        records.SignedWrite(records.RETRACT, retract, key.sign_b64(retract), 3_000).encode(),
    ]).result(timeout=30)
    digest = store.digest()
    answers = store.reads.writes_by_nonce(
        [(key.agent_id, n) for n in ("n-accepted", "n-held", "n-retract")])
    store.close()
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM writes WHERE detail IS NOT NULL"
                            ).fetchone() == (2,)
        conn.execute("ALTER TABLE writes DROP COLUMN detail")
        conn.execute("UPDATE schema_version SET version = 2")
    store = PostgresStore(postgres_url)
    try:
        assert store.digest() == digest
        assert store.reads.writes_by_nonce(list(answers)) == answers
        statuses = [orjson.loads(a[1])["status"] for a in answers.values()]
        assert statuses == ["accepted", "quarantined", "retracted"]
    finally:
        store.close()


def test_a_version_1_database_is_upgraded_in_place_keeping_its_journal(
        postgres_url: str) -> None:
    from stemedb import records
    from stemedb.postgres.schema import MIGRATIONS
    from stemedb.signing import AgentKey
    from tests.helpers import assertion_body

    with psycopg.connect(postgres_url) as conn:  # the schema as the previous release made it
        conn.execute("CREATE TABLE schema_version (version integer NOT NULL)")
        conn.execute(MIGRATIONS[1])
        conn.execute("INSERT INTO schema_version (version) VALUES (1)")
        conn.commit()
    key = AgentKey.generate()
    body = assertion_body(key)
    store = PostgresStore(postgres_url)  # migrates to the current version
    try:
        store.submit([records.SignedWrite(records.ASSERT, body, key.sign_b64(body),
                                          1_000).encode(),
                      records.admin_record("agent.revoke", "admin:test", at=2_000,
                                           agent_id=key.agent_id, reason="leaked")]
                     ).result(timeout=30)
        (entry,) = store.reads.enrollments()
        assert (entry["agent_id"], entry["revoked_lsn"]) == (key.agent_id, 2)
    finally:
        store.close()
    with psycopg.connect(postgres_url) as conn:
        assert status(conn) == {"schema_version": SCHEMA_VERSION, "tip_lsn": 2}


def test_an_existing_database_gets_severities_for_its_quarantine(postgres_url: str) -> None:
    """Schema 1 had no severity: migrating fills it for the rows already there, from the
    verdict each row keeps."""
    import orjson

    from stemedb.postgres.schema import MIGRATIONS

    verdicts = {
        "q1": {"reason": "LowQuality", "signals": [
            {"name": "keyboard_mash", "amount": 0.6, "detail": "object"},
            {"name": "prompt_injection", "amount": 0.9, "detail": "override_instructions"}]},
        "q2": {"reason": "LowQuality", "signals": [
            {"name": "placeholder_text", "amount": 0.6, "detail": "object"}]},
        "q3": {"reason": "UntrustedHighConfidence", "signals": []},
    }  # fmt: skip
    with psycopg.connect(postgres_url) as conn:
        conn.execute("CREATE TABLE schema_version (version integer NOT NULL)")
        conn.execute(MIGRATIONS[1])
        conn.execute("INSERT INTO schema_version (version) VALUES (1)")
        for i, (qid, v) in enumerate(verdicts.items()):
            conn.execute(
                "INSERT INTO quarantine (id, assertion_id, agent_id, reason, score, verdict,"
                " status, lsn, created_at) VALUES (%s, %s, %s, %s, 0.1, %s, 'pending', %s, 0)",
                (qid, f"a{i}", "f" * 64, v["reason"], orjson.dumps(v).decode(), i + 1))
        conn.commit()
        assert migrate(conn) == SCHEMA_VERSION
        rows = conn.execute("SELECT id, severity, top_signal FROM quarantine ORDER BY id")
        assert rows.fetchall() == [("q1", "critical", "prompt_injection"),
                                   ("q2", "medium", "placeholder_text"), ("q3", "low", None)]
        nullable = conn.execute(
            "SELECT is_nullable FROM information_schema.columns"
            " WHERE table_name = 'quarantine' AND column_name = 'severity'").fetchone()
        assert nullable == ("NO",)
        assert status(conn)["schema_version"] == SCHEMA_VERSION
