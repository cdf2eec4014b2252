"""index.apply.insert_rows on a real SQLite file: rows of any count go in, in order, in a
handful of statements (multi-row VALUES), and an upsert's ON CONFLICT clause survives
the grouping."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from stemedb.index.apply import ROWS_PER_STATEMENT, insert_rows

INSERT = "INSERT INTO t (k, v) VALUES (?, ?)"
UPSERT = ("INSERT INTO c (k, n) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET"
          " n = n + excluded.n")


def _db(tmp_path: Path) -> sqlite3.Connection:
    c = sqlite3.connect(tmp_path / "rows.db", isolation_level=None)
    c.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, k INTEGER, v TEXT)")
    c.execute("CREATE TABLE c (k TEXT PRIMARY KEY, n INTEGER)")
    return c


def _statements(c: sqlite3.Connection) -> list[str]:
    seen: list[str] = []
    c.set_trace_callback(seen.append)
    return seen


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 31, 45, 63, 64, 65, 127, 128, 200])
def test_rows_go_in_in_order_in_few_statements(tmp_path: Path, n: int) -> None:
    c = _db(tmp_path)
    rows = [(i, f"v{i}") for i in range(n)]
    seen = _statements(c)
    assert insert_rows(c, INSERT, rows) == n
    c.set_trace_callback(None)
    assert c.execute("SELECT k, v FROM t ORDER BY seq").fetchall() == rows
    groups = n // ROWS_PER_STATEMENT + bin(n % ROWS_PER_STATEMENT).count("1")
    assert len(seen) == groups  # not one statement per leftover row


def test_an_upserts_conflict_clause_applies_to_every_row(tmp_path: Path) -> None:
    c = _db(tmp_path)
    insert_rows(c, UPSERT, [("a", 1), ("b", 2)])
    assert insert_rows(c, UPSERT, [("a", 10), ("c", 5), ("b", 20)]) == 3
    assert insert_rows(c, UPSERT, [[f"k{i}", i] for i in range(70)]) == 70  # lists too
    got = dict(c.execute("SELECT k, n FROM c").fetchall())
    assert (got["a"], got["b"], got["c"], got["k69"]) == (11, 22, 5, 69)
    assert len(got) == 73


def test_a_failing_row_fails_the_call(tmp_path: Path) -> None:
    c = _db(tmp_path)
    c.execute("CREATE UNIQUE INDEX t_k ON t (k)")
    with pytest.raises(sqlite3.IntegrityError):
        insert_rows(c, INSERT, [(1, "a"), (2, "b"), (1, "again")])
