"""Where things live: the CLI reaches the server only through the SDK, ``ops/`` reports
progress without drawing it, and its errors are part of the one exception tree."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from stemedb import errors
from stemedb.client import Admin, AsyncAdmin

SRC = Path(__file__).resolve().parents[2] / "src" / "stemedb"


def _modules(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_cli_builds_no_api_urls() -> None:
    """Every endpoint is a method of the SDK; a path built here would dodge its errors,
    retries and escaping."""
    offenders = [f"{p.relative_to(SRC)}:{n}" for p in _modules("cli")
                 for n, line in enumerate(p.read_text().splitlines(), 1)
                 if re.search(r"/v1/", line)]  # fmt: skip
    assert offenders == []


def test_ops_draws_nothing() -> None:
    def draws(path: Path) -> bool:
        return any(name == "rich" or name.startswith("rich.") for name in _imports(path))

    offenders = [str(p.relative_to(SRC)) for p in _modules("ops") if draws(p)]
    assert offenders == []


@pytest.mark.parametrize("package", ["cli", "ops", "client"])
def test_modules_stay_under_800_lines(package: str) -> None:
    sizes = {str(p.relative_to(SRC)): len(p.read_text().splitlines()) for p in _modules(package)}
    assert {name: n for name, n in sizes.items() if n > 800} == {}


def test_ops_errors_join_the_tree_and_are_drawn_in_it() -> None:
    for cls in (errors.OpsError, errors.TargetError, errors.MissingObject):
        assert issubclass(cls, errors.StemeError)
        assert cls.type and cls.hint and cls.status
        assert cls.__name__ in (errors.__doc__ or "")
    assert issubclass(errors.MissingObject, errors.TargetError)
    assert issubclass(errors.TargetError, errors.OpsError)


def test_sync_and_async_admin_have_the_same_methods() -> None:
    def public(cls: type) -> dict[str, list[str]]:
        methods = {n: f for n, f in vars(cls).items() if callable(f) and not n.startswith("_")}
        return {name: list(inspect.signature(fn).parameters) for name, fn in methods.items()}

    assert public(Admin) == public(AsyncAdmin)
