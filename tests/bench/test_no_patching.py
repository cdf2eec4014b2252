"""Benchmark variants are built by construction: nothing under bench/ assigns onto a
StemeDB module or class (a patch leaks into every later measurement in the process and
breaks silently when the patched name moves)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"

PATCHING = re.compile(r"monkeypatch|mock\.patch|DefenseGate\.\w+\s*=[^=]|server\.create_app\s*=[^=]"
                      r"|lookups\.\w+\s*=[^=]")


def _stemedb_names(tree: ast.Module) -> set[str]:
    """Names a module binds to StemeDB modules, classes and functions (imports anywhere,
    including inside functions)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "stemedb":
            names.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names
                         if a.name.split(".")[0] == "stemedb")
    return names


def _root(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _patches(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    stemedb = _stemedb_names(tree)
    found = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("setattr", "delattr") and node.args):
            targets = [ast.Attribute(value=node.args[0], attr="?")]
        for t in targets:
            if isinstance(t, ast.Attribute) and _root(t) in stemedb:
                found.append(f"{path}:{node.lineno}: {ast.unparse(node).splitlines()[0]}")
    return found


def test_bench_assigns_nothing_onto_stemedb() -> None:
    sources = sorted(BENCH.rglob("*.py"))
    assert len(sources) > 10
    found = [p for path in sources for p in _patches(path)]
    assert found == []


def test_bench_has_no_patching_patterns() -> None:
    found = [f"{path}:{n}: {line.strip()}"
             for path in sorted(BENCH.rglob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if PATCHING.search(line)]
    assert found == []


def test_the_check_sees_a_patch(tmp_path: Path) -> None:
    patched = tmp_path / "x.py"
    patched.write_text("import stemedb.index.lookups\n"
                       "from stemedb.gate import DefenseGate\n"
                       "def f():\n    from stemedb import server\n"
                       "    server.create_app = None\n    setattr(DefenseGate, 'verdicts', f)\n"
                       "    stemedb.index.lookups.assertion_facts = f\n"
                       "    app = object()\n    app.state = None\n")
    assert len(_patches(patched)) == 3
