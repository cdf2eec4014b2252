"""At start-up an index behind the journal catches up from it. From nothing (a new schema
version, a lost or mismatched index) it is built in bulk into a file of its own and
swapped in, as ``stemedb reindex`` does; an index only some records behind gets them
applied in place. Either way it ends equal to the index the writes built."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from stemedb.datadir import index_files, remove_index
from stemedb.engine import Database
from stemedb.index import store
from stemedb.settings import load_settings
from stemedb.signing import AgentKey
from tests.helpers import assertion_body


def _open(data: Path) -> Database:
    return Database(load_settings(env={"STEMEDB_RATE_LIMIT_ASSERT_RATE": "0"},
                                  overrides={"server.data_dir": str(data)}))


def _write(data: Path, key: AgentKey, tag: str, n: int) -> str:
    """``n`` assertions in one batch; the index's digest after them."""
    db = _open(data)
    try:
        bodies = [assertion_body(key, subject=f"{tag} {i}", predicate="located_in",
                                 object=f"area {i}") for i in range(n)]
        asyncio.run(db.write_batch([(b, key.sign_b64(b)) for b in bodies]))
        return db.index.digest()
    finally:
        db.close()


def _start(data: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[bool], str]:
    """Opens and closes ``data``: whether each ``rebuild_from`` meanwhile ran on a store
    built in bulk, and the index's digest."""
    seen: list[bool] = []
    original = store.IndexStore.rebuild_from

    def recording(self: store.IndexStore, entries: object, batch: int = 2000) -> int:
        seen.append(self.bulk)
        return original(self, entries, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(store.IndexStore, "rebuild_from", recording)
    db = _open(data)
    try:
        return seen, db.index.digest()
    finally:
        db.close()


def test_an_index_rebuilt_from_nothing_is_built_in_bulk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "d"
    digest = _write(data, AgentKey.generate(), "town", 300)
    remove_index(data)
    assert _start(data, monkeypatch) == ([True], digest)
    assert not list(data.glob("*.rebuild*"))  # the built file was swapped in


def test_an_index_a_few_records_behind_catches_up_in_place(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, saved = tmp_path / "d", tmp_path / "saved"
    key = AgentKey.generate()
    _write(data, key, "town", 100)
    saved.mkdir()
    for f in index_files(data):
        shutil.copy2(f, saved / f.name)
    digest = _write(data, key, "village", 100)
    remove_index(data)
    for f in saved.iterdir():  # the index as it was 100 records ago
        shutil.copy2(f, data / f.name)
    assert _start(data, monkeypatch) == ([False], digest)
