"""The PostgreSQL journal read back: ranges, and damage done behind the store's back
(a payload changed, a record deleted) named by its LSN."""

from __future__ import annotations

import psycopg
import pytest

from stemedb.errors import JournalCorrupt
from stemedb.postgres import PostgresStore
from stemedb.signing import AgentKey
from tests.store.test_contract import signed


def test_records_are_read_in_ranges_and_damage_is_named(postgres_url: str) -> None:
    key = AgentKey.generate()
    store = PostgresStore(postgres_url)
    try:
        recs = store.submit([signed(key, 1_000 + i, subject=f"s{i}")[0]
                             for i in range(6)]).result(timeout=30)
        assert [r.lsn for r in store.records(3, 4)] == [3, 4]
        assert [r.hash for r in store.records(5)] == [recs[4].hash, recs[5].hash]
        assert list(store.records(7)) == []
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("UPDATE journal SET payload = payload || '\\x20'::bytea WHERE lsn = 4")
            with pytest.raises(JournalCorrupt, match="LSN 4 does not match its chain hash"):
                list(store.records())
            assert [r.lsn for r in store.records(1, 3)] == [1, 2, 3]  # before the damage
            conn.execute("UPDATE journal SET payload = %s WHERE lsn = 4", (recs[3].payload,))
            conn.execute("DELETE FROM journal WHERE lsn = 5")
            with pytest.raises(JournalCorrupt, match="LSN 5 is missing"):
                list(store.records())
    finally:
        store.close()
