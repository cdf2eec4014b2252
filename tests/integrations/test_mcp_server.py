"""``stemedb mcp`` as an MCP client sees it: the SDK's own client over a real stdio
subprocess (and over streamable HTTP with ``--http``), against a real server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stemedb import AgentKey
from tests.helpers import ROOT, ServerProcess, free_port
from tests.integrations.extras import need

need("mcp", "mcp")
from mcp import Client, StdioServerParameters  # noqa: E402
from mcp.types import CallToolResult  # noqa: E402

pytestmark = pytest.mark.integration

TOOLS = {"assert", "get", "query", "search", "beliefs", "disputes", "retract"}
TOKEN = "mcp-test-token-0123456789abcdef"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "agent.pem"
    AgentKey.generate().save(str(path))
    return path


def stdio(key_file: Path, url: str) -> Client:
    args = ["-m", "stemedb", "mcp", "--key", str(key_file), "--url", url]
    return Client(StdioServerParameters(command=sys.executable, args=args, cwd=str(ROOT)))


def text(result: CallToolResult) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


async def call(client: Client, tool: str, **arguments: Any) -> CallToolResult:
    return await client.call_tool(tool, arguments)


def test_stdio_tools_assert_query_beliefs_and_errors(steme: ServerProcess, key_file: Path) -> None:
    agent_id = AgentKey.load(str(key_file)).agent_id

    async def session() -> None:
        async with stdio(key_file, steme.url) as client:
            listed = (await client.list_tools()).tools
            assert {t.name for t in listed} == TOOLS
            for tool in listed:
                assert tool.description, tool.name
                for name, prop in tool.input_schema["properties"].items():
                    assert prop.get("description"), (tool.name, name)
            schema = next(t for t in listed if t.name == "assert").input_schema
            assert set(schema["required"]) == {"subject", "predicate", "object", "confidence"}
            assert {"evidence", "context", "valid_from", "valid_until", "supersedes"} <= set(
                schema["properties"]
            )

            # assert -> query -> beliefs
            first = await call(client, "assert", subject="lake baikal", predicate="located_in",
                               object="russia", confidence=0.8, context="geo",
                               evidence=["https://example.org/atlas#baikal"])  # fmt: skip
            assert not first.is_error, text(first)
            assert first.structured_content["status"] == "accepted"
            old_id = first.structured_content["id"]
            assert text(first).startswith(f"accepted: {old_id}")

            second = await call(client, "assert", subject="lake baikal", predicate="located_in",
                                object="siberia, russia", confidence=0.8, context="geo",
                                supersedes=old_id)  # fmt: skip
            assert not second.is_error, text(second)
            new_id = second.structured_content["id"]

            found = await call(client, "query", subject="lake baikal", agent_id=agent_id)
            assert not found.is_error
            assert [i["id"] for i in found.structured_content["items"]] == [new_id]
            history = await call(client, "query", subject="lake baikal", include_inactive=True)
            statuses = {i["id"]: i["status"] for i in history.structured_content["items"]}
            assert statuses == {new_id: "active", old_id: "superseded"}

            belief = await call(client, "beliefs", subject="lake baikal", predicate="located_in")
            assert not belief.is_error
            [candidate] = belief.structured_content["candidates"]
            assert candidate["object"] == "siberia, russia" and candidate["agents"] == 1
            assert '"candidates"' in text(belief)

            got = await call(client, "get", id=old_id)
            assert got.structured_content["status"] == "superseded"
            short = await call(client, "get", id=old_id[:12])  # as the CLI's tables show it
            assert short.structured_content["id"] == old_id
            hits = await call(client, "search", q="baikal siberia")
            assert [i["id"] for i in hits.structured_content["items"]] == [new_id]
            assert not (await call(client, "disputes", subject="lake baikal")).is_error

            held = await call(client, "assert", subject="lake baikal", predicate="located_in",
                              object="siberia, russia", confidence=0.8, context="geo")  # fmt: skip
            assert not held.is_error
            assert text(held).startswith("quarantined: Duplicate")

            gone = await call(client, "retract", id=new_id, reason="checked: wrong region")
            assert not gone.is_error and text(gone).startswith(f"retracted: {new_id}")

            # Failures are tool errors carrying the problem, never a success.
            unknown = await call(client, "retract", id="0" * 64)
            assert unknown.is_error
            assert unknown.structured_content["status"] == 404
            assert "404 Not found" in text(unknown) and "does not exist" in text(unknown)

            again = await call(client, "retract", id=new_id)
            assert again.is_error and again.structured_content["status"] == 409

            invalid = await call(client, "assert", subject="   ", predicate="p", object="o",
                                 confidence=0.5)  # fmt: skip
            assert invalid.is_error and invalid.structured_content["status"] == 422
            assert invalid.structured_content["title"] in text(invalid)
            assert "subject" in text(invalid)

            out_of_range = await call(client, "assert", subject="s", predicate="p", object="o",
                                      confidence=1.5)  # fmt: skip
            assert out_of_range.is_error and "confidence" in text(out_of_range)

            missing = await call(client, "get", id="f" * 64)
            assert missing.is_error and missing.structured_content["status"] == 404

    asyncio.run(asyncio.wait_for(session(), 120))


def test_unreachable_server_is_an_error(key_file: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"

    async def session() -> None:
        async with stdio(key_file, dead) as client:
            result = await call(client, "assert", subject="s", predicate="p", object="o",
                                confidence=0.5)  # fmt: skip
            assert result.is_error
            assert text(result).startswith("StemeDB is unreachable")

    asyncio.run(asyncio.wait_for(session(), 120))


@pytest.fixture
def http_mcp(steme: ServerProcess, key_file: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = open(tmp_path / "mcp-http.log", "wb")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "stemedb", "mcp", "--key", str(key_file), "--url", steme.url,
         "--http", "--port", str(port)],
        env={**os.environ, "STEMEDB_MCP_TOKEN": TOKEN}, stdout=log, stderr=subprocess.STDOUT,
        cwd=ROOT,
    )  # fmt: skip
    log.close()
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "mcp-http.log").read_text()
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the MCP HTTP server did not start"
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(20)


def test_http_needs_the_bearer_token(http_mcp: str) -> None:
    init = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}):  # fmt: skip
        refused = httpx.post(http_mcp, json=init, headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert refused.headers["content-type"] == "application/problem+json"

    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    async def session() -> None:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with (
            httpx2.AsyncClient(headers=auth) as http,
            Client(streamable_http_client(http_mcp, http_client=http)) as client,
        ):
            assert {t.name for t in (await client.list_tools()).tools} == TOOLS
            wrote = await call(client, "assert", subject="mount elbrus", predicate="height_m",
                               object=5642, confidence=0.8)  # fmt: skip
            assert not wrote.is_error, text(wrote)
            got = await call(client, "get", id=wrote.structured_content["id"])
            assert got.structured_content["object"] == 5642

    asyncio.run(asyncio.wait_for(session(), 60))


def test_http_without_a_token_is_refused_at_start(steme: ServerProcess, key_file: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "STEMEDB_MCP_TOKEN"}
    for extra in ([], ["--token", "short"]):
        out = subprocess.run(
            [sys.executable, "-m", "stemedb", "mcp", "--key", str(key_file), "--url", steme.url,
             "--http", "--port", str(free_port()), *extra],
            env=env, capture_output=True, text=True, timeout=60, cwd=ROOT,
        )  # fmt: skip
        assert out.returncode == 2, out.stderr
        assert "--token" in out.stderr


def test_docs_list_every_tool_and_argument() -> None:
    """docs/agents.md's tool table names each tool and every argument of its schema."""
    from stemedb.client import AsyncClient
    from stemedb.integrations.mcp_server import build_server

    async def schemas() -> dict[str, set[str]]:
        async with AsyncClient() as client:
            server = build_server(client, "0" * 64)
            return {t.name: set(t.input_schema["properties"]) for t in await server.list_tools()}

    section = (ROOT / "docs" / "agents.md").read_text().split("### Tools")[1].split("###")[0]
    rows = {}
    for line in section.splitlines():
        cells = line.split(" | ")
        if line.startswith("| `") and len(cells) == 3:
            rows[cells[0].strip("|` ")] = cells[1]
    listed = asyncio.run(schemas())
    assert set(listed) == TOOLS and set(rows) == TOOLS
    for tool, arguments in listed.items():
        for argument in arguments:
            assert f"`{argument}`" in rows[tool], (tool, argument)


def test_query_and_beliefs_take_valid_at_with_a_usable_description() -> None:
    from stemedb.client import AsyncClient
    from stemedb.integrations.mcp_server import build_server

    async def schemas() -> dict[str, dict[str, Any]]:
        async with AsyncClient() as client:
            server = build_server(client, "0" * 64)
            return {t.name: t.input_schema["properties"] for t in await server.list_tools()}

    listed = asyncio.run(schemas())
    for tool in ("query", "beliefs"):
        about = listed[tool]["valid_at"]["description"]
        assert "RFC 3339" in about and "valid_from" in about and "as_of" in about
    assert "valid_at" not in listed["search"]
