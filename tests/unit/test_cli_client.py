"""The client CLI commands, with the client's transport replaced by httpx.MockTransport."""

from __future__ import annotations

import hashlib
import re
import stat
from pathlib import Path
from typing import Any

import click
import httpx
import orjson
import pytest
from click.testing import CliRunner

from stemedb import signing
from stemedb.cli import client_cmds
from stemedb.client import Client
from stemedb.signing import SIGNATURE_HEADER, AgentKey


@click.group()
def cli() -> None:
    """Only the commands under test, so this file does not depend on the server commands."""


for _command in client_cmds.COMMANDS:
    cli.add_command(_command)


ITEM = {
    "id": "ab" * 32,
    "status": "active",
    "lsn": 12,
    "recorded_at": "2026-02-11T10:23:46.000000Z",
    "subject": "paris",
    "predicate": "capital_of",
    "object": "france",
    "confidence": 0.92,
    "agent_id": "cd" * 32,
    "timestamp": "2026-02-11T10:23:45.000000Z",
    "nonce": "7f1c2a9e4b",
}


class FakeServer:
    """Answers by path; records requests and the URL the CLI asked for."""

    def __init__(self, routes: dict[str, Any] | None = None) -> None:
        self.routes = routes or {}
        self.requests: list[httpx.Request] = []
        self.urls: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        reply = self.routes.get(request.url.path)
        if reply is None:
            return httpx.Response(
                201,
                json={
                    "id": hashlib.sha256(request.content).hexdigest(),
                    "status": "accepted",
                    "lsn": 1,
                },
            )
        return reply(request) if callable(reply) else reply


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    fake = FakeServer()

    def make_client(url: str, key: AgentKey | None = None) -> Client:
        fake.urls.append(url)
        return Client(url, key, transport=httpx.MockTransport(fake), sleep=lambda s: None)

    monkeypatch.setattr(client_cmds, "make_client", make_client)
    monkeypatch.delenv("STEMEDB_URL", raising=False)
    return fake


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "agent.pem"
    AgentKey.generate().save(path)
    return path


def run(*args: str, input: bytes | str | None = None, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), input=input, env=env, catch_exceptions=False)


def problem(status: int, title: str, detail: str, **extra: Any) -> httpx.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    body |= {"instance": "req-7", **extra}
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


# -- keygen --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["pem", "hex"])
def test_keygen(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "k"
    result = run("keygen", "--out", str(out), "--format", fmt)
    assert result.exit_code == 0
    agent_id = result.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", agent_id)
    assert AgentKey.load(out).agent_id == agent_id
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert (out.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")) == (fmt == "pem")


def test_keygen_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "k.pem"
    out.write_text("keep me")
    result = run("keygen", "--out", str(out))
    assert result.exit_code == 1
    assert "refusing to overwrite" in result.stderr
    assert result.stdout == ""
    assert out.read_text() == "keep me"


# -- assert --------------------------------------------------------------------------------


def test_assert_from_options(server: FakeServer, key_file: Path) -> None:
    result = run(
        "assert", "--key", str(key_file),
        "--subject", "paris", "--predicate", "capital_of", "--object", "france",
        "--confidence", "0.92", "--evidence", "https://a.example", "--evidence", "https://b.example",
        "--context", "geo", "--valid-from", "1870-01-01T00:00:00Z",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (req,) = server.requests
    assert req.url.path == "/v1/assert"
    body = orjson.loads(req.content)
    agent_id = AgentKey.load(key_file).agent_id
    assert body["agent_id"] == agent_id
    assert body["object"] == "france"
    assert body["evidence"] == ["https://a.example", "https://b.example"]
    assert body["valid_from"] == "1870-01-01T00:00:00Z"
    sig = signing.decode_signature(req.headers[SIGNATURE_HEADER])
    assert signing.verify(agent_id, req.content, sig)
    answer = orjson.loads(result.stdout)
    assert answer == {"id": hashlib.sha256(req.content).hexdigest(), "status": "accepted", "lsn": 1}
    assert server.urls == ["http://127.0.0.1:18180"]


@pytest.mark.parametrize(
    ("given", "sent"),
    [("42", 42), ('{"a": [1, 2]}', {"a": [1, 2]}), ('"42"', "42"), ("not json", "not json")],
)
def test_assert_object_is_json_when_it_parses(
    server: FakeServer, key_file: Path, given: str, sent: Any
) -> None:
    args = ["--subject", "s", "--predicate", "p", "--object", given, "--confidence", "0.5"]
    result = run("assert", "--key", str(key_file), *args)
    assert result.exit_code == 0, result.output
    assert orjson.loads(server.requests[0].content)["object"] == sent


def test_assert_url_from_env_and_option(server: FakeServer, key_file: Path) -> None:
    args = ["--subject", "s", "--predicate", "p", "--object", "o", "--confidence", "0.5"]
    run("assert", "--key", str(key_file), *args, env={"STEMEDB_URL": "http://env.test:1"})
    run("assert", "--key", str(key_file), "--url", "http://opt.test:2", *args)
    assert server.urls == ["http://env.test:1", "http://opt.test:2"]


def test_assert_file_fills_missing_fields(
    server: FakeServer, key_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "body.json"
    path.write_text('{"subject": "paris", "predicate": "capital_of", "object": "france",\n'
                    ' "confidence": 0.9}\n')  # fmt: skip
    result = run("assert", "--key", str(key_file), "--file", str(path))
    assert result.exit_code == 0, result.output
    body = orjson.loads(server.requests[0].content)
    assert body["agent_id"] == AgentKey.load(key_file).agent_id
    assert body["timestamp"].endswith("Z") and len(body["nonce"]) == 16
    assert body["subject"] == "paris"


def test_assert_complete_file_is_sent_byte_for_byte(
    server: FakeServer, key_file: Path, tmp_path: Path
) -> None:
    agent_id = AgentKey.load(key_file).agent_id
    raw = (
        '{ "subject": "paris", "predicate": "capital_of", "object": "france", '
        f'"confidence": 0.9, "agent_id": "{agent_id}", '
        '"timestamp": "2026-02-11T10:23:45Z", "nonce": "7f1c2a9e4b" }\n'
    ).encode()
    result = run("assert", "--key", str(key_file), "--file", "-", input=raw)
    assert result.exit_code == 0, result.output
    assert server.requests[0].content == raw
    assert orjson.loads(result.stdout)["id"] == hashlib.sha256(raw).hexdigest()


def test_assert_file_with_another_agents_id(
    server: FakeServer, key_file: Path, tmp_path: Path
) -> None:
    raw = orjson.dumps({"subject": "s", "agent_id": "ef" * 32})
    result = run("assert", "--key", str(key_file), "--file", "-", input=raw)
    assert result.exit_code == 2
    assert "not the key's" in result.stderr
    assert server.requests == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--subject", "s"], "missing --predicate, --object, --confidence"),
        (["--file", "-", "--subject", "s"], "cannot be combined"),
        (["--subject", "s", "--predicate", "p", "--object", "o", "--confidence", "2"], "0<=x<=1"),
    ],
)
def test_assert_usage_errors(
    server: FakeServer, key_file: Path, args: list[str], message: str
) -> None:
    result = run("assert", "--key", str(key_file), *args, input="{}")
    assert result.exit_code == 2
    assert message in result.stderr
    assert server.requests == []


def test_assert_bad_file_and_key(server: FakeServer, key_file: Path, tmp_path: Path) -> None:
    result = run("assert", "--key", str(key_file), "--file", "-", input="[1, 2]")
    assert result.exit_code == 2 and "JSON object" in result.stderr
    result = run("assert", "--key", str(key_file), "--file", "-", input="{nope")
    assert result.exit_code == 2 and "not valid JSON" in result.stderr
    bad_key = tmp_path / "bad.pem"
    bad_key.write_text("nothing here")
    result = run("assert", "--key", str(bad_key), "--file", "-", input="{}")
    assert result.exit_code == 2 and "--key" in result.stderr


def test_assert_api_error_exit_code_and_detail(server: FakeServer, key_file: Path) -> None:
    errors = [{"field": "subject", "message": "must be 1 to 512 characters after trimming"}]
    server.routes["/v1/assert"] = problem(
        422, "Request failed validation", "subject: must be 1 to 512", errors=errors
    )
    args = ["--subject", " ", "--predicate", "p", "--object", "o", "--confidence", "0.5"]
    result = run("assert", "--key", str(key_file), *args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "422 Request failed validation: subject: must be 1 to 512" in result.stderr
    assert "  subject: must be 1 to 512 characters after trimming" in result.stderr
    assert "req-7" in result.stderr


def test_assert_rate_limited_retries_then_fails(server: FakeServer, key_file: Path) -> None:
    server.routes["/v1/assert"] = httpx.Response(
        429,
        json={"title": "Too many requests", "detail": "circuit breaker open", "status": 429},
        headers={"Retry-After": "1", "x-circuit-breaker-state": "OPEN"},
    )
    args = ["--subject", "s", "--predicate", "p", "--object", "o", "--confidence", "0.5"]
    result = run("assert", "--key", str(key_file), *args)
    assert result.exit_code == 1
    assert "circuit breaker OPEN" in result.stderr
    assert len(server.requests) == 6  # first try + 5 retries, same bytes every time
    assert len({r.content for r in server.requests}) == 1


def test_unreachable_server_exit_code(monkeypatch: pytest.MonkeyPatch, key_file: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    def make_client(url: str, key: AgentKey | None = None) -> Client:
        return Client(url, key, transport=httpx.MockTransport(refuse), sleep=lambda s: None)

    monkeypatch.setattr(client_cmds, "make_client", make_client)
    result = run("get", "ab" * 32)
    assert result.exit_code == 3
    assert "cannot reach the server" in result.stderr and "connection refused" in result.stderr


# -- reads --------------------------------------------------------------------------------


def test_get_table_and_json(server: FakeServer) -> None:
    server.routes[f"/v1/assertions/{'ab' * 32}"] = httpx.Response(200, json=ITEM)
    result = run("get", "ab" * 32)
    assert result.exit_code == 0, result.output
    for text in ("paris", "capital_of", "france", "0.92", "active", "recorded_at"):
        assert text in result.stdout
    result = run("get", "ab" * 32, "--json")
    assert orjson.loads(result.stdout) == ITEM


def test_get_nested_shape_and_markup_is_not_interpreted(server: FakeServer) -> None:
    nested = {
        "id": "ab" * 32,
        "status": "active",
        "assertion": {"subject": "[bold]x[/bold] [/]", "predicate": "p", "object": {"k": 1}},
    }
    server.routes[f"/v1/assertions/{'ab' * 32}"] = httpx.Response(200, json=nested)
    result = run("get", "ab" * 32)
    assert result.exit_code == 0, result.output
    assert "[bold]x[/bold] [/]" in result.stdout
    assert '{"k":1}' in result.stdout


def test_get_not_found(server: FakeServer) -> None:
    server.routes[f"/v1/assertions/{'ab' * 32}"] = problem(404, "Not found", "no such assertion")
    result = run("get", "ab" * 32)
    assert result.exit_code == 1
    assert "404 Not found: no such assertion" in result.stderr


def test_query_table_filters_and_cursor_hint(server: FakeServer) -> None:
    server.routes["/v1/assertions"] = httpx.Response(
        200, json={"items": [ITEM], "next_cursor": "next-1"}
    )
    result = run(
        "query", "--subject", "paris", "--include-inactive", "--limit", "1",
        "--as-of", "lsn:5", "--object", '{"b":1}',
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    params = dict(server.requests[0].url.params)
    assert params == {
        "subject": "paris",
        "include_inactive": "true",
        "limit": "1",
        "as_of": "lsn:5",
        "object": '{"b":1}',
    }
    assert result.stdout.startswith("1 assertion ")
    assert "paris" in result.stdout and "abababababab" in result.stdout
    assert "--cursor next-1" in result.stderr


def test_query_all_follows_cursors_json(server: FakeServer) -> None:
    def paged(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        if cursor is None:
            return httpx.Response(200, json={"items": [{"id": "1"}], "next_cursor": "c1"})
        return httpx.Response(200, json={"items": [{"id": "2"}], "next_cursor": None})

    server.routes["/v1/assertions"] = paged
    result = run("query", "--all", "--json", "--predicate", "capital_of")
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout) == {"items": [{"id": "1"}, {"id": "2"}], "next_cursor": None}
    assert len(server.requests) == 2


def test_query_json_single_page(server: FakeServer) -> None:
    page = {"items": [ITEM], "next_cursor": "c9"}
    server.routes["/v1/assertions"] = httpx.Response(200, json=page)
    result = run("query", "--json", "--cursor", "c8")
    assert orjson.loads(result.stdout) == page
    assert server.requests[0].url.params["cursor"] == "c8"


def test_search(server: FakeServer) -> None:
    server.routes["/v1/search"] = httpx.Response(200, json={"items": [ITEM], "next_cursor": None})
    result = run("search", "capital france", "--limit", "3")
    assert result.exit_code == 0, result.output
    assert dict(server.requests[0].url.params) == {"q": "capital france", "limit": "3"}
    assert "1 match" in result.stdout and "france" in result.stdout
    result = run("search", "capital", "--json")
    assert orjson.loads(result.stdout)["items"] == [ITEM]


def test_search_server_error(server: FakeServer) -> None:
    server.routes["/v1/search"] = problem(400, "Bad request", "q is required")
    result = run("search", "")
    assert result.exit_code == 1
    assert "q is required" in result.stderr


def test_commands_are_registered_under_their_names() -> None:
    names = [c.name for c in client_cmds.COMMANDS]
    assert names == ["keygen", "assert", "get", "query", "search"]


def test_real_factory_fails_fast_on_long_retry_after(
    monkeypatch: pytest.MonkeyPatch, key_file: Path
) -> None:
    fake = FakeServer()
    fake.routes["/v1/assert"] = httpx.Response(
        503,
        json={"title": "Journal is read-only", "detail": "fsync failed", "status": 503},
        headers={"Retry-After": "30"},
    )
    sleeps: list[float] = []
    real = client_cmds.Client

    def wired(url: str, key: AgentKey | None = None, **kw: Any) -> Client:
        return real(url, key, transport=httpx.MockTransport(fake), sleep=sleeps.append, **kw)

    monkeypatch.setattr(client_cmds, "Client", wired)
    args = ["--subject", "s", "--predicate", "p", "--object", "o", "--confidence", "0.5"]
    result = run("assert", "--key", str(key_file), *args)
    assert result.exit_code == 1
    assert "503 Journal is read-only: fsync failed (retry after 30 s)" in result.stderr
    assert len(fake.requests) == 1 and sleeps == []


def test_query_valid_at(server: FakeServer) -> None:
    server.routes["/v1/assertions"] = httpx.Response(200, json={"items": [], "next_cursor": None})
    result = run("query", "--predicate", "capital", "--valid-at", "1980-01-01T00:00:00Z",
                 "--as-of", "lsn:9", "--json")
    assert result.exit_code == 0, result.output
    assert dict(server.requests[0].url.params) == {
        "predicate": "capital", "valid_at": "1980-01-01T00:00:00Z", "as_of": "lsn:9"}
