"""The naive peer answers StemeDB's wire contract for single writes: it verifies the
signature, stores each body once with a durable commit, and refuses a bad signature."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from bench.servers import NaivePeerServer
from stemedb.signing import AgentKey
from tests.helpers import assertion_body, signed_headers

pytestmark = pytest.mark.integration


def test_naive_peer_stores_signed_writes_once(tmp_path: Path) -> None:
    key, other = AgentKey.generate(), AgentKey.generate()
    body = assertion_body(key)
    with NaivePeerServer(tmp_path) as server:
        server.start(timeout=30)
        with httpx.Client(base_url=server.url, timeout=10) as http:
            first = http.post("/v1/assert", content=body, headers=signed_headers(key, body))
            again = http.post("/v1/assert", content=body, headers=signed_headers(key, body))
            forged = http.post("/v1/assert", content=body, headers=signed_headers(other, body))
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    assert forged.status_code == 400
    conn = sqlite3.connect(tmp_path / "naive-peer.db")
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("SELECT count(*) FROM assertions").fetchone() == (1,)
