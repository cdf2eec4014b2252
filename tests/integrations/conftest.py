"""One real ``stemedb serve`` per test module: the agent interfaces only read and write
through it, and each test uses its own agent keys, so the tests do not see each other."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import ServerProcess


@pytest.fixture(scope="module")
def steme(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("stemedb") / "data").start()
    try:
        yield server
    finally:
        server.stop()
