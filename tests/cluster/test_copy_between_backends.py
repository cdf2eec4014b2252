"""``stemedb storage copy`` between the embedded store and PostgreSQL, both ways, and
``stemedb db status``: the one-command path from one node to a cluster, and back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from stemedb.embedded import EmbeddedStore
from stemedb.postgres import PostgresStore
from tests.helpers import ROOT
from tests.ops.test_storage_copy import fill


def stemedb(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stemedb", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


def test_embedded_to_postgres_to_embedded_keeps_journal_and_digest(tmp_path: Path,
                                                                   postgres_url: str) -> None:
    digest = fill(tmp_path / "one", 40)
    status = stemedb("db", "status", "--database-url", postgres_url, "--json")
    assert status.returncode == 0, status.stderr
    assert orjson.loads(status.stdout)["tip_lsn"] == 0
    up = stemedb("storage", "copy", "--from", str(tmp_path / "one"), "--to", postgres_url,
                 "--json")
    assert up.returncode == 0, up.stderr
    assert orjson.loads(up.stdout)["digest"] == digest
    status = orjson.loads(stemedb("db", "status", "--database-url", postgres_url,
                                  "--json").stdout)
    assert status["tip_lsn"] == 42 and status["schema_version"] == status["supported_version"]
    down = stemedb("storage", "copy", "--from", postgres_url, "--to", str(tmp_path / "two"),
                   "--json")
    assert down.returncode == 0, down.stderr
    assert orjson.loads(down.stdout)["digest"] == digest
    one, two = EmbeddedStore(tmp_path / "one"), EmbeddedStore(tmp_path / "two")
    pg = PostgresStore(postgres_url)
    try:
        chains = [[(r.lsn, r.hash, r.payload) for r in s.records()] for s in (one, pg, two)]
        assert chains[0] == chains[1] == chains[2]
        assert one.digest() == pg.digest() == two.digest() == digest
    finally:
        for s in (one, two, pg):
            s.close()
    again = stemedb("storage", "copy", "--from", str(tmp_path / "one"), "--to", postgres_url)
    assert again.returncode == 1 and "not empty" in again.stderr


def test_db_status_of_an_unreachable_database_is_a_clear_error() -> None:
    out = stemedb("db", "status", "--database-url", "postgresql://nobody@127.0.0.1:1/none")
    assert out.returncode == 1 and "unreachable" in out.stderr
    assert "Traceback" not in out.stderr
