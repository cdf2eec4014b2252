"""The agent interfaces' packages are extras: without one its tests are skipped with how to
install it, and under CI (``CI=true``), where ``make test`` installs them, they fail."""

from __future__ import annotations

import importlib.util

import pytest

from tests.helpers import in_ci


def need(module: str, extra: str) -> None:
    if importlib.util.find_spec(module) is not None:
        return
    how = f"{module} is not installed: pip install 'stemedb[{extra}]'"
    if in_ci():
        pytest.fail(how, pytrace=False)
    pytest.skip(how, allow_module_level=True)
