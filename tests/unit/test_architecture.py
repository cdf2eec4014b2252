"""The layout rules ``docs/architecture.md`` states and ``lint-imports`` cannot see."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "stemedb"
# Backends own their SQL: the embedded index, and the cluster backend beside it.
SQL_HOMES = ("index", "postgres")
_SQL = re.compile(r"^\s*(import sqlite3|import psycopg|from psycopg)|\.execute(many|script)?\(",
                  re.MULTILINE)


def modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_sql_lives_only_in_the_storage_backends() -> None:
    outside = [str(p.relative_to(SRC)) for p in modules()
               if p.relative_to(SRC).parts[0] not in SQL_HOMES and _SQL.search(p.read_text())]
    assert outside == []


def test_ops_never_imports_the_engine() -> None:
    found = [str(p.relative_to(SRC)) for p in (SRC / "ops").rglob("*.py")
             if re.search(r"^\s*from \.\.engine|stemedb\.engine", p.read_text(), re.MULTILINE)]
    assert found == []


def test_no_module_is_over_800_lines() -> None:
    long = {str(p.relative_to(SRC)): n for p in modules()
            if (n := len(p.read_text().splitlines())) > 800}
    assert long == {}
