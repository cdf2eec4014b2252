"""The full-text index trails the rows on the live path (``IndexStore.flush_search``):
a batch leaves its assertions out of it, the checkpoint thread, a batch past
``SEARCH_MAX_LAG`` or a search brings it up. Reads by id and filter never trail, and
neither does a search: it brings the full-text index up before it runs."""

from __future__ import annotations

from pathlib import Path

import orjson

from stemedb import records
from stemedb.index import Entry, IndexStore
from stemedb.index import query as index_query
from stemedb.index.store import SEARCH_MAX_LAG
from tests.helpers import journaled_entries


def _entries(tmp_path: Path, first: int, n: int) -> list[Entry]:
    out = []
    for lsn in range(first, first + n):
        body = orjson.dumps({"subject": f"harbour {lsn}", "predicate": "located_in",
                             "object": "lisbon", "confidence": 0.8, "agent_id": "a" * 64,
                             "timestamp": "2026-01-01T00:00:00Z", "nonce": f"n-{lsn}"})
        out.append(orjson.loads(records.SignedWrite(records.ASSERT, body, "c2ln", lsn).encode()))
    return journaled_entries(tmp_path / "journal", out)


def _matches(store: IndexStore, word: str) -> int:
    """Rows the full-text index itself finds (no bringing it up first)."""
    return len(store.query("SELECT rowid FROM assertions_fts WHERE assertions_fts MATCH ?",
                           [word]))


def test_search_trails_the_rows_but_never_a_search(tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "index.sqlite3")
    try:
        store.apply(_entries(tmp_path, 1, 10))
        assert store.search_lag_records == 10
        assert _matches(store, "lisbon") == 0
        assert store.count("assertions") == 10  # readable by id and filter at once
        found = index_query.search(store, "lisbon", 50, store.applied_lsn, None)
        assert len(found["items"]) == 10
        assert store.search_lag_records == 0 and _matches(store, "lisbon") == 10
        assert store.flush_search() == 0
    finally:
        store.close()


def test_a_batch_brings_search_up_past_the_lag_limit(tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "index.sqlite3")
    try:
        entries = _entries(tmp_path, 1, SEARCH_MAX_LAG + 50)
        for i in range(0, len(entries), 25):
            store.apply(entries[i:i + 25])
            assert store.search_lag_records < SEARCH_MAX_LAG
        assert _matches(store, "lisbon") >= SEARCH_MAX_LAG
    finally:
        store.close()


def test_the_checkpoint_thread_brings_search_up(tmp_path: Path) -> None:
    import time

    store = IndexStore(tmp_path / "index.sqlite3")
    try:
        store.start_checkpointer()
        store.apply(_entries(tmp_path, 1, 30))
        deadline = time.monotonic() + 10
        while store.search_lag_records and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.search_lag_records == 0 and _matches(store, "lisbon") == 30
    finally:
        store.close()
