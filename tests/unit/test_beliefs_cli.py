"""``stemedb beliefs`` and ``stemedb disputes`` with the client's transport replaced."""

from __future__ import annotations

from typing import Any

import click
import httpx
import orjson
import pytest
from click.testing import CliRunner

from stemedb.cli import beliefs_cmds, client_cmds
from stemedb.client import Client
from stemedb.signing import AgentKey

SUPPORT = {
    "id": "ab" * 32,
    "agent_id": "cd" * 32,
    "confidence": 0.9,
    "evidence": ["https://atlas.example/[p12]"],
    "context": None,
    "recorded_at": "2026-02-11T10:23:46.000000Z",
    "lsn": 7,
    "trust": 0.875,
    "trusted": True,
    "weight": 0.7875,
    "group": 0,
}
BELIEF = {
    "subject": "danube",
    "predicate": "flows_[i]nto",
    "context": None,
    "as_of_lsn": 42,
    "candidates": [
        {
            "object": "black sea",
            "score": 0.55,
            "strength": 0.94,
            "agents": 2,
            "groups": [{"kind": "evidence", "strength": 0.79, "agents": 1}],
            "support": [SUPPORT],
        },
        {
            "object": {"name": "[bold]baltic[/bold]"},
            "score": 0.45,
            "strength": 0.79,
            "agents": 1,
            "groups": [],
            "support": [],
        },
    ],
    "contested": True,
    "contention": 0.84,
}
DISPUTES = {
    "items": [
        {
            "subject": "danube",
            "predicate": "flows_into",
            "context": None,
            "contention": 0.84,
            "candidates": BELIEF["candidates"],
            "open_since_lsn": 9,
            "open_since": "2026-02-11T10:23:46.000000Z",
            "open_for_seconds": 7200.0,
        }
    ],
    "total": 3,
    "as_of_lsn": 42,
    "next_cursor": "eyJvIjoxfQ",
}


@click.group()
def cli() -> None:
    """Only the commands under test."""


for _command in beliefs_cmds.COMMANDS:
    cli.add_command(_command)


class Fake:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/v1/beliefs":
            if "predicate" in request.url.params:
                return httpx.Response(200, json=BELIEF)
            return httpx.Response(
                200,
                json={
                    "subject": "danube",
                    "context": None,
                    "as_of_lsn": 42,
                    "next_cursor": None,
                    "beliefs": [
                        {
                            k: BELIEF[k]
                            for k in ("predicate", "candidates", "contested", "contention")
                        }
                    ],
                },
            )
        if request.url.path == "/v1/disputes":
            return httpx.Response(200, json=DISPUTES)
        return httpx.Response(404, json={"title": "Not found", "status": 404, "detail": "no"})


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Fake:
    f = Fake()

    def make_client(url: str, key: AgentKey | None = None) -> Client:
        return Client(url, key, transport=httpx.MockTransport(f), sleep=lambda s: None)

    monkeypatch.setattr(client_cmds, "make_client", make_client)
    monkeypatch.delenv("STEMEDB_URL", raising=False)
    return f


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env={"COLUMNS": "160"})


def test_beliefs_table(fake: Fake) -> None:
    result = run("beliefs", "danube", "flows_into", "--as-of", "lsn:42", "--context", "geo")
    assert result.exit_code == 0, result.output
    params = dict(fake.requests[0].url.params)
    assert params == {
        "subject": "danube",
        "predicate": "flows_into",
        "as_of": "lsn:42",
        "context": "geo",
    }
    out = result.stdout
    assert "CONTESTED" in out and "black sea" in out and "0.550" in out
    assert "[bold]baltic[/bold]" in out  # content is text, never markup
    assert "flows_[i]nto" in out
    assert "support for" not in out


def test_beliefs_with_support_and_subject_alone(fake: Fake) -> None:
    result = run("beliefs", "danube", "--support")
    assert result.exit_code == 0, result.output
    assert "predicate" not in dict(fake.requests[0].url.params)
    assert "support for" in result.stdout and "abababababab" in result.stdout
    assert "https://atlas.example/[p12]" in result.stdout


def test_beliefs_json(fake: Fake) -> None:
    result = run("beliefs", "danube", "flows_into", "--json")
    assert orjson.loads(result.stdout) == BELIEF


def test_disputes_table_and_json(fake: Fake) -> None:
    result = run("disputes", "--limit", "1", "--subject", "danube")
    assert result.exit_code == 0, result.output
    assert dict(fake.requests[0].url.params) == {"limit": "1", "subject": "danube"}
    assert "1 dispute of 3" in result.stdout and "2.0h" in result.stdout
    assert "black sea" in result.stdout and "0.840" in result.stdout
    assert "--cursor eyJvIjoxfQ" in result.stderr
    assert orjson.loads(run("disputes", "--json").stdout) == DISPUTES


def test_server_errors_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    def make_client(url: str, key: AgentKey | None = None) -> Client:
        return Client(
            url,
            key,
            sleep=lambda s: None,
            transport=httpx.MockTransport(
                lambda r: httpx.Response(
                    422,
                    json={
                        "title": "Request failed validation",
                        "status": 422,
                        "detail": "as_of: bad",
                        "errors": [{"field": "as_of", "message": "bad"}],
                    },
                )
            ),
        )

    monkeypatch.setattr(client_cmds, "make_client", make_client)
    result = run("beliefs", "danube", "--as-of", "yesterday")
    assert result.exit_code == 1 and "as_of" in result.stderr


def test_beliefs_valid_at(fake: Fake) -> None:
    result = run("beliefs", "danube", "flows_into", "--valid-at", "1980-01-01T00:00:00Z",
                 "--json")
    assert result.exit_code == 0, result.output
    assert dict(fake.requests[0].url.params) == {
        "subject": "danube", "predicate": "flows_into", "valid_at": "1980-01-01T00:00:00Z"}
