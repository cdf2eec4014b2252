"""The agent interfaces on a server whose reads need a token: ``stemedb mcp --api-token``
and ``StemeDBStore(token=...)`` read with it (their writes are signed, tokenless), and
without one their reads are refused."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stemedb import AgentKey
from tests.helpers import ROOT, ServerProcess
from tests.integrations.extras import need

pytestmark = pytest.mark.integration

ADMIN = "agents-tokens-admin-token-77d1"


@pytest.fixture(scope="module")
def closed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    """A server with ``[auth] read = "token"`` and a read token for it."""
    server = ServerProcess(tmp_path_factory.mktemp("closed") / "data",
                           env={"STEMEDB_ADMIN_TOKEN": ADMIN, "STEMEDB_AUTH_READ": "token"})
    server.start()
    try:
        r = httpx.post(server.url + "/v1/admin/tokens",
                       headers={"Authorization": f"Bearer {ADMIN}"},
                       json={"name": "agent-reader", "scope": "read", "namespaces": ["*"]}, timeout=10)
        assert r.status_code == 201, r.text
        yield server, r.json()["token"]
    finally:
        server.stop()


def test_mcp_reads_with_its_api_token(closed: tuple[ServerProcess, str], tmp_path: Path) -> None:
    need("mcp", "mcp")
    from mcp import Client, StdioServerParameters

    server, token = closed
    key_file = tmp_path / "agent.pem"
    AgentKey.generate().save(str(key_file))

    def stdio(*extra: str) -> Any:
        args = ["-m", "stemedb", "mcp", "--key", str(key_file), "--url", server.url, *extra]
        return Client(StdioServerParameters(command=sys.executable, args=args, cwd=str(ROOT)))

    async def session() -> None:
        async with stdio("--api-token", token) as client:
            made = await client.call_tool("assert", {"subject": "lake ohrid",
                                                     "predicate": "located_in",
                                                     "object": "north macedonia",
                                                     "confidence": 0.8})
            assert not made.is_error
            found = await client.call_tool("query", {"subject": "lake ohrid"})
            assert not found.is_error and len(found.structured_content["items"]) == 1
        async with stdio() as client:
            refused = await client.call_tool("query", {"subject": "lake ohrid"})
            assert refused.is_error and refused.structured_content["status"] == 401

    asyncio.run(asyncio.wait_for(session(), 120))


def test_langgraph_store_reads_with_its_token(closed: tuple[ServerProcess, str]) -> None:
    need("langgraph", "langgraph")
    from stemedb.client import ApiError
    from stemedb.integrations.langgraph import StemeDBStore

    server, token = closed
    key = AgentKey.generate()
    with StemeDBStore(server.url, key, token=token) as store:
        store.put(("users", "ana"), "preferences", {"food": "burek"})
        item = store.get(("users", "ana"), "preferences")
        assert item is not None and item.value == {"food": "burek"}
    with StemeDBStore(server.url, key) as anonymous, pytest.raises(ApiError) as e:
        anonymous.get(("users", "ana"), "preferences")
    assert e.value.status == 401
