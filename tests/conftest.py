from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stemedb.signing import AgentKey
from tests.helpers import ServerProcess

# Real PostgreSQL and Redis servers (redis_server, redis_url, postgres_server, postgres_url).
pytest_plugins = ["tests.services"]


@pytest.fixture
def key() -> AgentKey:
    return AgentKey.generate()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path / "data").start()
    try:
        yield srv
    finally:
        srv.stop()
